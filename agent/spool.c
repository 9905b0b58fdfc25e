/*
 * spool.c — the on-disk spool: segment files of checksummed entries (format in spool.h).
 *
 * In memory the spool keeps an array of its segments, oldest first, each with its valid length
 * and entry counts, a read cursor (segment index, offset) and an ack cursor (offset in the oldest
 * segment; every older entry of it is acknowledged). The newest segment is appended to only when
 * this process created it: after open, the first append starts a new segment, so a file left by
 * a crash is never written again. Entry ids are (segment number << 32 | offset).
 */
#include "spool.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "error.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR_BYTES MW_SPOOL_ENTRY_HEADER_BYTES
#define MAGIC "MWSP"
#define MAGIC_BYTES 4u
#define FORMAT_VERSION 1u
#define CRC_OFFSET 20u /* the CRC covers the header bytes before it */
#define NAME_DIGITS 12u
#define NAME_SUFFIX ".seg"
#define NAME_BYTES 17u /* 12 digits, ".seg", NUL */
#define SCAN_CHUNK_BYTES (64u << 10)
#define ID_OFFSET_BITS 32u
#define ID_OFFSET_MASK UINT64_C(0xffffffff)
#define MAX_SEGMENT_NUMBER UINT64_C(0xffffffff) /* numbers fill the high half of an id */

struct segment {
    uint64_t number;
    uint64_t file_bytes;  /* valid length of the file: its last entry ends here */
    uint64_t n_entries;   /* valid entries in it */
    uint64_t entry_bytes; /* their on-disk bytes */
    uint64_t n_acked;
    uint64_t acked_bytes;
    bool clean; /* no corrupt region: entries lie back to back from offset 0 */
    /* Wall-clock ms of the segment's first entry: when this process wrote it, or for a segment
     * found at open the file's birth time (its modification time where the file system keeps
     * no birth time, which is later). */
    int64_t first_write_ms;
};

/* One read-only descriptor kept open for the segment last used. */
struct fd_cache {
    int fd;
    uint64_t number;
};

/* A verified entry; its key then payload sit in the spool's entry_buf. */
struct entry_view {
    uint64_t sequence;
    size_t key_len;
    size_t payload_len;
    uint64_t total_bytes;
};

struct mw_spool {
    char *dir;   /* as given */
    char *dir_q; /* quoted for log lines */
    int dir_fd;  /* holds the flock */
    uint64_t max_bytes;
    uint64_t segment_bytes;
    bool fsync;
    mw_spool_drop_fn on_drop;
    void *drop_arg;
    struct segment *segs; /* oldest first */
    size_t n_segs;
    size_t cap_segs;
    uint64_t next_number;
    int write_fd; /* the newest segment, open for append, or -1 */
    size_t read_idx;
    uint64_t read_off;
    uint64_t ack_off; /* in segs[0] */
    struct fd_cache read_fd;
    struct fd_cache ack_fd;
    struct mw_buf entry_buf; /* key + payload of the entry last read */
    unsigned char *scan_buf; /* SCAN_CHUNK_BYTES, for resynchronising after corruption */
    struct mw_spool_stats stats;
};

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82f63b78) ---- */

static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

/* The running (inverted) CRC over p[0..n), a byte at a time. */
static uint32_t crc32c_by_table(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n--)
        crc = crc32c_table[(crc ^ *p++) & 0xffu] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
/* The same with SSE4.2's crc32 instruction (the Castagnoli polynomial), eight bytes at a time:
 * about a hundredth of the table's instructions on a sealed batch. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_by_instruction(uint32_t crc,
                                                                        const unsigned char *p,
                                                                        size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof word);
        c = __builtin_ia32_crc32di(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t mw__spool_crc32c(uint32_t crc, const void *data, size_t n)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_by_instruction(~crc, data, n);
#endif
    return ~crc32c_by_table(~crc, data, n);
}

uint32_t mw__spool_crc32c_by_table(uint32_t crc, const void *data, size_t n)
{
    return ~crc32c_by_table(~crc, data, n);
}

/* ---- little-endian fields ---- */

static void put_le(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Fill h with the header of an entry, CRC included. */
static void encode_entry_header(unsigned char h[HDR_BYTES], const void *key, size_t key_len,
                                uint64_t sequence, const void *payload, size_t len)
{
    memcpy(h, MAGIC, MAGIC_BYTES);
    h[4] = FORMAT_VERSION;
    h[5] = 0;
    put_le(h + 6, key_len, 2);
    put_le(h + 8, len, 4);
    put_le(h + 12, sequence, 8);
    uint32_t crc = mw__spool_crc32c(0, h, CRC_OFFSET);
    crc = mw__spool_crc32c(crc, key, key_len);
    crc = mw__spool_crc32c(crc, payload, len);
    put_le(h + CRC_OFFSET, crc, 4);
}

/* Check the fixed fields of a header and fill *v and *crc from it. False when it cannot be the
 * start of an entry. */
static bool decode_entry_header(const unsigned char h[HDR_BYTES], struct entry_view *v,
                                uint32_t *crc)
{
    if (memcmp(h, MAGIC, MAGIC_BYTES) != 0 || h[4] != FORMAT_VERSION || h[5] != 0)
        return false;
    v->key_len = (size_t)get_le(h + 6, 2);
    v->payload_len = (size_t)get_le(h + 8, 4);
    if (v->key_len > MW_SPOOL_MAX_KEY_BYTES || v->payload_len > MW_SPOOL_MAX_PAYLOAD_BYTES)
        return false;
    v->sequence = get_le(h + 12, 8);
    v->total_bytes = HDR_BYTES + (uint64_t)v->key_len + v->payload_len;
    *crc = (uint32_t)get_le(h + CRC_OFFSET, 4);
    return true;
}

/* ---- file helpers ---- */

static void segment_name(uint64_t number, char name[NAME_BYTES])
{
    snprintf(name, NAME_BYTES, "%012" PRIu64 NAME_SUFFIX, number);
}

/* True when `name` is exactly NAME_DIGITS digits then ".seg"; *number is their value. */
static bool parse_segment_name(const char *name, uint64_t *number)
{
    if (strlen(name) != NAME_BYTES - 1 || strcmp(name + NAME_DIGITS, NAME_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *number = v;
    return true;
}

static void log_sys(const struct mw_spool *s, const char *msg, const char *file, int err)
{
    char q[160];
    MW_LOG_ERROR("spool", msg, "dir=%s file=%s error=%s", s->dir_q, file ? file : "-",
                 mw_log_quote(strerror(err), q, sizeof q));
}

/* Read exactly n bytes at off. Returns 0; MW_ECORRUPT when the file ends first; MW_EIO. */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return MW_EIO;
        if (got == 0)
            return MW_ECORRUPT;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* Write all of iov[0..n) (the array is consumed), retrying short writes and EINTR. Returns 0 or
 * MW_EIO with errno set. */
static int writev_full(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t put = writev(fd, iov, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0) {
            if (put == 0)
                errno = EIO;
            return MW_EIO;
        }
        size_t left = (size_t)put;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static void fd_cache_close(struct fd_cache *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* A read-only descriptor for segment `number` in *fd, reusing the cached one. Returns 0 or
 * MW_EIO. The cache owns the descriptor. */
static int fd_cache_get(struct mw_spool *s, struct fd_cache *c, uint64_t number, int *fd)
{
    if (c->fd >= 0 && c->number == number) {
        *fd = c->fd;
        return 0;
    }
    fd_cache_close(c);
    char name[NAME_BYTES];
    segment_name(number, name);
    c->fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        log_sys(s, "cannot open segment", name, errno);
        return MW_EIO;
    }
    c->number = number;
    *fd = c->fd;
    return 0;
}

/* ---- reading entries ---- */

/* Verify the entry at `off` of fd, whose valid data ends at `end`, and read its key and payload
 * into entry_buf. Returns 0 with *v filled; MW_ECORRUPT when no valid entry starts there;
 * MW_EIO; MW_ENOMEM. */
static int read_entry(struct mw_spool *s, int fd, uint64_t off, uint64_t end, struct entry_view *v)
{
    unsigned char h[HDR_BYTES];
    uint32_t want_crc;
    if (off > end || end - off < HDR_BYTES)
        return MW_ECORRUPT;
    int rc = pread_full(fd, h, HDR_BYTES, off);
    if (rc)
        return rc;
    if (!decode_entry_header(h, v, &want_crc) || v->total_bytes > end - off)
        return MW_ECORRUPT;
    size_t body = v->key_len + v->payload_len;
    mw_buf_reset(&s->entry_buf);
    rc = mw_buf_reserve(&s->entry_buf, body);
    if (rc)
        return rc;
    rc = pread_full(fd, s->entry_buf.data, body, off + HDR_BYTES);
    if (rc)
        return rc;
    uint32_t crc = mw__spool_crc32c(0, h, CRC_OFFSET);
    crc = mw__spool_crc32c(crc, s->entry_buf.data, body);
    return crc == want_crc ? 0 : MW_ECORRUPT;
}

/* Offset of the first magic in [from, end) in *at, or `end` when there is none. Reads in
 * SCAN_CHUNK_BYTES pieces. Returns 0 or MW_EIO. */
static int find_magic(struct mw_spool *s, int fd, uint64_t from, uint64_t end, uint64_t *at)
{
    uint64_t pos = from;
    while (pos <= end && end - pos >= MAGIC_BYTES) {
        size_t n = end - pos < SCAN_CHUNK_BYTES ? (size_t)(end - pos) : SCAN_CHUNK_BYTES;
        int rc = pread_full(fd, s->scan_buf, n, pos);
        if (rc == MW_ECORRUPT)
            break; /* the file shrank under us: nothing more to find */
        if (rc)
            return rc;
        const unsigned char *hit = memmem(s->scan_buf, n, MAGIC, MAGIC_BYTES);
        if (hit) {
            *at = pos + (uint64_t)(hit - s->scan_buf);
            return 0;
        }
        pos += n - (MAGIC_BYTES - 1); /* a magic may straddle two pieces */
    }
    *at = end;
    return 0;
}

/* The first valid entry at or after `off` and before `end`: 0 with *v and *at filled, or
 * MW_ENOTFOUND; *skipped tells whether corrupt bytes were passed over on the way. Returns
 * MW_EIO or MW_ENOMEM on failure. */
static int find_entry(struct mw_spool *s, int fd, uint64_t off, uint64_t end, struct entry_view *v,
                      uint64_t *at, bool *skipped)
{
    uint64_t pos = off;
    *skipped = false;
    while (pos < end) {
        int rc = read_entry(s, fd, pos, end, v);
        if (rc == 0) {
            *at = pos;
            return 0;
        }
        if (rc != MW_ECORRUPT)
            return rc;
        *skipped = true;
        rc = find_magic(s, fd, pos + 1, end, &pos);
        if (rc)
            return rc;
    }
    return MW_ENOTFOUND;
}

/* ---- the segment index ---- */

/* Append seg to the index and to the level counters. Returns 0 or MW_ENOMEM. */
static int push_segment(struct mw_spool *s, const struct segment *seg)
{
    if (s->n_segs == s->cap_segs) {
        size_t cap = s->cap_segs ? s->cap_segs * 2 : 16;
        struct segment *segs = mw_realloc(s->segs, cap * sizeof *segs);
        if (!segs)
            return MW_ENOMEM;
        s->segs = segs;
        s->cap_segs = cap;
    }
    s->segs[s->n_segs++] = *seg;
    s->stats.segments++;
    s->stats.bytes += seg->file_bytes;
    s->stats.entries += seg->n_entries - seg->n_acked;
    return 0;
}

/* Delete segment i's file and forget it. Only the oldest (cursors move to the next segment) and
 * the newest (when its first write failed) are ever removed. */
static void remove_segment(struct mw_spool *s, size_t i)
{
    struct segment *seg = &s->segs[i];
    char name[NAME_BYTES];
    segment_name(seg->number, name);
    if (unlinkat(s->dir_fd, name, 0) != 0 && errno != ENOENT)
        log_sys(s, "cannot delete segment", name, errno);
    if (s->read_fd.fd >= 0 && s->read_fd.number == seg->number)
        fd_cache_close(&s->read_fd);
    if (s->ack_fd.fd >= 0 && s->ack_fd.number == seg->number)
        fd_cache_close(&s->ack_fd);
    if (i == s->n_segs - 1 && s->write_fd >= 0) {
        close(s->write_fd);
        s->write_fd = -1;
    }
    s->stats.segments--;
    s->stats.bytes -= seg->file_bytes;
    s->stats.entries -= seg->n_entries - seg->n_acked;
    memmove(seg, seg + 1, (s->n_segs - i - 1) * sizeof *seg);
    s->n_segs--;
    if (i == 0) {
        s->ack_off = 0;
        if (s->read_idx > 0)
            s->read_idx--;
        else
            s->read_off = 0;
    } else if (s->read_idx == i) {
        /* the reader was on the removed (empty) newest segment: it had read all before it */
        s->read_idx = i - 1;
        s->read_off = s->segs[i - 1].file_bytes;
    }
}

/* Tell the drop callback of every unacknowledged entry of the oldest segment. Entries that
 * cannot be read any more are not reported (the caller still counts them in the stats). */
static void report_dropped(struct mw_spool *s)
{
    const struct segment *seg = &s->segs[0];
    int fd;
    if (!s->on_drop || fd_cache_get(s, &s->ack_fd, seg->number, &fd) != 0)
        return;
    uint64_t off = s->ack_off;
    while (off < seg->file_bytes) {
        struct entry_view v;
        uint64_t at;
        bool skipped;
        if (find_entry(s, fd, off, seg->file_bytes, &v, &at, &skipped) != 0)
            return;
        struct mw_spool_entry e = {
            .id = (seg->number << ID_OFFSET_BITS) | at,
            .sequence = v.sequence,
            .key = s->entry_buf.data,
            .key_len = v.key_len,
            .payload = s->entry_buf.data + v.key_len,
            .payload_len = v.payload_len,
        };
        s->on_drop(&e, s->read_idx > 0 || at < s->read_off, s->drop_arg);
        off = at + v.total_bytes;
    }
}

/* Delete the oldest segment to respect a bound, counting its unacknowledged entries as lost. */
static void drop_oldest(struct mw_spool *s, const char *bound)
{
    report_dropped(s);
    const struct segment *seg = &s->segs[0];
    uint64_t lost = seg->n_entries - seg->n_acked;
    uint64_t lost_bytes = seg->entry_bytes - seg->acked_bytes;
    s->stats.dropped_full_entries += lost;
    s->stats.dropped_full_bytes += lost_bytes;
    MW_LOG_WARN("spool", "spool full, dropping oldest segment",
                "dir=%s bound=%s segment=%" PRIu64 " entries=%" PRIu64 " bytes=%" PRIu64, s->dir_q,
                bound, seg->number, lost, lost_bytes);
    remove_segment(s, 0);
}

/* ---- open ---- */

/* mkdir -p with mode 0750. Returns 0, MW_EINVAL (path too long) or MW_EIO. */
static int make_dirs(struct mw_spool *s)
{
    char path[PATH_MAX];
    size_t n = strlen(s->dir);
    if (n >= sizeof path)
        return MW_EINVAL;
    memcpy(path, s->dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST) {
            log_sys(s, "cannot create spool directory", path, errno);
            return MW_EIO;
        }
        path[i] = saved;
    }
    return 0;
}

/* Create, open and lock the directory. Returns 0, MW_EINVAL, MW_EAGAIN (locked) or MW_EIO. */
static int open_dir(struct mw_spool *s)
{
    int rc = make_dirs(s);
    if (rc)
        return rc;
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        log_sys(s, "cannot open spool directory", NULL, errno);
        return MW_EIO;
    }
    if (flock(s->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            MW_LOG_ERROR("spool", "spool directory in use by another spool", "dir=%s", s->dir_q);
            return MW_EAGAIN;
        }
        log_sys(s, "cannot lock spool directory", NULL, errno);
        return MW_EIO;
    }
    return 0;
}

/* True when the directory entry `name` is a segment file to load; warns about anything else. */
static bool is_segment_file(struct mw_spool *s, const char *name, uint64_t *number)
{
    struct stat st;
    if (!parse_segment_name(name, number)) {
        MW_LOG_WARN("spool", "ignoring file that is not a segment", "dir=%s file=%s", s->dir_q,
                    name);
        return false;
    }
    if (*number > MAX_SEGMENT_NUMBER) {
        MW_LOG_WARN("spool", "ignoring segment numbered past the id range", "dir=%s file=%s",
                    s->dir_q, name);
        return false;
    }
    if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        MW_LOG_WARN("spool", "ignoring segment name that is not a regular file", "dir=%s file=%s",
                    s->dir_q, name);
        return false;
    }
    return true;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The numbers of the segment files in the directory, sorted, in a new array (*numbers, freed
 * by the caller with mw_free; held only while opening). Returns 0, MW_EIO or MW_ENOMEM. */
static int list_segments(struct mw_spool *s, uint64_t **numbers, size_t *n_numbers)
{
    int rc = 0;
    size_t n = 0, cap = 0;
    uint64_t *nums = NULL;
    int fd = dup(s->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        log_sys(s, "cannot list spool directory", NULL, errno);
        if (fd >= 0)
            close(fd);
        return MW_EIO;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t number;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!is_segment_file(s, de->d_name, &number))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *more = mw_realloc(nums, cap * sizeof *nums);
            if (!more) {
                rc = MW_ENOMEM;
                goto out;
            }
            nums = more;
        }
        nums[n++] = number;
    }
    if (n > 1)
        qsort(nums, n, sizeof *nums, compare_u64);
out:
    closedir(d);
    if (rc) {
        mw_free(nums);
        return rc;
    }
    *numbers = nums;
    *n_numbers = n;
    return 0;
}

static void note_corrupt(struct mw_spool *s, const char *name, uint64_t off, const char *what)
{
    s->stats.corrupt_entries++;
    MW_LOG_WARN("spool", what, "dir=%s file=%s offset=%" PRIu64, s->dir_q, name, off);
}

/* Validate every entry of an open segment file of `size` bytes into *seg, counting corrupt
 * regions, and cut a corrupt tail off the file. Returns 0, MW_EIO or MW_ENOMEM. */
static int scan_segment_fd(struct mw_spool *s, int fd, const char *name, uint64_t size,
                           struct segment *seg)
{
    uint64_t end = size < ID_OFFSET_MASK ? size : ID_OFFSET_MASK; /* offsets must fit an id */
    uint64_t off = 0;
    bool corrupt = false;
    for (;;) {
        struct entry_view v;
        uint64_t at;
        bool skipped;
        int rc = find_entry(s, fd, off, end, &v, &at, &skipped);
        if (rc == MW_ENOTFOUND) {
            if (skipped)
                note_corrupt(s, name, off, "torn or corrupt segment tail truncated");
            corrupt |= skipped;
            break;
        }
        if (rc)
            return rc;
        if (skipped) {
            note_corrupt(s, name, off, "corrupt entry skipped");
            seg->clean = false;
            corrupt = true;
        }
        seg->n_entries++;
        seg->entry_bytes += v.total_bytes;
        off = at + v.total_bytes;
    }
    seg->file_bytes = off;
    if (corrupt)
        s->stats.corrupt_segments++;
    if (size > off && ftruncate(fd, (off_t)off) != 0)
        log_sys(s, "cannot truncate segment tail", name, errno);
    return 0;
}

/* When the file open at `fd` (whose fstat is `st`) was created, in wall-clock ms: its birth
 * time where the file system records one, else its last modification. */
static int64_t file_birth_ms(int fd, const struct stat *st)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == 0 && (stx.stx_mask & STATX_BTIME))
        return (int64_t)stx.stx_btime.tv_sec * 1000 + stx.stx_btime.tv_nsec / 1000000;
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* Open and validate segment `number` into *seg. Returns 0, MW_EIO or MW_ENOMEM. */
static int scan_segment(struct mw_spool *s, uint64_t number, struct segment *seg)
{
    char name[NAME_BYTES];
    struct stat st;
    segment_name(number, name);
    *seg = (struct segment){.number = number, .clean = true};
    int fd = openat(s->dir_fd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        log_sys(s, "cannot open segment, left in place", name, errno);
        if (fd >= 0)
            close(fd);
        return MW_EIO;
    }
    seg->first_write_ms = file_birth_ms(fd, &st);
    int rc = scan_segment_fd(s, fd, name, (uint64_t)st.st_size, seg);
    close(fd);
    return rc;
}

/* Validate segment `number` and add it to the index, or delete it when it holds no entry. */
static int load_segment(struct mw_spool *s, uint64_t number)
{
    struct segment seg;
    int rc = scan_segment(s, number, &seg);
    if (rc == MW_EIO) {
        s->stats.corrupt_segments++;
        return 0;
    }
    if (rc)
        return rc;
    if (seg.n_entries > 0)
        return push_segment(s, &seg);
    char name[NAME_BYTES];
    segment_name(number, name);
    MW_LOG_INFO("spool", "removing segment without entries", "dir=%s file=%s", s->dir_q, name);
    if (unlinkat(s->dir_fd, name, 0) != 0)
        log_sys(s, "cannot delete segment", name, errno);
    return 0;
}

/* Load the directory's segments, oldest first, then apply the bounds. */
static int load_segments(struct mw_spool *s)
{
    uint64_t *numbers = NULL;
    size_t n = 0;
    int rc = list_segments(s, &numbers, &n);
    if (rc)
        return rc;
    s->next_number = n ? numbers[n - 1] + 1 : 1;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = load_segment(s, numbers[i]);
    mw_free(numbers);
    while (rc == 0 && s->n_segs > MW_SPOOL_MAX_SEGMENTS)
        drop_oldest(s, "max_segments");
    while (rc == 0 && s->n_segs > 0 && s->stats.bytes > s->max_bytes)
        drop_oldest(s, "max_bytes");
    return rc;
}

static bool options_valid(const struct mw_spool_options *o)
{
    return o && o->dir && o->dir[0] && o->max_bytes >= HDR_BYTES && o->segment_bytes > 0 &&
           o->segment_bytes <= MW_SPOOL_MAX_SEGMENT_BYTES;
}

static char *quote_dup(const char *value)
{
    size_t size = 2 * strlen(value) + 3;
    char *q = mw_malloc(size);
    if (q)
        mw_log_quote(value, q, size);
    return q;
}

int mw_spool_open(const struct mw_spool_options *o, struct mw_spool **out)
{
    if (!out || !options_valid(o))
        return MW_EINVAL;
    *out = NULL;
    struct mw_spool *s = mw_calloc(1, sizeof *s);
    if (!s)
        return MW_ENOMEM;
    s->dir_fd = -1;
    s->write_fd = -1;
    s->read_fd.fd = -1;
    s->ack_fd.fd = -1;
    s->max_bytes = o->max_bytes;
    s->segment_bytes = o->segment_bytes;
    s->fsync = o->fsync;
    s->on_drop = o->on_drop;
    s->drop_arg = o->drop_arg;
    mw_buf_init(&s->entry_buf, MW_SPOOL_MAX_KEY_BYTES + MW_SPOOL_MAX_PAYLOAD_BYTES);
    s->dir = mw_strdup(o->dir);
    s->dir_q = quote_dup(o->dir);
    s->scan_buf = mw_malloc(SCAN_CHUNK_BYTES);
    int rc = MW_ENOMEM;
    if (!s->dir || !s->dir_q || !s->scan_buf)
        goto fail;
    rc = open_dir(s);
    if (rc)
        goto fail;
    rc = load_segments(s);
    if (rc)
        goto fail;
    MW_LOG_INFO("spool", "spool opened",
                "dir=%s segments=%" PRIu64 " entries=%" PRIu64 " bytes=%" PRIu64
                " corrupt_entries=%" PRIu64,
                s->dir_q, s->stats.segments, s->stats.entries, s->stats.bytes,
                s->stats.corrupt_entries);
    *out = s;
    return 0;
fail:
    mw_spool_close(s);
    return rc;
}

void mw_spool_close(struct mw_spool *s)
{
    if (!s)
        return;
    if (s->write_fd >= 0)
        close(s->write_fd);
    fd_cache_close(&s->read_fd);
    fd_cache_close(&s->ack_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd); /* releases the lock */
    mw_free(s->segs);
    mw_buf_free(&s->entry_buf);
    mw_free(s->scan_buf);
    mw_free(s->dir_q);
    mw_free(s->dir);
    mw_free(s);
}

/* ---- append ---- */

/* Start a new, empty newest segment open for append. Returns 0, MW_EIO or MW_ENOMEM. */
static int create_segment(struct mw_spool *s)
{
    char name[NAME_BYTES];
    if (s->next_number > MAX_SEGMENT_NUMBER) {
        MW_LOG_ERROR("spool", "segment numbers exhausted", "dir=%s", s->dir_q);
        return MW_EIO;
    }
    uint64_t number = s->next_number++;
    segment_name(number, name);
    int fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_sys(s, "cannot create segment", name, errno);
        return MW_EIO;
    }
    /* the new name must survive a power loss before entries in it are relied upon */
    int rc = s->fsync && fsync(s->dir_fd) != 0 ? MW_EIO : 0;
    if (rc)
        log_sys(s, "cannot sync spool directory", name, errno);
    struct segment seg = {.number = number, .clean = true};
    if (rc == 0)
        rc = push_segment(s, &seg);
    if (rc) {
        close(fd);
        unlinkat(s->dir_fd, name, 0);
        return rc;
    }
    s->write_fd = fd;
    return 0;
}

/* Make the newest segment writable with room for `need` more bytes, starting a new one when
 * the current one would pass segment_bytes or was not created by this process. */
static int ensure_tail(struct mw_spool *s, uint64_t need)
{
    if (s->write_fd >= 0) {
        const struct segment *tail = &s->segs[s->n_segs - 1];
        if (tail->file_bytes == 0 || tail->file_bytes + need <= s->segment_bytes)
            return 0;
        close(s->write_fd);
        s->write_fd = -1;
    }
    if (s->n_segs >= MW_SPOOL_MAX_SEGMENTS)
        drop_oldest(s, "max_segments");
    return create_segment(s);
}

/* Undo a failed append: cut the partial entry off, or stop writing to the segment when even that
 * fails (open truncates it later); a segment left without entries is removed. */
static void undo_append(struct mw_spool *s)
{
    struct segment *tail = &s->segs[s->n_segs - 1];
    char name[NAME_BYTES];
    segment_name(tail->number, name);
    if (ftruncate(s->write_fd, (off_t)tail->file_bytes) != 0) {
        log_sys(s, "cannot remove partial entry", name, errno);
        close(s->write_fd);
        s->write_fd = -1;
    }
    if (tail->n_entries == 0)
        remove_segment(s, s->n_segs - 1);
}

static int write_entry(struct mw_spool *s, const void *key, size_t key_len, uint64_t sequence,
                       const void *payload, size_t len)
{
    unsigned char h[HDR_BYTES];
    encode_entry_header(h, key, key_len, sequence, payload, len);
    struct iovec iov[3] = {
        {.iov_base = h, .iov_len = HDR_BYTES},
        {.iov_base = (void *)key, .iov_len = key_len},
        {.iov_base = (void *)payload, .iov_len = len},
    };
    int rc = writev_full(s->write_fd, iov, 3);
    if (rc == 0 && s->fsync && fdatasync(s->write_fd) != 0)
        rc = MW_EIO;
    if (rc) {
        int err = errno;
        char name[NAME_BYTES];
        segment_name(s->segs[s->n_segs - 1].number, name);
        log_sys(s, "cannot append to segment", name, err);
        undo_append(s);
        return rc;
    }
    uint64_t bytes = HDR_BYTES + (uint64_t)key_len + len;
    struct segment *tail = &s->segs[s->n_segs - 1];
    if (tail->n_entries == 0)
        tail->first_write_ms = mw_clock_wall_ms();
    tail->file_bytes += bytes;
    tail->n_entries++;
    tail->entry_bytes += bytes;
    s->stats.bytes += bytes;
    s->stats.entries++;
    s->stats.appended++;
    return 0;
}

int mw_spool_append(struct mw_spool *s, const void *key, size_t key_len, uint64_t sequence,
                    const void *payload, size_t len)
{
    if (!s || (!key && key_len) || (!payload && len) || key_len > MW_SPOOL_MAX_KEY_BYTES)
        return MW_EINVAL;
    if (len > MW_SPOOL_MAX_PAYLOAD_BYTES)
        return MW_ETOOBIG;
    uint64_t need = HDR_BYTES + (uint64_t)key_len + len;
    if (need > s->max_bytes)
        return MW_ETOOBIG;
    while (s->n_segs > 0 && s->stats.bytes + need > s->max_bytes)
        drop_oldest(s, "max_bytes");
    int rc = ensure_tail(s, need);
    if (rc)
        return rc;
    return write_entry(s, key, key_len, sequence, payload, len);
}

/* ---- replay ---- */

/* Corruption found while reading a segment that validated clean at open (the file changed
 * under us): count it once. */
static void note_late_corruption(struct mw_spool *s, struct segment *seg, uint64_t off)
{
    if (!seg->clean)
        return;
    char name[NAME_BYTES];
    segment_name(seg->number, name);
    seg->clean = false;
    s->stats.corrupt_segments++;
    note_corrupt(s, name, off, "corrupt entry skipped while reading");
}

int mw_spool_next(struct mw_spool *s, struct mw_spool_entry *e)
{
    if (!s || !e)
        return MW_EINVAL;
    while (s->read_idx < s->n_segs) {
        struct segment *seg = &s->segs[s->read_idx];
        if (s->read_off >= seg->file_bytes) {
            if (s->read_idx + 1 >= s->n_segs)
                break; /* stay on the newest segment: appends may follow */
            s->read_idx++;
            s->read_off = 0;
            continue;
        }
        int fd;
        struct entry_view v;
        uint64_t at;
        bool skipped;
        int rc = fd_cache_get(s, &s->read_fd, seg->number, &fd);
        if (rc == 0)
            rc = find_entry(s, fd, s->read_off, seg->file_bytes, &v, &at, &skipped);
        if (rc == MW_ENOTFOUND) {
            note_late_corruption(s, seg, s->read_off);
            s->read_off = seg->file_bytes;
            continue;
        }
        if (rc)
            return rc;
        if (skipped)
            note_late_corruption(s, seg, s->read_off);
        *e = (struct mw_spool_entry){
            .id = (seg->number << ID_OFFSET_BITS) | at,
            .sequence = v.sequence,
            .key = s->entry_buf.data,
            .key_len = v.key_len,
            .payload = s->entry_buf.data + v.key_len,
            .payload_len = v.payload_len,
        };
        s->read_off = at + v.total_bytes;
        s->stats.replayed++;
        return 0;
    }
    return MW_ENOTFOUND;
}

/* On-disk size of the entry at `off` of the oldest segment, from its header. */
static int entry_bytes_at(struct mw_spool *s, uint64_t off, uint64_t *bytes)
{
    unsigned char h[HDR_BYTES];
    struct entry_view v;
    uint32_t crc;
    int fd;
    const struct segment *seg = &s->segs[0];
    int rc = fd_cache_get(s, &s->ack_fd, seg->number, &fd);
    if (rc == 0)
        rc = pread_full(fd, h, HDR_BYTES, off);
    if (rc == 0 && (!decode_entry_header(h, &v, &crc) || off + v.total_bytes > seg->file_bytes))
        rc = MW_ECORRUPT;
    if (rc)
        return rc;
    *bytes = v.total_bytes;
    return 0;
}

int mw_spool_ack(struct mw_spool *s, uint64_t id)
{
    if (!s)
        return MW_EINVAL;
    uint64_t number = id >> ID_OFFSET_BITS;
    uint64_t off = id & ID_OFFSET_MASK;
    if (s->n_segs == 0 || number < s->segs[0].number)
        return 0; /* its segment was dropped for space (or fully acknowledged) */
    struct segment *seg = &s->segs[0];
    bool handed_out = s->read_idx > 0 || off < s->read_off;
    bool in_order = seg->clean ? off == s->ack_off : off >= s->ack_off;
    if (number != seg->number || !handed_out || !in_order)
        return MW_EINVAL;
    uint64_t bytes;
    int rc = entry_bytes_at(s, off, &bytes);
    if (rc)
        return rc;
    s->ack_off = off + bytes;
    seg->n_acked++;
    seg->acked_bytes += bytes;
    s->stats.entries--;
    if (seg->n_acked == seg->n_entries)
        remove_segment(s, 0);
    return 0;
}

void mw_spool_rewind(struct mw_spool *s)
{
    if (!s)
        return;
    s->read_idx = 0;
    s->read_off = s->ack_off;
}

bool mw_spool_empty(const struct mw_spool *s)
{
    return !s || s->stats.entries == 0;
}

int64_t mw_spool_oldest_ms(const struct mw_spool *s)
{
    return s && s->stats.entries && s->n_segs ? s->segs[0].first_write_ms : 0;
}

const struct mw_spool_stats *mw_spool_stats(const struct mw_spool *s)
{
    return &s->stats;
}
