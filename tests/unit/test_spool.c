/*
 * test_spool.c — the on-disk spool against real files: round trips across reopen, acks and
 * rewind, the byte bound, torn tails and flipped bytes, foreign files, and refusals.
 *
 * Every test works in its own mkdtemp directory under /tmp, removed in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "error.h"
#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR MW_SPOOL_ENTRY_HEADER_BYTES
#define KEY_BYTES 16u /* "agent-7/boot-%03d" minus the NUL */

struct fixture {
    char base[64];  /* the mkdtemp directory */
    char dir[128];  /* the spool directory, two levels below base */
    char path[256]; /* scratch for file paths */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->base, sizeof f->base, "/tmp/mw-test-spool-XXXXXX");
    if (!mkdtemp(f->base)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/var/spool", f->base);
    *state = f;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int rc = nftw(f->base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* ---- helpers ---- */

static struct mw_spool *open_spool(struct fixture *f, uint64_t max_bytes, uint64_t segment_bytes)
{
    struct mw_spool_options o = {
        .dir = f->dir, .max_bytes = max_bytes, .segment_bytes = segment_bytes, .fsync = false};
    struct mw_spool *s = NULL;
    assert_int_equal(mw_spool_open(&o, &s), 0);
    assert_non_null(s);
    return s;
}

static void make_key(uint64_t i, char key[KEY_BYTES + 1])
{
    snprintf(key, KEY_BYTES + 1, "agent-7/boot-%03u", (unsigned)(i % 1000));
}

/* Consecutive bytes differ by 7, so a payload never contains the magic "MWSP". */
static void make_payload(uint64_t i, unsigned char *p, size_t n)
{
    for (size_t j = 0; j < n; j++)
        p[j] = (unsigned char)(i * 31 + j * 7 + 1);
}

static size_t varied_len(uint64_t i)
{
    return (size_t)((i * 37) % 400);
}

static void append_one(struct mw_spool *s, uint64_t i, size_t len)
{
    char key[KEY_BYTES + 1];
    unsigned char payload[4096];
    assert_true(len <= sizeof payload);
    make_key(i, key);
    make_payload(i, payload, len);
    assert_int_equal(mw_spool_append(s, key, KEY_BYTES, i, payload, len), 0);
}

/* Read the next entry and check it is entry i of `len` payload bytes; returns its id. */
static uint64_t expect_entry(struct mw_spool *s, uint64_t i, size_t len)
{
    struct mw_spool_entry e;
    char key[KEY_BYTES + 1];
    unsigned char payload[4096];
    assert_int_equal(mw_spool_next(s, &e), 0);
    assert_int_equal(e.sequence, i);
    make_key(i, key);
    assert_int_equal(e.key_len, KEY_BYTES);
    assert_memory_equal(e.key, key, KEY_BYTES);
    assert_int_equal(e.payload_len, len);
    make_payload(i, payload, len);
    if (len)
        assert_memory_equal(e.payload, payload, len);
    return e.id;
}

static void expect_no_entry(struct mw_spool *s)
{
    struct mw_spool_entry e;
    assert_int_equal(mw_spool_next(s, &e), MW_ENOTFOUND);
}

static uint64_t entry_size(size_t len)
{
    return HDR + KEY_BYTES + len;
}

static int count_segment_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Path of the segment numbered `number` into f->path. */
static const char *segment_path(struct fixture *f, unsigned number)
{
    snprintf(f->path, sizeof f->path, "%s/%012u.seg", f->dir, number);
    return f->path;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned char *data = malloc((size_t)st.st_size + 1);
    assert_non_null(data);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
    close(fd);
    *size = (size_t)st.st_size;
    return data;
}

static void write_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    close(fd);
}

/* ---- tests ---- */

static void test_crc32c_known_vector(void **state)
{
    (void)state;
    assert_int_equal(mw__spool_crc32c(0, "123456789", 9), 0xe3069283u);
    uint32_t part = mw__spool_crc32c(0, "1234", 4);
    assert_int_equal(mw__spool_crc32c(part, "56789", 5), 0xe3069283u);
    assert_int_equal(mw__spool_crc32c(0, "", 0), 0);
    assert_int_equal(mw__spool_crc32c_by_table(0, "123456789", 9), 0xe3069283u);
}

/* Whatever the CPU's path, the CRC is the table's: every length 0..300 at every alignment of
 * pseudo-random bytes, and continued across a split at every point. */
static void test_crc32c_equals_the_table(void **state)
{
    (void)state;
    unsigned char buf[320];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 300; n++)
            assert_int_equal(mw__spool_crc32c(0, buf + off, n),
                             mw__spool_crc32c_by_table(0, buf + off, n));
    uint32_t whole = mw__spool_crc32c_by_table(0, buf, 300);
    for (size_t cut = 0; cut <= 300; cut++)
        assert_int_equal(mw__spool_crc32c(mw__spool_crc32c(0, buf, cut), buf + cut, 300 - cut),
                         whole);
}

static void test_round_trip_after_reopen_exact_bytes(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, 4096);
    for (uint64_t i = 0; i < 50; i++)
        append_one(s, i, varied_len(i));
    assert_int_equal(mw_spool_stats(s)->appended, 50);
    mw_spool_close(s);

    s = open_spool(f, 1u << 20, 4096);
    const struct mw_spool_stats *st = mw_spool_stats(s);
    assert_int_equal(st->entries, 50);
    assert_int_equal(st->corrupt_entries, 0);
    assert_int_equal(st->segments, (uint64_t)count_segment_files(f->dir));
    assert_true(st->segments > 1);
    for (uint64_t i = 0; i < 50; i++)
        expect_entry(s, i, varied_len(i));
    expect_no_entry(s);
    assert_int_equal(st->replayed, 50);
    assert_false(mw_spool_empty(s)); /* handed out is not delivered */
    mw_spool_close(s);
}

static void test_directory_created_with_parents_mode_0750(void **state)
{
    struct fixture *f = *state;
    mode_t old = umask(022);
    struct mw_spool *s = open_spool(f, 1u << 20, 4096);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);
    assert_true(mw_spool_empty(s));
    expect_no_entry(s);
    mw_spool_close(s);
}

/* Entries of 24 + 16 + 100 = 140 bytes; three fit a 450-byte segment. */
#define FIXED_LEN 100u
#define PER_SEG 3u
#define SEG_BYTES 450u

static void test_ack_deletes_segments_unacked_come_back(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    for (uint64_t i = 0; i < 9; i++)
        append_one(s, i, FIXED_LEN);
    assert_int_equal(count_segment_files(f->dir), 3);

    uint64_t ids[9];
    for (uint64_t i = 0; i < 5; i++)
        ids[i] = expect_entry(s, i, FIXED_LEN);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(mw_spool_ack(s, ids[i]), 0);
    assert_int_equal(count_segment_files(f->dir), 2); /* the first segment is all acked */
    assert_int_equal(mw_spool_stats(s)->entries, 6);
    assert_int_equal(mw_spool_ack(s, ids[4]), MW_EINVAL); /* out of hand-out order */
    assert_int_equal(mw_spool_ack(s, ids[3]), 0);
    assert_int_equal(mw_spool_ack(s, ids[3]), MW_EINVAL); /* twice */
    assert_int_equal(mw_spool_stats(s)->entries, 5);

    /* delivery of 4 failed: it comes again, then the rest */
    mw_spool_rewind(s);
    for (uint64_t i = 4; i < 9; i++)
        ids[i] = expect_entry(s, i, FIXED_LEN);
    expect_no_entry(s);
    mw_spool_close(s);

    /* acks are kept per segment: 3 was acked in a partly acked segment, so it comes again */
    s = open_spool(f, 1u << 20, SEG_BYTES);
    assert_int_equal(mw_spool_stats(s)->entries, 6);
    for (uint64_t i = 3; i < 9; i++)
        ids[i] = expect_entry(s, i, FIXED_LEN);
    expect_no_entry(s);
    for (uint64_t i = 3; i < 9; i++)
        assert_int_equal(mw_spool_ack(s, ids[i]), 0);
    assert_true(mw_spool_empty(s));
    assert_int_equal(count_segment_files(f->dir), 0); /* the newest one too */
    assert_int_equal(mw_spool_stats(s)->bytes, 0);

    append_one(s, 9, FIXED_LEN); /* starts a new segment */
    assert_int_equal(count_segment_files(f->dir), 1);
    assert_false(file_exists(segment_path(f, 3)));
    assert_true(file_exists(segment_path(f, 4)));
    expect_entry(s, 9, FIXED_LEN);
    mw_spool_close(s);
}

static void test_rewind_redelivers_from_oldest_unacked(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    for (uint64_t i = 0; i < 7; i++)
        append_one(s, i, FIXED_LEN);
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 7; i++)
            expect_entry(s, i, FIXED_LEN);
        expect_no_entry(s);
        mw_spool_rewind(s);
    }
    assert_int_equal(mw_spool_stats(s)->replayed, 21);
    assert_int_equal(mw_spool_stats(s)->entries, 7);
    mw_spool_close(s);
}

static void test_reader_follows_appends_on_the_newest_segment(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    uint64_t next = 0;
    for (uint64_t i = 0; i < 10; i++) {
        append_one(s, i, FIXED_LEN);
        if (i % 2 == 1) {
            while (next <= i) {
                uint64_t id = expect_entry(s, next, FIXED_LEN);
                assert_int_equal(mw_spool_ack(s, id), 0);
                next++;
            }
            expect_no_entry(s);
        }
    }
    assert_true(mw_spool_empty(s));
    mw_spool_close(s);
}

static void test_bound_drops_oldest_segments_counted_exactly(void **state)
{
    struct fixture *f = *state;
    /* 1000 bytes hold 7 entries of 140; each new segment past that drops the oldest 3 */
    struct mw_spool *s = open_spool(f, 1000, SEG_BYTES);
    for (uint64_t i = 0; i < 20; i++) {
        append_one(s, i, FIXED_LEN);
        assert_true(mw_spool_stats(s)->bytes <= 1000);
    }
    const struct mw_spool_stats *st = mw_spool_stats(s);
    assert_int_equal(st->dropped_full_entries, 15);
    assert_int_equal(st->dropped_full_bytes, 15 * entry_size(FIXED_LEN));
    assert_int_equal(st->entries, 5);
    assert_int_equal(st->bytes, 5 * entry_size(FIXED_LEN));
    assert_int_equal(st->segments, (uint64_t)count_segment_files(f->dir));
    for (uint64_t i = 15; i < 20; i++)
        expect_entry(s, i, FIXED_LEN);
    expect_no_entry(s);
    mw_spool_close(s);

    /* a smaller bound at open drops more, oldest first */
    s = open_spool(f, 300, SEG_BYTES);
    st = mw_spool_stats(s);
    assert_true(st->bytes <= 300);
    assert_int_equal(st->dropped_full_entries + st->entries, 5);
    assert_int_equal(st->dropped_full_bytes, st->dropped_full_entries * entry_size(FIXED_LEN));
    for (uint64_t i = 20 - st->entries; i < 20; i++)
        expect_entry(s, i, FIXED_LEN);
    expect_no_entry(s);
    mw_spool_close(s);
}

static void test_ack_of_entry_dropped_for_space_is_noop(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1000, SEG_BYTES);
    for (uint64_t i = 0; i < 7; i++)
        append_one(s, i, FIXED_LEN);
    uint64_t id0 = expect_entry(s, 0, FIXED_LEN);
    uint64_t id1 = expect_entry(s, 1, FIXED_LEN);
    append_one(s, 7, FIXED_LEN); /* drops entries 0..2, two of them in flight */
    assert_int_equal(mw_spool_stats(s)->dropped_full_entries, 3);
    assert_int_equal(mw_spool_ack(s, id0), 0);
    assert_int_equal(mw_spool_ack(s, id1), 0);
    assert_int_equal(mw_spool_stats(s)->entries, 5);
    for (uint64_t i = 3; i < 8; i++)
        assert_int_equal(mw_spool_ack(s, expect_entry(s, i, FIXED_LEN)), 0);
    assert_true(mw_spool_empty(s));
    mw_spool_close(s);
}

static void test_entry_larger_than_bound_is_too_big(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1000, SEG_BYTES);
    static unsigned char payload[1000];
    static char key[MW_SPOOL_MAX_KEY_BYTES + 1];
    assert_int_equal(mw_spool_append(s, "k", 1, 1, payload, 1000), MW_ETOOBIG);
    assert_int_equal(mw_spool_append(s, "k", 1, 1, payload, 1000 - HDR), MW_ETOOBIG);
    assert_int_equal(mw_spool_append(s, key, sizeof key, 1, payload, 1), MW_EINVAL);
    assert_int_equal(mw_spool_append(s, NULL, 3, 1, payload, 1), MW_EINVAL);
    assert_int_equal(count_segment_files(f->dir), 0);
    assert_int_equal(mw_spool_stats(s)->appended, 0);
    assert_int_equal(mw_spool_append(s, NULL, 0, 1, payload, 1000 - HDR), 0); /* exactly fits */
    assert_int_equal(mw_spool_stats(s)->bytes, 1000);
    mw_spool_close(s);

    struct mw_spool_options o = {.dir = f->dir, .max_bytes = UINT64_MAX, .segment_bytes = 4096};
    assert_int_equal(mw_spool_open(&o, &s), 0);
    assert_int_equal(mw_spool_append(s, "k", 1, 1, payload, MW_SPOOL_MAX_PAYLOAD_BYTES + 1),
                     MW_ETOOBIG);
    mw_spool_close(s);
}

/* Five entries in one segment; returns the offsets of each entry's start in starts[0..6). */
static void write_five(struct fixture *f, uint64_t starts[6])
{
    static const size_t lens[5] = {10, 300, 150, 0, 77};
    struct mw_spool *s = open_spool(f, 1u << 20, 1u << 20);
    starts[0] = 0;
    for (uint64_t i = 0; i < 5; i++) {
        append_one(s, i, lens[i]);
        starts[i + 1] = starts[i] + entry_size(lens[i]);
    }
    mw_spool_close(s);
}

static size_t five_len(uint64_t i)
{
    static const size_t lens[5] = {10, 300, 150, 0, 77};
    return lens[i];
}

static void test_torn_tail_at_every_offset(void **state)
{
    struct fixture *f = *state;
    uint64_t starts[6];
    write_five(f, starts);
    size_t size;
    unsigned char *orig = read_file(segment_path(f, 1), &size);
    assert_int_equal(size, starts[5]);

    for (uint64_t cut = starts[4]; cut < starts[5]; cut++) {
        write_file(segment_path(f, 1), orig, cut);
        struct mw_spool *s = open_spool(f, 1u << 20, 1u << 20);
        const struct mw_spool_stats *st = mw_spool_stats(s);
        uint64_t torn = cut > starts[4];
        assert_int_equal(st->corrupt_entries, torn);
        assert_int_equal(st->corrupt_segments, torn);
        assert_int_equal(st->entries, 4);
        for (uint64_t i = 0; i < 4; i++)
            expect_entry(s, i, five_len(i));
        expect_no_entry(s);
        mw_spool_close(s);

        struct stat sb;
        assert_int_equal(stat(segment_path(f, 1), &sb), 0);
        assert_int_equal(sb.st_size, starts[4]); /* the torn tail was cut off */
        s = open_spool(f, 1u << 20, 1u << 20);
        assert_int_equal(mw_spool_stats(s)->corrupt_entries, 0);
        mw_spool_close(s);
    }
    free(orig);
}

static void test_torn_only_entry_removes_segment(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    for (uint64_t i = 0; i < 4; i++)
        append_one(s, i, FIXED_LEN); /* segments 1 (0..2) and 2 (3) */
    mw_spool_close(s);
    assert_int_equal(truncate(segment_path(f, 2), 50), 0);

    s = open_spool(f, 1u << 20, SEG_BYTES);
    assert_int_equal(mw_spool_stats(s)->corrupt_entries, 1);
    assert_int_equal(mw_spool_stats(s)->segments, 1);
    assert_false(file_exists(segment_path(f, 2)));
    for (uint64_t i = 0; i < 3; i++)
        expect_entry(s, i, FIXED_LEN);
    expect_no_entry(s);
    append_one(s, 4, FIXED_LEN); /* numbering continues past the removed segment */
    assert_true(file_exists(segment_path(f, 3)));
    expect_entry(s, 4, FIXED_LEN);
    mw_spool_close(s);
}

static void test_flipped_byte_in_middle_entry_skipped_and_resynced(void **state)
{
    struct fixture *f = *state;
    uint64_t starts[6];
    write_five(f, starts);
    size_t size;
    unsigned char *orig = read_file(segment_path(f, 1), &size);

    for (uint64_t at = starts[2]; at < starts[3]; at++) {
        orig[at] ^= 0xff;
        write_file(segment_path(f, 1), orig, size);
        orig[at] ^= 0xff;
        struct mw_spool *s = open_spool(f, 1u << 20, 1u << 20);
        const struct mw_spool_stats *st = mw_spool_stats(s);
        assert_int_equal(st->corrupt_entries, 1);
        assert_int_equal(st->corrupt_segments, 1);
        assert_int_equal(st->entries, 4);
        uint64_t id0 = expect_entry(s, 0, five_len(0));
        uint64_t id1 = expect_entry(s, 1, five_len(1));
        uint64_t id3 = expect_entry(s, 3, five_len(3));
        expect_entry(s, 4, five_len(4));
        expect_no_entry(s);
        assert_int_equal(mw_spool_ack(s, id0), 0);
        assert_int_equal(mw_spool_ack(s, id1), 0);
        mw_spool_rewind(s); /* the reader resyncs again past the bad entry */
        id3 = expect_entry(s, 3, five_len(3));
        uint64_t id4 = expect_entry(s, 4, five_len(4));
        assert_int_equal(mw_spool_stats(s)->corrupt_entries, 1); /* not counted twice */
        assert_int_equal(mw_spool_ack(s, id3), 0);
        assert_int_equal(mw_spool_ack(s, id4), 0);
        assert_true(mw_spool_empty(s));
        assert_int_equal(count_segment_files(f->dir), 0);
        mw_spool_close(s);
    }
    free(orig);
}

static void test_foreign_files_and_empty_segment_tolerated(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES); /* creates the directory */
    mw_spool_close(s);
    static const char junk[100] = "this is not a spool segment at all";
    snprintf(f->path, sizeof f->path, "%s/README", f->dir);
    write_file(f->path, "hello", 5);
    snprintf(f->path, sizeof f->path, "%s/000000000009.seg.tmp", f->dir);
    write_file(f->path, junk, sizeof junk);
    snprintf(f->path, sizeof f->path, "%s/9.seg", f->dir);
    write_file(f->path, junk, sizeof junk);
    assert_int_equal(mkdir(segment_path(f, 8), 0750), 0); /* a directory with a segment name */
    write_file(segment_path(f, 5), "", 0);                /* empty segment */
    write_file(segment_path(f, 6), junk, sizeof junk);    /* garbage segment */

    s = open_spool(f, 1u << 20, SEG_BYTES);
    const struct mw_spool_stats *st = mw_spool_stats(s);
    assert_int_equal(st->segments, 0);
    assert_int_equal(st->entries, 0);
    assert_int_equal(st->corrupt_entries, 1);
    assert_int_equal(st->corrupt_segments, 1);
    assert_false(file_exists(segment_path(f, 5)));
    assert_false(file_exists(segment_path(f, 6)));
    snprintf(f->path, sizeof f->path, "%s/README", f->dir);
    assert_true(file_exists(f->path)); /* not ours: left alone */
    expect_no_entry(s);
    append_one(s, 1, FIXED_LEN);
    assert_true(file_exists(segment_path(f, 7)));
    expect_entry(s, 1, FIXED_LEN);
    mw_spool_close(s);
}

static void test_ten_thousand_entries_round_trip(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 64u << 20, 64u << 10);
    for (uint64_t i = 0; i < 10000; i++)
        append_one(s, i, varied_len(i));
    mw_spool_close(s);

    s = open_spool(f, 64u << 20, 64u << 10);
    assert_int_equal(mw_spool_stats(s)->entries, 10000);
    assert_int_equal(mw_spool_stats(s)->corrupt_entries, 0);
    for (uint64_t i = 0; i < 10000; i++)
        assert_int_equal(mw_spool_ack(s, expect_entry(s, i, varied_len(i))), 0);
    expect_no_entry(s);
    assert_true(mw_spool_empty(s));
    assert_int_equal(mw_spool_stats(s)->segments, 0);
    assert_int_equal(count_segment_files(f->dir), 0);
    mw_spool_close(s);
}

static void test_fsync_mode_round_trip(void **state)
{
    struct fixture *f = *state;
    struct mw_spool_options o = {
        .dir = f->dir, .max_bytes = 1u << 20, .segment_bytes = SEG_BYTES, .fsync = true};
    struct mw_spool *s = NULL;
    assert_int_equal(mw_spool_open(&o, &s), 0);
    for (uint64_t i = 0; i < 10; i++)
        append_one(s, i, FIXED_LEN);
    mw_spool_close(s);
    assert_int_equal(mw_spool_open(&o, &s), 0);
    for (uint64_t i = 0; i < 10; i++)
        expect_entry(s, i, FIXED_LEN);
    mw_spool_close(s);
}

static void test_second_open_of_same_directory_refused(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    struct mw_spool_options o = {.dir = f->dir, .max_bytes = 1u << 20, .segment_bytes = 4096};
    struct mw_spool *other = NULL;
    assert_int_equal(mw_spool_open(&o, &other), MW_EAGAIN);
    assert_null(other);
    mw_spool_close(s);
    assert_int_equal(mw_spool_open(&o, &other), 0);
    mw_spool_close(other);
}

static void test_bad_arguments_rejected(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = NULL;
    struct mw_spool_options o = {.dir = f->dir, .max_bytes = 1u << 20, .segment_bytes = 4096};
    struct mw_spool_options bad = o;
    assert_int_equal(mw_spool_open(NULL, &s), MW_EINVAL);
    assert_int_equal(mw_spool_open(&o, NULL), MW_EINVAL);
    bad.dir = "";
    assert_int_equal(mw_spool_open(&bad, &s), MW_EINVAL);
    bad = o;
    bad.segment_bytes = 0;
    assert_int_equal(mw_spool_open(&bad, &s), MW_EINVAL);
    bad.segment_bytes = (uint64_t)MW_SPOOL_MAX_SEGMENT_BYTES + 1;
    assert_int_equal(mw_spool_open(&bad, &s), MW_EINVAL);
    bad = o;
    bad.max_bytes = HDR - 1;
    assert_int_equal(mw_spool_open(&bad, &s), MW_EINVAL);
    snprintf(f->path, sizeof f->path, "%s/file", f->base);
    write_file(f->path, "x", 1);
    bad = o;
    bad.dir = f->path; /* a file, not a directory */
    assert_int_equal(mw_spool_open(&bad, &s), MW_EIO);

    assert_int_equal(mw_spool_open(&o, &s), 0);
    struct mw_spool_entry e;
    assert_int_equal(mw_spool_next(s, NULL), MW_EINVAL);
    assert_int_equal(mw_spool_next(NULL, &e), MW_EINVAL);
    assert_int_equal(mw_spool_ack(NULL, 0), MW_EINVAL);
    append_one(s, 0, 10);
    assert_int_equal(mw_spool_ack(s, (uint64_t)1 << 32), MW_EINVAL); /* not handed out */
    mw_spool_close(s);
    mw_spool_close(NULL);
}

/* Limit how large this process may make a file (writes past it fail with EFBIG). */
static void limit_file_size(rlim_t bytes)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void test_failed_write_leaves_no_partial_entry(void **state)
{
    struct fixture *f = *state;
    static unsigned char payload[FIXED_LEN];
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct mw_spool *s = open_spool(f, 1u << 20, 1u << 20);

    /* the first write into a new segment fails: the empty segment goes away */
    limit_file_size(10);
    assert_int_equal(mw_spool_append(s, "agent-7/boot-000", KEY_BYTES, 0, payload, FIXED_LEN),
                     MW_EIO);
    assert_int_equal(count_segment_files(f->dir), 0);
    assert_int_equal(mw_spool_stats(s)->segments, 0);

    /* a short write (the third entry crosses the limit) is cut off again */
    limit_file_size(2 * entry_size(FIXED_LEN) + 20);
    append_one(s, 0, FIXED_LEN);
    append_one(s, 1, FIXED_LEN);
    assert_int_equal(mw_spool_append(s, "agent-7/boot-002", KEY_BYTES, 2, payload, FIXED_LEN),
                     MW_EIO);
    assert_int_equal(mw_spool_stats(s)->appended, 2);
    assert_int_equal(mw_spool_stats(s)->bytes, 2 * entry_size(FIXED_LEN));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    append_one(s, 3, FIXED_LEN);
    mw_spool_close(s);
    s = open_spool(f, 1u << 20, 1u << 20);
    assert_int_equal(mw_spool_stats(s)->corrupt_entries, 0);
    expect_entry(s, 0, FIXED_LEN);
    expect_entry(s, 1, FIXED_LEN);
    expect_entry(s, 3, FIXED_LEN);
    expect_no_entry(s);
    mw_spool_close(s);
}

static long alloc_budget; /* allocations allowed before the next ones fail */

static bool alloc_allowed(void)
{
    return alloc_budget-- > 0;
}

static void *failing_malloc(size_t size)
{
    return alloc_allowed() ? malloc(size) : NULL;
}

static void *failing_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n, size) : NULL;
}

static void *failing_realloc(void *ptr, size_t size)
{
    return alloc_allowed() ? realloc(ptr, size) : NULL;
}

/* Open, read and append with every allocation failing in turn: MW_ENOMEM, never a crash or a
 * leak (valgrind), and the spool on disk stays whole. */
static void test_allocation_failures(void **state)
{
    struct fixture *f = *state;
    struct mw_spool *s = open_spool(f, 1u << 20, SEG_BYTES);
    for (uint64_t i = 0; i < 5; i++)
        append_one(s, i, FIXED_LEN);
    mw_spool_close(s);

    struct mw_spool_options o = {.dir = f->dir, .max_bytes = 1u << 20, .segment_bytes = SEG_BYTES};
    for (long budget = 0;; budget++) {
        struct mw_spool_entry e;
        alloc_budget = budget;
        mw_replace_allocator(failing_malloc, failing_calloc, failing_realloc, free);
        s = NULL;
        int rc = mw_spool_open(&o, &s);
        int next_rc = rc ? rc : mw_spool_next(s, &e);
        mw_replace_allocator(NULL, NULL, NULL, NULL);
        if (rc) {
            assert_int_equal(rc, MW_ENOMEM);
            assert_null(s);
            continue;
        }
        mw_spool_close(s);
        if (next_rc == 0)
            break;
        assert_int_equal(next_rc, MW_ENOMEM);
    }
    s = open_spool(f, 1u << 20, SEG_BYTES);
    assert_int_equal(mw_spool_stats(s)->entries, 5);
    assert_int_equal(mw_spool_stats(s)->corrupt_entries, 0);
    for (uint64_t i = 0; i < 5; i++)
        expect_entry(s, i, FIXED_LEN);
    mw_spool_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vector),
        cmocka_unit_test(test_crc32c_equals_the_table),
        cmocka_unit_test_setup_teardown(test_round_trip_after_reopen_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_created_with_parents_mode_0750, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack_deletes_segments_unacked_come_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewind_redelivers_from_oldest_unacked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_follows_appends_on_the_newest_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bound_drops_oldest_segments_counted_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ack_of_entry_dropped_for_space_is_noop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_entry_larger_than_bound_is_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_only_entry_removes_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_in_middle_entry_skipped_and_resynced,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_and_empty_segment_tolerated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_entries_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_mode_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_same_directory_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_leaves_no_partial_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
