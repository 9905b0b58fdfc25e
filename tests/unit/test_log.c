/*
 * test_log.c — unit tests for common/log.c: the logfmt line, and its JSON form (log.format:
 * json) read back with jansson: the same fields in the same order, numbers as numbers, quoted
 * values unescaped, invalid UTF-8 and control bytes made safe, and an overlong line cut into
 * one object that still parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

/* Run one MW_LOG_* statement with stderr sent to a file; `line` gets what it wrote. */
#define CAPTURE(line, call)                                                                        \
    do {                                                                                           \
        capture_begin();                                                                           \
        call;                                                                                      \
        (line) = capture_end();                                                                    \
    } while (0)

static char captured[16384];
static int saved_stderr = -1;
static FILE *capture_file;

static void capture_begin(void)
{
    capture_file = tmpfile();
    assert_non_null(capture_file);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

static const char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    rewind(capture_file);
    size_t n = fread(captured, 1, sizeof captured - 1, capture_file);
    captured[n] = '\0';
    fclose(capture_file);
    return captured;
}

static int teardown(void **state)
{
    (void)state;
    mw_log_set_format(MW_LOG_FORMAT_LOGFMT);
    mw_log_set_level(MW_LOG_LEVEL_INFO);
    return 0;
}

/* Parse one JSON line: exactly one object, then one newline. */
static json_t *parse_line(const char *line)
{
    size_t len = strlen(line);
    assert_true(len > 2);
    assert_int_equal(line[len - 1], '\n');
    assert_null(memchr(line, '\n', len - 1));
    json_error_t error;
    json_t *obj = json_loadb(line, len - 1, 0, &error);
    if (!obj)
        print_error("not JSON (%s): %s\n", error.text, line);
    assert_non_null(obj);
    assert_true(json_is_object(obj));
    return obj;
}

static void test_logfmt_line(void **state)
{
    (void)state;
    char quoted[64];
    const char *line;
    CAPTURE(line, MW_LOG_WARN("spool", "segment checksum mismatch", "file=%s offset=%d",
                              mw_log_quote("a b", quoted, sizeof quoted), 42));
    assert_int_equal(strncmp(line, "ts=", 3), 0);
    assert_non_null(strstr(line, " level=warn comp=spool msg=\"segment checksum mismatch\" "
                                 "file=\"a b\" offset=42\n"));
}

static void test_json_line_same_fields(void **state)
{
    (void)state;
    char q1[64], q2[64];
    mw_log_set_format(MW_LOG_FORMAT_JSON);
    const char *line;
    CAPTURE(line, MW_LOG_WARN("spool", "segment checksum mismatch",
                              "file=%s offset=%d ratio=%s neg=%s id=%s note=%s",
                              mw_log_quote("a b", q1, sizeof q1), 42, "0.25", "-3e2", "007",
                              mw_log_quote("say \"hi\"\\now\nnext", q2, sizeof q2)));
    json_t *obj = parse_line(line);
    const char *keys[] = {"ts",     "level", "comp", "msg", "file",
                          "offset", "ratio", "neg",  "id",  "note"};
    size_t i = 0;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        assert_true(i < sizeof keys / sizeof keys[0]);
        assert_string_equal(key, keys[i]); /* the logfmt order */
        i++;
    }
    assert_int_equal(i, sizeof keys / sizeof keys[0]);
    assert_string_equal(json_string_value(json_object_get(obj, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(obj, "comp")), "spool");
    assert_string_equal(json_string_value(json_object_get(obj, "msg")),
                        "segment checksum mismatch");
    assert_string_equal(json_string_value(json_object_get(obj, "file")), "a b");
    assert_int_equal(json_integer_value(json_object_get(obj, "offset")), 42);
    assert_true(json_real_value(json_object_get(obj, "ratio")) == 0.25);
    assert_true(json_number_value(json_object_get(obj, "neg")) == -300);
    assert_string_equal(json_string_value(json_object_get(obj, "id")), "007"); /* not a number */
    assert_string_equal(json_string_value(json_object_get(obj, "note")), "say \"hi\"\\now\nnext");
    const char *ts = json_string_value(json_object_get(obj, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), strlen("2026-11-26T18:25:54.123Z"));
    json_decref(obj);
}

static void test_json_unsafe_bytes(void **state)
{
    (void)state;
    mw_log_set_format(MW_LOG_FORMAT_JSON);
    /* a bare word without '=', invalid UTF-8, a control byte, valid UTF-8, a value printed
     * with spaces but no quotes */
    const char *line;
    CAPTURE(line, MW_LOG_INFO("intake", "odd \x01 input", "stray model=%s name=%s error=%s n=%d",
                              "bad\xff\xfe", "caf\xc3\xa9", "Could not  resolve host", 7));
    json_t *obj = parse_line(line);
    assert_string_equal(json_string_value(json_object_get(obj, "_")), "stray");
    assert_string_equal(json_string_value(json_object_get(obj, "error")),
                        "Could not  resolve host");
    assert_int_equal(json_integer_value(json_object_get(obj, "n")), 7);
    assert_int_equal(json_object_size(obj), 4 + 5);
    assert_string_equal(json_string_value(json_object_get(obj, "model")),
                        "bad\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_object_get(obj, "name")), "caf\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(obj, "msg")), "odd \x01 input");
    json_decref(obj);
}

static void test_json_long_line_is_cut_whole(void **state)
{
    (void)state;
    static char big[1900];
    memset(big, '"', sizeof big - 1); /* each byte doubles when escaped */
    big[sizeof big - 1] = '\0';
    char quoted[4096];
    mw_log_set_format(MW_LOG_FORMAT_JSON);
    const char *line;
    CAPTURE(line, MW_LOG_ERROR("api", "long", "a=1 big=%s c=3",
                               mw_log_quote(big, quoted, sizeof quoted)));
    json_t *obj = parse_line(line);
    assert_int_equal(json_integer_value(json_object_get(obj, "a")), 1);
    const char *cut = json_string_value(json_object_get(obj, "big"));
    assert_non_null(cut);
    assert_true(strlen(cut) > 100 && strlen(cut) < sizeof big - 1);
    json_decref(obj);
}

static void test_level_threshold(void **state)
{
    (void)state;
    mw_log_set_level(MW_LOG_LEVEL_WARN);
    mw_log_set_format(MW_LOG_FORMAT_JSON);
    const char *line;
    CAPTURE(line, MW_LOG_INFO("x", "dropped", "a=%d", 1));
    assert_string_equal(line, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_logfmt_line, teardown),
        cmocka_unit_test_teardown(test_json_line_same_fields, teardown),
        cmocka_unit_test_teardown(test_json_unsafe_bytes, teardown),
        cmocka_unit_test_teardown(test_json_long_line_is_cut_whole, teardown),
        cmocka_unit_test_teardown(test_level_threshold, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
