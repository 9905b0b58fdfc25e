/*
 * decimal.h — text to double as fast as the read paths need, and exactly as strtod reads it.
 *
 * Redis hands every hash field back as text; a window close reads thousands of them per model,
 * nearly all small integers or short decimals ("600", "12.5"). Those take the exact fast path:
 * when the digits form an integer below 2^53 and the decimal exponent is at most 22, both are
 * exact doubles and one multiplication or division rounds correctly, so the result equals
 * strtod's. Everything else (exponents, long mantissas, inf, nan, hex) goes to strtod.
 */
#ifndef MW_COMMON_DECIMAL_H
#define MW_COMMON_DECIMAL_H

/* The value of the decimal number that starts `text` (leading blanks not skipped), as strtod
 * would read it; 0 when `text` holds no number. */
double mw_decimal_parse(const char *text);

#endif
