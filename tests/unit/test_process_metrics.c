/*
 * test_process_metrics.c — unit tests for common/process_metrics.c: the process_* numbers
 * against what the test can know independently (descriptors it opens, its rlimit, memory it
 * touches, the clock), and the rendered families and their types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "process_metrics.h"
#include "prom.h"

static void test_open_fds_counts_exactly(void **state)
{
    (void)state;
    struct mw_process_sample before, after;
    mw_process_sample_read(&before);
    assert_true(before.has_fds);
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = dup(STDIN_FILENO);
        assert_true(fds[i] >= 0);
    }
    mw_process_sample_read(&after);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    assert_true(after.open_fds == before.open_fds + 5);
}

static void test_limits_memory_cpu_start(void **state)
{
    (void)state;
    struct mw_process_sample s;
    struct rlimit lim;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
    mw_process_sample_read(&s);
    assert_true(s.has_stat);
    assert_true(s.has_max_fds);
    assert_true(s.max_fds == (double)lim.rlim_cur);

    /* touch 64 MiB: the resident size grows by about that much, never less than half */
    size_t bytes = 64u << 20;
    char *mem = malloc(bytes);
    assert_non_null(mem);
    memset(mem, 1, bytes);
    struct mw_process_sample grown;
    mw_process_sample_read(&grown);
    assert_true(grown.resident_bytes - s.resident_bytes >= (double)bytes / 2);
    assert_true(grown.virtual_bytes >= grown.resident_bytes);
    free(mem);

    /* burn about 0.3 s of CPU: the counter moves by at least 0.2 s (10 ms ticks) */
    struct timespec t0, t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile unsigned long spin = 0;
    do {
        for (int i = 0; i < 100000; i++)
            spin += (unsigned long)i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < 0.3);
    struct mw_process_sample busy;
    mw_process_sample_read(&busy);
    assert_true(busy.cpu_seconds - s.cpu_seconds >= 0.2);

    /* started within the last hour (the test just began), and not in the future */
    double now = (double)time(NULL);
    assert_true(s.start_time_seconds <= now + 1);
    assert_true(s.start_time_seconds > now - 3600);
}

static void test_rendered_families(void **state)
{
    (void)state;
    struct mw_prom_registry *reg = mw_prom_registry_create();
    struct mw_buf out;
    assert_non_null(reg);
    assert_int_equal(mw_process_metrics_register(reg, "modelwatch-test"), 0);
    mw_buf_init(&out, 1 << 20);
    assert_int_equal(mw_prom_render(reg, &out), 0);
    assert_int_equal(mw_buf_append(&out, "", 1), 0);
    static const char *const wanted[] = {
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
        "# TYPE process_open_fds gauge\nprocess_open_fds ",
        "# TYPE process_max_fds gauge\nprocess_max_fds ",
        "# TYPE modelwatch_build_info gauge\nmodelwatch_build_info{version=\"" MW_VERSION
        "\",program=\"modelwatch-test\"} 1\n",
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        if (!strstr(out.data, wanted[i]))
            print_error("missing: %s\nin:\n%s\n", wanted[i], out.data);
        assert_non_null(strstr(out.data, wanted[i]));
    }
    mw_buf_free(&out);
    mw_prom_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_fds_counts_exactly),
        cmocka_unit_test(test_limits_memory_cpu_start),
        cmocka_unit_test(test_rendered_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
