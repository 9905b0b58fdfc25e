/* test_clock.c — times as people and query strings give them (mw_clock_parse_time): RFC 3339
 * with a zone, Unix seconds below 1e11 (with a fraction), Unix milliseconds from 1e11; every
 * other text is refused and leaves the output alone. The expected values are computed by hand
 * from the calendar, not by the parser's own arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "error.h"

/* 2026-12-01T17:00:00Z: 20,788 days after 1970-01-01, plus 17 hours. */
#define T_MS ((20788LL * 86400 + 17 * 3600) * 1000)

static int64_t parsed(const char *text)
{
    int64_t ms = -1;
    assert_int_equal(mw_clock_parse_time(text, &ms), 0);
    return ms;
}

static void test_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(parsed("2026-12-01T17:00:00Z"), T_MS);
    assert_int_equal(parsed("2026-12-01t17:00:00z"), T_MS);
    assert_int_equal(parsed("2026-12-01T17:00:00.250Z"), T_MS + 250);
    assert_int_equal(parsed("2026-12-01T17:00:00.2509999Z"), T_MS + 250); /* truncated */
    assert_int_equal(parsed("2026-12-01T18:30:00+01:30"), T_MS);
    assert_int_equal(parsed("2026-12-01T12:00:00.5-05:00"), T_MS + 500);
    assert_int_equal(parsed("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parsed("2024-02-29T00:00:00Z"), 19782LL * 86400 * 1000); /* leap day */
}

static void test_epoch_numbers_by_magnitude(void **state)
{
    (void)state;
    assert_int_equal(parsed("1796144400"), T_MS);          /* seconds */
    assert_int_equal(parsed("1796144400.25"), T_MS + 250); /* seconds with a fraction */
    assert_int_equal(parsed("1796144400250"), T_MS + 250); /* milliseconds */
    assert_int_equal(parsed("0"), 0);
    assert_int_equal(parsed("99999999999"), 99999999999000LL);      /* the last second */
    assert_int_equal(parsed("100000000000"), 100000000000LL);       /* the first millisecond */
    assert_int_equal(parsed("253402300799999"), 253402300799999LL); /* 9999-12-31T23:59:59.999Z */
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      "now",
                                      "2h",
                                      "-5",
                                      "+5",
                                      "1e9",
                                      "0x10",
                                      " 1796144400",
                                      "1796144400 ",
                                      "1796144400250.5",      /* milliseconds are whole */
                                      "253402300800000",      /* after 9999 */
                                      "99999999999999999999", /* overflows */
                                      "1796144400.",          /* a point without digits */
                                      "2026-12-01T17:00:00",  /* no zone */
                                      "2026-12-01 17:00:00Z", /* a space for the T */
                                      "2026-13-01T00:00:00Z",
                                      "2026-02-29T00:00:00Z",
                                      "2026-04-31T00:00:00Z",
                                      "2026-12-01T24:00:00Z",
                                      "2026-12-01T17:60:00Z",
                                      "2026-12-01T17:00:60Z",
                                      "2026-12-01T17:00:00+24:00",
                                      "2026-12-01T17:00:00+01",
                                      "2026-12-01T17:00:00.Z",
                                      "2026-12-01T17:00:00Zjunk",
                                      "26-12-01T17:00:00Z",
                                      "1969-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        int rc = mw_clock_parse_time(bad[i], &ms);
        if (rc != MW_EINVAL || ms != 42)
            fail_msg("\"%s\": rc %d ms %lld, expected MW_EINVAL and untouched", bad[i], rc,
                     (long long)ms);
    }
    int64_t ms = 42;
    assert_int_equal(mw_clock_parse_time(NULL, &ms), MW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_epoch_numbers_by_magnitude),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
