/* decimal.c — see decimal.h. */
#include "decimal.h"

#include <stdint.h>
#include <stdlib.h>

#define EXACT_MANTISSA_MAX (UINT64_C(1) << 53)
#define EXACT_POWER_MAX 22 /* 10^22 is the largest power of ten a double holds exactly */

static const double powers_of_ten[EXACT_POWER_MAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

double mw_decimal_parse(const char *text)
{
    const char *p = text;
    int negative = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    uint64_t mantissa = 0;
    int digits = 0, fraction_digits = 0;
    for (; is_digit(*p); p++, digits++)
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    if (*p == '.')
        for (p++; is_digit(*p); p++, digits++, fraction_digits++)
            mantissa = mantissa * 10 + (uint64_t)(*p - '0');
    /* 19 digits cannot overflow 64 bits; the 2^53 bound then keeps the mantissa exact. */
    int exact = digits > 0 && digits <= 19 && mantissa <= EXACT_MANTISSA_MAX &&
                fraction_digits <= EXACT_POWER_MAX && *p != 'e' && *p != 'E' && *p != 'x' &&
                *p != 'X';
    if (!exact)
        return strtod(text, NULL);
    double value = (double)mantissa / powers_of_ten[fraction_digits];
    return negative ? -value : value;
}
