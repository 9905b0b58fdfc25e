/* test_decimal.c — mw_decimal_parse reads every text exactly as strtod does. */
#include "decimal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_same_as_strtod(const char *text)
{
    double want = strtod(text, NULL), got = mw_decimal_parse(text);
    if (memcmp(&want, &got, sizeof want) != 0 && !(want != want && got != got))
        fail_msg("\"%s\": strtod %.17g, mw_decimal_parse %.17g", text, want, got);
}

static void test_fixed_cases(void **state)
{
    (void)state;
    const char *cases[] = {
        "0", "-0", "+0", "1", "600", "12.5", "0.1", "0.3", "-2.75", ".5", "5.", "-.25",
        "123456789012345678", "9007199254740992", "9007199254740993", "9007199254740991.5",
        "99999999999999999999", "0.0000000000000000000001", "0.00000000000000000000001",
        "1e5", "1E-3", "-1.5e300", "inf", "-inf", "nan", "0x1p3", "", "-", ".", "abc",
        "12abc", " 7", "3.14159265358979323846", "1.7976931348623157e308", "4.9e-324",
        "0.30000000000000004", "1234567.8901234",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_same_as_strtod(cases[i]);
}

/* Random decimals of the shapes the windows hold: integers and fractions of every length up
 * to and beyond the fast path's limits. */
static void test_random_decimals(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15u;
    char text[64];
    for (int i = 0; i < 2000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int int_digits = (int)(x % 21), frac_digits = (int)((x >> 8) % 24);
        size_t at = 0;
        if ((x >> 16) & 1)
            text[at++] = '-';
        uint64_t d = x >> 20;
        for (int k = 0; k < int_digits; k++, d = d * 6364136223846793005u + 1442695040888963407u)
            text[at++] = (char)('0' + (d >> 60) % 10);
        if (frac_digits) {
            text[at++] = '.';
            for (int k = 0; k < frac_digits; k++, d = d * 6364136223846793005u + 1)
                text[at++] = (char)('0' + (d >> 59) % 10);
        }
        text[at] = '\0';
        assert_same_as_strtod(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cases),
        cmocka_unit_test(test_random_decimals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
