/*
 * test_resources.c — cgroup v2 resource sampling against a fake cgroup directory: exact CPU
 * deltas, memory.current, counter resets, and missing or malformed files (unavailable, never
 * a crash, one warning). Also the discovery of the cgroup from /proc-style files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "resources.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    char dir[64];
};

static const char *const fake_files[] = {"cpu.stat", "memory.current", "cgroup", "mountinfo",
                                         "stderr.log"};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/mw-test-resources-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof fake_files / sizeof fake_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, fake_files[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Replace dir/name with `text` (written whole, then renamed, as the kernel's files read). */
static void write_file(const struct fixture *fx, const char *name, const char *text)
{
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", fx->dir, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void remove_file(const struct fixture *fx, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    unlink(path);
}

static void write_cpu_usage(const struct fixture *fx, uint64_t usage_usec)
{
    char text[256];
    snprintf(text, sizeof text,
             "usage_usec %llu\nuser_usec %llu\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\n"
             "throttled_usec 0\n",
             (unsigned long long)usage_usec, (unsigned long long)usage_usec);
    write_file(fx, "cpu.stat", text);
}

static Modelwatch__V1__ResourceUsage sample(struct mw_resources *r, int64_t now_ms)
{
    Modelwatch__V1__ResourceUsage u;
    assert_int_equal(mw_resources_sample(r, now_ms, &u), 0);
    assert_true(u.has_interval_start_ms && u.has_interval_end_ms && u.has_cgroup_available);
    assert_int_equal(u.interval_end_ms, now_ms);
    assert_false(u.has_gpu_seconds);
    assert_true(u.gpu_seconds == 0.0);
    return u;
}

static void assert_unavailable(const Modelwatch__V1__ResourceUsage *u)
{
    assert_false(u->cgroup_available);
    assert_false(u->has_cpu_seconds);
    assert_false(u->has_memory_bytes);
    assert_true(u->cpu_seconds == 0.0);
    assert_int_equal(u->memory_bytes, 0);
}

static void test_two_samples_give_exact_cpu_delta(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 1000000);
    write_file(fx, "memory.current", "123456789\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    assert_non_null(r);
    assert_string_equal(mw_resources_dir(r), fx->dir);

    Modelwatch__V1__ResourceUsage u = sample(r, 1000);
    assert_true(u.cgroup_available);
    assert_true(u.has_cpu_seconds && u.cpu_seconds == 0.0); /* nothing used since creation */

    write_cpu_usage(fx, 3500000);
    u = sample(r, 2000);
    assert_true(u.cgroup_available);
    assert_int_equal(u.interval_start_ms, 1000);
    assert_int_equal(u.interval_end_ms, 2000);
    assert_true(u.cpu_seconds == 2.5);

    write_cpu_usage(fx, 3500000 + 1234567);
    u = sample(r, 3000);
    assert_int_equal(u.interval_start_ms, 2000);
    assert_true(u.cpu_seconds == 1234567 / 1e6);
    mw_resources_destroy(r);
}

static void test_first_interval_is_measured_from_creation(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 100);
    write_file(fx, "memory.current", "4096\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    assert_non_null(r);
    write_cpu_usage(fx, 600100);
    Modelwatch__V1__ResourceUsage u = sample(r, INT64_MAX / 2);
    assert_true(u.cgroup_available);
    assert_true(u.cpu_seconds == 0.6);
    assert_true(u.interval_start_ms > 0 && u.interval_start_ms <= u.interval_end_ms);
    mw_resources_destroy(r);
}

static void test_memory_current_is_read_each_sample(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 0);
    write_file(fx, "memory.current", "123456789\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    Modelwatch__V1__ResourceUsage u = sample(r, 1);
    assert_true(u.cgroup_available && u.has_memory_bytes);
    assert_int_equal(u.memory_bytes, 123456789);
    write_file(fx, "memory.current", "18446744073709551615"); /* no newline, UINT64_MAX */
    u = sample(r, 2);
    assert_true(u.cgroup_available);
    assert_int_equal(u.memory_bytes, UINT64_MAX);
    mw_resources_destroy(r);
}

static void test_counter_reset_gives_zero_not_negative(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 5000000);
    write_file(fx, "memory.current", "1\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    sample(r, 1000);
    write_cpu_usage(fx, 1000000); /* the cgroup was recreated */
    Modelwatch__V1__ResourceUsage u = sample(r, 2000);
    assert_true(u.cgroup_available);
    assert_true(u.cpu_seconds == 0.0);
    write_cpu_usage(fx, 1500000); /* measured from the new counter */
    u = sample(r, 3000);
    assert_true(u.cpu_seconds == 0.5);
    mw_resources_destroy(r);
}

static void test_missing_dir_is_unavailable(void **state)
{
    struct fixture *fx = *state;
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no-such-cgroup", fx->dir);
    struct mw_resources *r = mw_resources_create(missing);
    assert_non_null(r);
    for (int i = 1; i <= 3; i++) {
        Modelwatch__V1__ResourceUsage u = sample(r, i * 1000);
        assert_unavailable(&u);
    }
    mw_resources_destroy(r);
}

static void test_missing_memory_file_is_unavailable(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 42);
    struct mw_resources *r = mw_resources_create(fx->dir);
    Modelwatch__V1__ResourceUsage u = sample(r, 1000);
    assert_unavailable(&u); /* all or nothing: no CPU figure without memory */
    mw_resources_destroy(r);
}

static void test_malformed_files_are_unavailable(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad_cpu[] = {
        "",
        "usage_usec\n",
        "usage_usec \n",
        "usage_usec -5\n",
        "usage_usec +5\n",
        "usage_usec  5\n",
        "usage_usec 12abc\n",
        "usage_usec 5 6\n",
        "usage_usec 0x10\n",
        "usage_usec 99999999999999999999999\n",
        "user_usec 5\nsystem_usec 6\n",
        "xusage_usec 5\n",
        "\n\n\n",
    };
    static const char *const bad_memory[] = {
        "", "max\n", "-1\n", "12 34\n", " 12\n", "12\n\n", "1e6\n", "18446744073709551616\n",
    };
    for (size_t i = 0; i < sizeof bad_cpu / sizeof bad_cpu[0]; i++) {
        write_file(fx, "cpu.stat", bad_cpu[i]);
        write_file(fx, "memory.current", "100\n");
        struct mw_resources *r = mw_resources_create(fx->dir);
        Modelwatch__V1__ResourceUsage u = sample(r, 1000);
        if (u.cgroup_available)
            fail_msg("cpu.stat %zu (\"%s\") was accepted", i, bad_cpu[i]);
        assert_unavailable(&u);
        mw_resources_destroy(r);
    }
    for (size_t i = 0; i < sizeof bad_memory / sizeof bad_memory[0]; i++) {
        write_cpu_usage(fx, 1000);
        write_file(fx, "memory.current", bad_memory[i]);
        struct mw_resources *r = mw_resources_create(fx->dir);
        Modelwatch__V1__ResourceUsage u = sample(r, 1000);
        if (u.cgroup_available)
            fail_msg("memory.current %zu (\"%s\") was accepted", i, bad_memory[i]);
        assert_unavailable(&u);
        mw_resources_destroy(r);
    }
}

static void test_oversized_file_is_unavailable(void **state)
{
    struct fixture *fx = *state;
    size_t size = 64 * 1024;
    char *text = malloc(size + 1);
    assert_non_null(text);
    memcpy(text, "usage_usec 5\n", 13);
    memset(text + 13, 'x', size - 13);
    text[size] = '\0';
    write_file(fx, "cpu.stat", text);
    free(text);
    write_file(fx, "memory.current", "1\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    Modelwatch__V1__ResourceUsage u = sample(r, 1000);
    assert_unavailable(&u);
    mw_resources_destroy(r);
}

static void test_recovery_starts_from_a_fresh_baseline(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 1000000);
    write_file(fx, "memory.current", "1\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    sample(r, 1000);
    remove_file(fx, "cpu.stat");
    Modelwatch__V1__ResourceUsage u = sample(r, 2000);
    assert_unavailable(&u);
    write_cpu_usage(fx, 9000000);
    u = sample(r, 3000); /* growth while unreadable is not attributed to this interval */
    assert_true(u.cgroup_available);
    assert_true(u.cpu_seconds == 0.0);
    assert_int_equal(u.interval_start_ms, 2000);
    write_cpu_usage(fx, 9250000);
    u = sample(r, 4000);
    assert_true(u.cpu_seconds == 0.25);
    mw_resources_destroy(r);
}

static void test_clock_stepping_back_gives_no_negative_interval(void **state)
{
    struct fixture *fx = *state;
    write_cpu_usage(fx, 0);
    write_file(fx, "memory.current", "1\n");
    struct mw_resources *r = mw_resources_create(fx->dir);
    sample(r, 5000);
    Modelwatch__V1__ResourceUsage u = sample(r, 4000);
    assert_int_equal(u.interval_start_ms, 4000);
    assert_int_equal(u.interval_end_ms, 4000);
    mw_resources_destroy(r);
}

/* Count the log lines of comp=resources written to stderr while `r` samples n times. */
static int warnings_over_samples(const struct fixture *fx, struct mw_resources *r, int n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stderr.log", fx->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    for (int i = 0; i < n; i++) {
        Modelwatch__V1__ResourceUsage u;
        assert_int_equal(mw_resources_sample(r, 1000 * (i + 1), &u), 0);
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "level=warn comp=resources"))
            count++;
    }
    fclose(f);
    return count;
}

static void test_unavailable_is_warned_once(void **state)
{
    struct fixture *fx = *state;
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/gone", fx->dir);
    struct mw_resources *r = mw_resources_create(missing);
    assert_int_equal(warnings_over_samples(fx, r, 5), 1);
    mw_resources_destroy(r);

    /* Readable, then malformed twice, then missing: still one warning. */
    write_cpu_usage(fx, 1);
    write_file(fx, "memory.current", "1\n");
    r = mw_resources_create(fx->dir);
    assert_int_equal(warnings_over_samples(fx, r, 2), 0);
    write_file(fx, "memory.current", "lots\n");
    assert_int_equal(warnings_over_samples(fx, r, 2), 1);
    remove_file(fx, "cpu.stat");
    assert_int_equal(warnings_over_samples(fx, r, 2), 0);
    mw_resources_destroy(r);
}

static int detect(const struct fixture *fx, const char *cgroup, const char *mountinfo, char *out,
                  size_t size)
{
    char cgroup_path[PATH_MAX];
    char mountinfo_path[PATH_MAX];
    snprintf(cgroup_path, sizeof cgroup_path, "%s/cgroup", fx->dir);
    snprintf(mountinfo_path, sizeof mountinfo_path, "%s/mountinfo", fx->dir);
    write_file(fx, "cgroup", cgroup);
    write_file(fx, "mountinfo", mountinfo);
    return mw__resources_detect(cgroup_path, mountinfo_path, out, size);
}

static void test_detect_finds_the_cgroup_v2_directory(void **state)
{
    struct fixture *fx = *state;
    char out[PATH_MAX];
    static const char proc_mounts[] = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n";

    /* Unified hierarchy at /sys/fs/cgroup, a Kubernetes-style path. */
    char mountinfo[1024];
    snprintf(mountinfo, sizeof mountinfo,
             "%s30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
             "cgroup2 rw,nsdelegate\n",
             proc_mounts);
    assert_int_equal(detect(fx, "0::/kubepods.slice/pod1/cri-abc\n", mountinfo, out, sizeof out),
                     0);
    assert_string_equal(out, "/sys/fs/cgroup/kubepods.slice/pod1/cri-abc");

    /* Private cgroup namespace: the path is "/", the mount is the cgroup itself. */
    assert_int_equal(detect(fx, "0::/\n", mountinfo, out, sizeof out), 0);
    assert_string_equal(out, "/sys/fs/cgroup");

    /* Hybrid host: v1 controllers plus the unified hierarchy under .../unified. */
    assert_int_equal(detect(fx, "4:memory:/x\n1:cpu:/\n0::/user.slice\n",
                            "31 24 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n"
                            "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 "
                            "rw\n",
                            out, sizeof out),
                     0);
    assert_string_equal(out, "/sys/fs/cgroup/unified/user.slice");

    /* A mount of a sub-tree (root /kubepods) and an escaped space in the mount point. */
    assert_int_equal(detect(fx, "0::/kubepods/pod2/c1\n",
                            "50 24 0:40 /kubepods /mnt/pod\\040cg rw - cgroup2 cgroup2 rw\n", out,
                            sizeof out),
                     0);
    assert_string_equal(out, "/mnt/pod cg/pod2/c1");

    /* A sub-tree mount that does not hold our cgroup is passed over. */
    assert_int_equal(detect(fx, "0::/kubepods2/c1\n",
                            "50 24 0:40 /kubepods /mnt/a rw - cgroup2 cgroup2 rw\n"
                            "51 24 0:40 / /mnt/b rw - cgroup2 cgroup2 rw\n",
                            out, sizeof out),
                     0);
    assert_string_equal(out, "/mnt/b/kubepods2/c1");

    /* The result does not fit. */
    assert_int_equal(detect(fx, "0::/abc\n", mountinfo, out, 8), MW_ETOOBIG);
}

static void test_detect_reports_absence(void **state)
{
    struct fixture *fx = *state;
    char out[PATH_MAX];
    static const char v2_mount[] = "30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    assert_int_equal(detect(fx, "1:cpu:/\n2:memory:/\n", v2_mount, out, sizeof out), MW_ENOTFOUND);
    assert_int_equal(
        detect(fx, "0::/\n", "31 24 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n", out, sizeof out),
        MW_ENOTFOUND);
    assert_int_equal(detect(fx, "", "", out, sizeof out), MW_ENOTFOUND);
    assert_int_equal(detect(fx, "0::relative\n", v2_mount, out, sizeof out), MW_EPARSE);
    /* Garbage mountinfo lines are skipped, not fatal. */
    assert_int_equal(detect(fx, "0::/\n",
                            "garbage\n - cgroup2\n\n"
                            "30 24 0:26 / /cg rw - cgroup2 x\n",
                            out, sizeof out),
                     0);
    assert_string_equal(out, "/cg");

    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/nothing", fx->dir);
    assert_int_equal(mw__resources_detect(missing, missing, out, sizeof out), MW_EIO);
}

/* Whatever this machine offers, the default sampler works and never fails. */
static void test_default_cgroup_of_this_process(void **state)
{
    (void)state;
    struct mw_resources *r = mw_resources_create(NULL);
    assert_non_null(r);
    Modelwatch__V1__ResourceUsage u;
    fflush(stderr);
    assert_int_equal(mw_resources_sample(r, 1000, &u), 0);
    assert_int_equal(mw_resources_sample(r, 2000, &u), 0);
    if (u.cgroup_available)
        assert_true(u.memory_bytes > 0 && u.cpu_seconds >= 0.0);
    else
        assert_unavailable(&u);
    mw_resources_destroy(r);
}

static void test_null_arguments(void **state)
{
    (void)state;
    Modelwatch__V1__ResourceUsage u;
    assert_int_equal(mw_resources_sample(NULL, 0, &u), MW_EINVAL);
    struct mw_resources *r = mw_resources_create("/nonexistent");
    assert_int_equal(mw_resources_sample(r, 0, NULL), MW_EINVAL);
    mw_resources_destroy(r);
    mw_resources_destroy(NULL);
    assert_null(mw_resources_dir(NULL));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_two_samples_give_exact_cpu_delta),
        T(test_first_interval_is_measured_from_creation),
        T(test_memory_current_is_read_each_sample),
        T(test_counter_reset_gives_zero_not_negative),
        T(test_missing_dir_is_unavailable),
        T(test_missing_memory_file_is_unavailable),
        T(test_malformed_files_are_unavailable),
        T(test_oversized_file_is_unavailable),
        T(test_recovery_starts_from_a_fresh_baseline),
        T(test_clock_stepping_back_gives_no_negative_interval),
        T(test_unavailable_is_warned_once),
        T(test_detect_finds_the_cgroup_v2_directory),
        T(test_detect_reports_absence),
        cmocka_unit_test(test_default_cgroup_of_this_process),
        cmocka_unit_test(test_null_arguments),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
