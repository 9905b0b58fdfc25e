/* test_redis_cmd.c — argv vectors of Redis commands (aggregator/redis_cmd.c): arguments kept in
 * blocks stay where they are as more are added, and a command's arguments move into another
 * one whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_cmd.h"

#include <stdio.h>
#include <string.h>

static void test_arguments_stay_put(void **state)
{
    (void)state;
    struct mw_redis_cmd c;
    mw_redis_cmd_init(&c);
    assert_int_equal(mw_redis_cmd_add(&c, "HINCRBY"), 0);
    assert_int_equal(mw_redis_cmd_addb(&c, "a\0b", 3), 0);
    assert_int_equal(mw_redis_cmd_addb(&c, "", 0), 0);
    assert_int_equal(mw_redis_cmd_addf(&c, "%d|%s", 42, "x"), 0);
    assert_int_equal(mw_redis_cmd_add_int(&c, INT64_MIN), 0);
    assert_int_equal(mw_redis_cmd_add_int(&c, 0), 0);
    assert_int_equal(mw_redis_cmd_add_double(&c, 0.1), 0);
    const char *first = c.argv[0];
    /* Enough arguments for several blocks, one longer than a block. */
    char big[100000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(mw_redis_cmd_add_int(&c, i), 0);
    assert_int_equal(mw_redis_cmd_addb(&c, big, sizeof big), 0);
    assert_ptr_equal(c.argv[0], first);
    assert_string_equal(c.argv[0], "HINCRBY");
    assert_int_equal(c.argvlen[1], 3);
    assert_memory_equal(c.argv[1], "a\0b", 4);
    assert_int_equal(c.argvlen[2], 0);
    assert_string_equal(c.argv[3], "42|x");
    assert_string_equal(c.argv[4], "-9223372036854775808");
    assert_int_equal(c.argvlen[4], 20);
    assert_string_equal(c.argv[5], "0");
    assert_string_equal(c.argv[6], "0.10000000000000001");
    for (int i = 0; i < 5000; i++) {
        char text[16];
        snprintf(text, sizeof text, "%d", i);
        assert_string_equal(c.argv[7 + i], text);
        assert_int_equal(c.argvlen[7 + i], strlen(text));
    }
    assert_int_equal(c.argvlen[c.argc - 1], sizeof big);
    assert_memory_equal(c.argv[c.argc - 1], big, sizeof big);
    mw_redis_cmd_free(&c);
    assert_int_equal(c.argc, 0);
    mw_redis_cmd_free(NULL);
}

static void test_take_args(void **state)
{
    (void)state;
    struct mw_redis_cmd c, side, empty;
    mw_redis_cmd_init(&c);
    mw_redis_cmd_init(&side);
    mw_redis_cmd_init(&empty);
    assert_int_equal(mw_redis_cmd_add(&c, "EVALSHA"), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(mw_redis_cmd_add_int(&side, 1000 + i), 0);
    assert_int_equal(mw_redis_cmd_take_args(&c, &empty), 0);
    assert_int_equal(mw_redis_cmd_take_args(&c, &side), 0);
    assert_int_equal(side.argc, 0);
    assert_null(side.chunks);
    assert_int_equal(mw_redis_cmd_add(&c, "last"), 0); /* c's own block again */
    assert_int_equal(c.argc, 302);
    assert_string_equal(c.argv[0], "EVALSHA");
    assert_string_equal(c.argv[1], "1000");
    assert_string_equal(c.argv[300], "1299");
    assert_string_equal(c.argv[301], "last");
    mw_redis_cmd_free(&side);

    /* Into an empty command, which then grows on. */
    struct mw_redis_cmd d;
    mw_redis_cmd_init(&d);
    assert_int_equal(mw_redis_cmd_take_args(&d, &c), 0);
    assert_int_equal(d.argc, 302);
    for (int i = 0; i < 100; i++)
        assert_int_equal(mw_redis_cmd_add(&d, "more"), 0);
    assert_string_equal(d.argv[301], "last");
    assert_string_equal(d.argv[401], "more");
    mw_redis_cmd_free(&c);
    mw_redis_cmd_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments_stay_put),
        cmocka_unit_test(test_take_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
