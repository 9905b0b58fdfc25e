/* test_zframe.c — zstd framing: round trip, bounds, and refusal of bad frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"
#include "error.h"
#include "zframe.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    *state = mw_zframe_ctx_create(3);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    mw_zframe_ctx_destroy(*state);
    return 0;
}

static void fill_text(char *p, size_t n)
{
    static const char words[] = "model churn version v3 latency 830 status ok feature age ";
    for (size_t i = 0; i < n; i++)
        p[i] = words[i % (sizeof words - 1)];
}

static void test_round_trip_exact_bytes(void **state)
{
    size_t sizes[] = {0, 1, 100, 65536, 3u * 1024 * 1024};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char *src = malloc(sizes[s] + 1);
        fill_text(src, sizes[s]);
        struct mw_buf z, out;
        mw_buf_init(&z, 64u << 20);
        mw_buf_init(&out, 64u << 20);
        assert_int_equal(mw_zframe_compress(*state, src, sizes[s], &z), 0);
        assert_int_equal(mw_zframe_decompress(*state, z.data, z.len, 64u << 20, &out), 0);
        assert_int_equal(out.len, sizes[s]);
        assert_memory_equal(out.data, src, sizes[s]);
        if (sizes[s] >= 65536)
            assert_true(z.len * 10 < sizes[s]); /* repetitive text compresses well */
        mw_buf_free(&z);
        mw_buf_free(&out);
        free(src);
    }
}

static void test_decompress_refuses_more_than_max(void **state)
{
    char src[10000];
    fill_text(src, sizeof src);
    struct mw_buf z, out;
    mw_buf_init(&z, 1u << 20);
    mw_buf_init(&out, 1u << 20);
    assert_int_equal(mw_zframe_compress(*state, src, sizeof src, &z), 0);
    assert_int_equal(mw_zframe_decompress(*state, z.data, z.len, 9999, &out), MW_ETOOBIG);
    assert_int_equal(out.len, 0);
    mw_buf_free(&z);
    mw_buf_free(&out);
}

static void test_truncated_and_garbage_frames_are_corrupt(void **state)
{
    char src[5000];
    fill_text(src, sizeof src);
    struct mw_buf z, out;
    mw_buf_init(&z, 1u << 20);
    mw_buf_init(&out, 1u << 20);
    assert_int_equal(mw_zframe_compress(*state, src, sizeof src, &z), 0);
    for (size_t cut = 0; cut < z.len; cut++) {
        mw_buf_reset(&out);
        assert_int_equal(mw_zframe_decompress(*state, z.data, cut, 1u << 20, &out), MW_ECORRUPT);
    }
    /* A flipped byte in the payload fails the checksum or the decoder. */
    z.data[z.len / 2] ^= 0x5a;
    mw_buf_reset(&out);
    assert_int_equal(mw_zframe_decompress(*state, z.data, z.len, 1u << 20, &out), MW_ECORRUPT);
    unsigned seed = 7;
    for (int i = 0; i < 1000; i++) {
        char junk[64];
        for (size_t k = 0; k < sizeof junk; k++)
            junk[k] = (char)(rand_r(&seed) & 0xff);
        mw_buf_reset(&out);
        assert_int_not_equal(mw_zframe_decompress(*state, junk, 1 + (size_t)i % 64, 1u << 20, &out),
                             0);
    }
    mw_buf_free(&z);
    mw_buf_free(&out);
}

static void test_trailing_bytes_after_frame_are_corrupt(void **state)
{
    char src[100];
    fill_text(src, sizeof src);
    struct mw_buf z, out;
    mw_buf_init(&z, 1u << 20);
    mw_buf_init(&out, 1u << 20);
    assert_int_equal(mw_zframe_compress(*state, src, sizeof src, &z), 0);
    assert_int_equal(mw_buf_append(&z, "xx", 2), 0);
    assert_int_equal(mw_zframe_decompress(*state, z.data, z.len, 1u << 20, &out), MW_ECORRUPT);
    mw_buf_free(&z);
    mw_buf_free(&out);
}

static void test_compress_respects_output_bound(void **state)
{
    char src[4096];
    fill_text(src, sizeof src);
    struct mw_buf z;
    mw_buf_init(&z, 16);
    assert_int_equal(mw_zframe_compress(*state, src, sizeof src, &z), MW_EFULL);
    mw_buf_free(&z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decompress_refuses_more_than_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_garbage_frames_are_corrupt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trailing_bytes_after_frame_are_corrupt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compress_respects_output_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
