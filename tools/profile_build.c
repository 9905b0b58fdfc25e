/*
 * profile_build.c — CSV → reference profile, streaming in bounded memory (see profile_build.h
 * for the method and its error bounds).
 *
 * The file is read record by record by a small RFC 4180 reader. Pass 1 decides each column's
 * type and computes count, missing, min, max, mean, standard deviation (Welford) and a reservoir
 * sample per numeric column, from which the quantile cuts and deciles follow. Pass 2 adds every
 * numeric value to its region's count and sum and counts categories (exactly, then with a
 * space-saving sketch). Pass 3 runs only when a sketch was needed, to recount its top
 * candidates exactly.
 */
#include "profile_build.h"

#include "alloc.h"
#include "error.h"
#include "grid.h"
#include "hash.h"
#include "names.h"

#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER_BYTES (256u * 1024)
#define NOTE_VALUE_CHARS 40

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                    */

struct errbuf {
    char *text;
    size_t size;
};

static int fail(struct errbuf *e, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct errbuf *e, int rc, const char *fmt, ...)
{
    if (e->size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, e->size, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* CSV reader                                                                                */

struct csv_reader {
    const char *path; /* the name in messages */
    int fd;
    bool owns_fd;
    char *in; /* read buffer of in_cap bytes */
    size_t in_cap, in_len, in_pos;
    bool eof;
    int pushback; /* one character pushed back, or -2 */
    /* The current record's fields, each NUL-terminated. rec and field_off start small and grow
     * to their bounds (MW_PROFILE_MAX_RECORD_BYTES, MW_PROFILE_MAX_COLUMNS + 1 offsets) only
     * for records that need it. */
    char *rec;
    size_t rec_len, rec_cap;
    size_t *field_off;
    size_t field_cap;
    size_t n_fields; /* fields in the record (may exceed what field_off stores) */
    uint64_t line;        /* physical line of the next character, 1-based */
    uint64_t record_line; /* line the current record started on */
    struct errbuf *err;
};

enum { CSV_EOF = -1, CSV_ERROR = -2 };

/* Take `fd` (a regular file, read from its first byte; closed by reader_close when `owns_fd`)
 * as the input named `name` in messages. */
static int reader_start(struct csv_reader *r, int fd, bool owns_fd, const char *name,
                        struct errbuf *err)
{
    memset(r, 0, sizeof *r);
    r->path = name;
    r->err = err;
    r->fd = fd;
    r->owns_fd = owns_fd;
    r->pushback = -2;
    r->line = 1;
    struct stat st;
    if (fstat(r->fd, &st) != 0)
        return fail(err, MW_EIO, "%s: %s", name, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(err, MW_EINVAL,
                    "%s: not a regular file (profile build reads its input more than once, so "
                    "it cannot read a pipe): write the CSV to a file first",
                    name);
    if (lseek(r->fd, 0, SEEK_SET) != 0)
        return fail(err, MW_EIO, "%s: %s", name, strerror(errno));
    /* A small file needs no more buffer than its size (it is read whole either way). */
    r->in_cap = st.st_size >= 0 && (uint64_t)st.st_size < READ_BUFFER_BYTES
                    ? (size_t)st.st_size + 1 < 4096 ? 4096 : (size_t)st.st_size + 1
                    : READ_BUFFER_BYTES;
    r->in = mw_malloc(r->in_cap);
    r->rec_cap = 4096;
    r->rec = mw_malloc(r->rec_cap);
    r->field_cap = 64;
    r->field_off = mw_malloc(r->field_cap * sizeof *r->field_off);
    if (!r->in || !r->rec || !r->field_off)
        return fail(err, MW_ENOMEM, "%s: out of memory", name);
    return 0;
}

static int reader_open(struct csv_reader *r, const char *path, struct errbuf *err)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (strcmp(path, "-") == 0)
        return fail(err, MW_EINVAL,
                    "-: profile build reads its input more than once, so it cannot read "
                    "standard input: write the CSV to a file first");
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer before it can be refused
     * (it is harmless for a regular file). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fail(err, MW_EIO, "%s: %s", path, strerror(errno));
    return reader_start(r, fd, true, path, err);
}

static void reader_close(struct csv_reader *r)
{
    if (r->fd >= 0 && r->owns_fd)
        close(r->fd);
    mw_free(r->in);
    mw_free(r->rec);
    mw_free(r->field_off);
    r->fd = -1;
    r->in = r->rec = NULL;
    r->field_off = NULL;
}

/* Back to the first byte, for the next pass. */
static int reader_rewind(struct csv_reader *r)
{
    if (lseek(r->fd, 0, SEEK_SET) != 0)
        return fail(r->err, MW_EIO, "%s: %s", r->path, strerror(errno));
    r->in_len = r->in_pos = 0;
    r->eof = false;
    r->pushback = -2;
    r->line = 1;
    return 0;
}

/* Refill the read buffer; skips a UTF-8 byte order mark at the start of the file. Returns 0,
 * or MW_EIO with the message set. */
static int refill(struct csv_reader *r)
{
    bool at_start = r->line == 1 && r->in_len == 0 && !r->eof;
    ssize_t n;
    do {
        n = read(r->fd, r->in, r->in_cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(r->err, MW_EIO, "%s: read: %s", r->path, strerror(errno));
    r->in_len = (size_t)n;
    r->in_pos = 0;
    if (n == 0)
        r->eof = true;
    if (at_start && n >= 3 && memcmp(r->in, "\xEF\xBB\xBF", 3) == 0)
        r->in_pos = 3;
    return 0;
}

/* Next byte (0..255), CSV_EOF, or CSV_ERROR. */
static inline int next_char(struct csv_reader *r)
{
    if (r->pushback != -2) {
        int c = r->pushback;
        r->pushback = -2;
        return c;
    }
    if (r->in_pos == r->in_len) {
        if (r->eof)
            return CSV_EOF;
        if (refill(r))
            return CSV_ERROR;
        if (r->in_pos == r->in_len)
            return CSV_EOF;
    }
    return (unsigned char)r->in[r->in_pos++];
}

/* After a CR: consumes a following LF and returns true, or pushes the character back. */
static bool crlf(struct csv_reader *r)
{
    int c = next_char(r);
    if (c == '\n')
        return true;
    r->pushback = c;
    return false;
}

/* Double a reader array of `*cap` elements of `size` bytes, up to `max` elements. */
static int grow(struct csv_reader *r, void **array, size_t *cap, size_t size, size_t max)
{
    size_t want = *cap * 2 < max ? *cap * 2 : max;
    void *bigger = mw_realloc(*array, want * size);
    if (!bigger)
        return fail(r->err, MW_ENOMEM, "%s: out of memory", r->path);
    *array = bigger;
    *cap = want;
    return 0;
}

static inline int append(struct csv_reader *r, char c)
{
    if (r->rec_len >= MW_PROFILE_MAX_RECORD_BYTES)
        return fail(r->err, MW_EPARSE, "%s:%" PRIu64 ": record longer than %u bytes", r->path,
                    r->record_line, (unsigned)MW_PROFILE_MAX_RECORD_BYTES);
    if (r->rec_len == r->rec_cap) {
        void *rec = r->rec;
        int rc = grow(r, &rec, &r->rec_cap, 1, MW_PROFILE_MAX_RECORD_BYTES);
        r->rec = rec;
        if (rc)
            return rc;
    }
    r->rec[r->rec_len++] = c;
    return 0;
}

/* Close the current field: NUL-terminate it and start the next one. */
static inline int end_field(struct csv_reader *r, size_t *field_start)
{
    int rc = append(r, '\0');
    if (rc)
        return rc;
    if (r->n_fields == r->field_cap && r->field_cap <= MW_PROFILE_MAX_COLUMNS) {
        void *off = r->field_off;
        rc = grow(r, &off, &r->field_cap, sizeof *r->field_off, MW_PROFILE_MAX_COLUMNS + 1);
        r->field_off = off;
        if (rc)
            return rc;
    }
    if (r->n_fields < r->field_cap)
        r->field_off[r->n_fields] = *field_start;
    r->n_fields++;
    *field_start = r->rec_len;
    return 0;
}

static inline const char *field(const struct csv_reader *r, size_t i)
{
    return r->rec + r->field_off[i];
}

/* Length of field i (fields are NUL-terminated; a field cannot hold a NUL byte). */
static inline size_t field_len(const struct csv_reader *r, size_t i)
{
    size_t end =
        i + 1 < r->n_fields && i + 1 <= MW_PROFILE_MAX_COLUMNS ? r->field_off[i + 1] : r->rec_len;
    return end - r->field_off[i] - 1;
}

/*
 * Read the next record into r->rec / r->field_off / r->n_fields. Returns 1 with a record,
 * 0 at the end of the file, or a negative MW_E* code with the message set (MW_EPARSE for
 * malformed CSV, naming the line).
 */
static int csv_next(struct csv_reader *r)
{
    enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } state = FIELD_START;
    size_t field_start = 0;
    uint64_t quote_line = 0;
    int rc;
    r->rec_len = 0;
    r->n_fields = 0;
    r->record_line = r->line;
    for (;;) {
        int c = next_char(r);
        if (c == CSV_ERROR)
            return MW_EIO;
        if (c == 0)
            return fail(r->err, MW_EPARSE, "%s:%" PRIu64 ": NUL byte in the data", r->path,
                        r->line);
        switch (state) {
        case QUOTED:
            if (c == '"') {
                state = QUOTE_IN_QUOTED;
            } else if (c == CSV_EOF) {
                return fail(r->err, MW_EPARSE,
                            "%s:%" PRIu64 ": unterminated quoted field (the file ends inside "
                            "quotes)",
                            r->path, quote_line);
            } else {
                if (c == '\n')
                    r->line++;
                if ((rc = append(r, (char)c)))
                    return rc;
            }
            continue;
        case QUOTE_IN_QUOTED:
            if (c == '"') {
                state = QUOTED;
                if ((rc = append(r, '"')))
                    return rc;
                continue;
            }
            if (c == ',') {
                if ((rc = end_field(r, &field_start)))
                    return rc;
                state = FIELD_START;
                continue;
            }
            if (c == '\n' || c == CSV_EOF || (c == '\r' && crlf(r)))
                goto end_of_record;
            return fail(r->err, MW_EPARSE,
                        "%s:%" PRIu64 ": unexpected character after a closing quote (a quote "
                        "inside a quoted field is written \"\")",
                        r->path, r->line);
        case FIELD_START:
            if (c == '"') {
                state = QUOTED;
                quote_line = r->line;
                continue;
            }
            /* A blank line between records is skipped. */
            if (r->n_fields == 0 && (c == '\n' || (c == '\r' && crlf(r)))) {
                r->line++;
                r->record_line = r->line;
                continue;
            }
            if (c == CSV_EOF && r->n_fields == 0)
                return 0;
            state = UNQUOTED;
            /* fall through */
        case UNQUOTED:
            if (c == ',') {
                if ((rc = end_field(r, &field_start)))
                    return rc;
                state = FIELD_START;
                continue;
            }
            if (c == '\n' || c == CSV_EOF || (c == '\r' && crlf(r)))
                goto end_of_record;
            if ((rc = append(r, (char)c)))
                return rc;
            continue;
        }
    end_of_record:
        if ((rc = end_field(r, &field_start)))
            return rc;
        if (c != CSV_EOF)
            r->line++;
        return 1;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Values                                                                                    */

static bool is_missing(const char *s, size_t len)
{
    switch (len) {
    case 0:
        return true;
    case 2:
        return strcasecmp(s, "NA") == 0;
    case 3:
        return strcasecmp(s, "NaN") == 0;
    case 4:
        return strcasecmp(s, "null") == 0;
    default:
        return false;
    }
}

/* Whether the whole of s (len bytes) is a finite number; stores it in *x. strtod would skip
 * leading blanks but not trailing ones: neither is accepted, so " 7" and "7 " are both text. */
static bool parse_number(const char *s, size_t len, double *x)
{
    if (len == 0 || isspace((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s + len || end == s || !isfinite(v))
        return false;
    *x = v;
    return true;
}

/* Whether s is well-formed UTF-8 (JSON text must be; protobuf strings from the agent are). */
static bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t c = *p++;
        if (c < 0x80)
            continue;
        size_t n;
        uint32_t min;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < n)
            return false;
        for (size_t i = 0; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        p += n;
    }
    return true;
}

/* splitmix64: a small, fast generator with a fixed seed, so samples are reproducible. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = mw_hash_bytes(MW_HASH_INIT, s, len);
    return h ^ (h >> 32);
}

/* ---------------------------------------------------------------------------------------- */
/* Category counting: a hash table over a min-heap of counters (space-saving when full)       */

struct cat_entry {
    char *key;
    size_t key_len;
    uint64_t hash;
    uint64_t count;
    size_t slot; /* where the hash table points at this entry */
};

struct cat_table {
    struct cat_entry *heap; /* min-heap by count, n_used of cap */
    size_t n_used, cap;
    uint32_t *slots;  /* heap index + 1; 0 = empty; linear probing */
    size_t n_slots;   /* power of two >= 2 cap */
    bool sketched;    /* an entry was replaced: counts are space-saving estimates */
    bool lookup_only; /* pass 3: count only the keys present, no heap order */
};

static int cat_table_init(struct cat_table *t, size_t cap)
{
    memset(t, 0, sizeof *t);
    t->cap = cap;
    t->n_slots = 16;
    while (t->n_slots < 2 * cap)
        t->n_slots *= 2;
    t->heap = mw_calloc(cap, sizeof *t->heap);
    t->slots = mw_calloc(t->n_slots, sizeof *t->slots);
    return t->heap && t->slots ? 0 : MW_ENOMEM;
}

static void cat_table_free(struct cat_table *t)
{
    if (t->heap)
        for (size_t i = 0; i < t->n_used; i++)
            mw_free(t->heap[i].key);
    mw_free(t->heap);
    mw_free(t->slots);
    memset(t, 0, sizeof *t);
}

static void heap_swap(struct cat_table *t, size_t i, size_t j)
{
    struct cat_entry tmp = t->heap[i];
    t->heap[i] = t->heap[j];
    t->heap[j] = tmp;
    t->slots[t->heap[i].slot] = (uint32_t)i + 1;
    t->slots[t->heap[j].slot] = (uint32_t)j + 1;
}

static void sift_down(struct cat_table *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n_used && t->heap[l].count < t->heap[m].count)
            m = l;
        if (r < t->n_used && t->heap[r].count < t->heap[m].count)
            m = r;
        if (m == i)
            return;
        heap_swap(t, i, m);
        i = m;
    }
}

static void sift_up(struct cat_table *t, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent].count <= t->heap[i].count)
            return;
        heap_swap(t, i, parent);
        i = parent;
    }
}

/* The slot holding key, or the empty slot where it would go. */
static size_t cat_find_slot(const struct cat_table *t, const char *key, size_t len, uint64_t h)
{
    size_t mask = t->n_slots - 1;
    for (size_t s = (size_t)h & mask;; s = (s + 1) & mask) {
        uint32_t idx = t->slots[s];
        if (idx == 0)
            return s;
        const struct cat_entry *e = &t->heap[idx - 1];
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return s;
    }
}

/* Remove slot s with backward-shift deletion, so probing stays correct without tombstones. */
static void cat_remove_slot(struct cat_table *t, size_t s)
{
    size_t mask = t->n_slots - 1;
    size_t hole = s;
    for (size_t j = (s + 1) & mask; t->slots[j] != 0; j = (j + 1) & mask) {
        size_t home = (size_t)t->heap[t->slots[j] - 1].hash & mask;
        /* Entry j may move to the hole when its home is not cyclically in (hole, j]. */
        bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            t->slots[hole] = t->slots[j];
            t->heap[t->slots[hole] - 1].slot = hole;
            hole = j;
        }
    }
    t->slots[hole] = 0;
}

/* Count one occurrence of key. Returns 0 or MW_ENOMEM. */
static int cat_add(struct cat_table *t, const char *key, size_t len)
{
    uint64_t h = hash_bytes(key, len);
    size_t s = cat_find_slot(t, key, len, h);
    if (t->slots[s] != 0) {
        size_t i = t->slots[s] - 1;
        t->heap[i].count++;
        if (!t->lookup_only)
            sift_down(t, i);
        return 0;
    }
    if (t->lookup_only)
        return 0;
    char *copy = mw_strndup(key, len);
    if (!copy)
        return MW_ENOMEM;
    if (t->n_used < t->cap) {
        size_t i = t->n_used++;
        t->heap[i] =
            (struct cat_entry){.key = copy, .key_len = len, .hash = h, .count = 1, .slot = s};
        t->slots[s] = (uint32_t)i + 1;
        sift_up(t, i);
        return 0;
    }
    /* Space-saving: the least counted entry gives its place (and its count + 1) to key. */
    t->sketched = true;
    struct cat_entry *root = &t->heap[0];
    cat_remove_slot(t, root->slot);
    mw_free(root->key);
    root->key = copy;
    root->key_len = len;
    root->hash = h;
    root->count++;
    s = cat_find_slot(t, key, len, h);
    root->slot = s;
    t->slots[s] = 1;
    sift_down(t, 0);
    return 0;
}

/* Heap entries by count descending, then value ascending: the deterministic top-K order. */
static int cmp_entry_desc(const void *a, const void *b)
{
    const struct cat_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Sort the entries for reading (destroys the heap and hash order: the table is done). */
static void cat_table_sort(struct cat_table *t)
{
    qsort(t->heap, t->n_used, sizeof *t->heap, cmp_entry_desc);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-column state                                                                          */

struct column {
    int feature; /* index into features, or -1 when ignored */
    bool forced_categorical;
    bool numeric; /* still numeric (pass 1), or numeric (afterwards) */
    /* pass 1, numeric */
    double *sample;
    size_t sample_len, sample_alloc, sample_cap;
    uint64_t rng;
    double sum, sum_comp; /* Neumaier compensated sum */
    /* Welford's running mean of x - w_shift (w_shift = the first value) and sum of squared
     * deviations from it, Neumaier-compensated (see welford_add). */
    double w_shift, w_mean, w_m2, w_m2_comp;
    uint64_t n_numeric;
    /* pass 2 */
    double *region_comp; /* numeric: the Neumaier compensation of each region sum */
    struct cat_table table;
    uint64_t n_long;    /* values longer than MW_PROFILE_MAX_CATEGORY_BYTES */
    uint64_t n_invalid; /* values that are not UTF-8 */
};

struct build {
    const struct mw_profile_build_options *o;
    struct csv_reader reader;
    struct errbuf *err;
    size_t n_columns;
    size_t n_numeric_candidates; /* columns not forced categorical nor left out */
    bool noted_small_sample;
    struct column *columns;
    struct mw_built_profile *p;
};

/* Add a remark for the user to the profile. Returns 0, or MW_ENOMEM with the message set. */
static int note(struct build *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int note(struct build *b, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct mw_built_profile *p = b->p;
    char **grown = mw_realloc(p->notes, (p->n_notes + 1) * sizeof *grown);
    if (!grown)
        return fail(b->err, MW_ENOMEM, "out of memory");
    p->notes = grown;
    if (!(p->notes[p->n_notes] = mw_strdup(text)))
        return fail(b->err, MW_ENOMEM, "out of memory");
    p->n_notes++;
    return 0;
}

/* A printable, shortened copy of a value for a note. */
static void quote_value(const char *s, size_t len, char *out, size_t size)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 4 < size && i < NOTE_VALUE_CHARS; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = c >= 0x20 && c != 0x7F ? (char)c : '?';
    }
    if (len > NOTE_VALUE_CHARS && j + 4 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

static bool in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] && strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* Each column named in the options must exist in the header. */
static int check_option_columns(struct build *b, const char *what, const char *const *list,
                                size_t n)
{
    const struct csv_reader *r = &b->reader;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t c = 0; c < b->n_columns && !found; c++)
            found = list[i] && strcmp(field(r, c), list[i]) == 0;
        if (!found)
            return fail(b->err, MW_EINVAL, "%s: %s %s: no such column in the header", r->path, what,
                        list[i] ? list[i] : "(null)");
    }
    return 0;
}

/* Read and check the header; create the columns and the (empty) features. */
static int read_header(struct build *b)
{
    struct csv_reader *r = &b->reader;
    const struct mw_profile_build_options *o = b->o;
    int rc = csv_next(r);
    if (rc == 0)
        return fail(b->err, MW_EPARSE, "%s: empty file: expected a header row", r->path);
    if (rc < 0)
        return rc;
    if (r->n_fields > MW_PROFILE_MAX_COLUMNS)
        return fail(b->err, MW_EPARSE, "%s:%" PRIu64 ": %zu columns, more than the %d supported",
                    r->path, r->record_line, r->n_fields, MW_PROFILE_MAX_COLUMNS);
    b->n_columns = r->n_fields;
    for (size_t i = 0; i < b->n_columns; i++) {
        if (field_len(r, i) == 0)
            return fail(b->err, MW_EPARSE, "%s:%" PRIu64 ": column %zu has an empty name", r->path,
                        r->record_line, i + 1);
        if (!utf8_valid(field(r, i), field_len(r, i)))
            return fail(b->err, MW_EPARSE, "%s:%" PRIu64 ": column %zu's name is not UTF-8",
                        r->path, r->record_line, i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(field(r, i), field(r, j)) == 0)
                return fail(b->err, MW_EPARSE,
                            "%s:%" PRIu64 ": duplicate column name \"%s\" (columns %zu and %zu)",
                            r->path, r->record_line, field(r, i), j + 1, i + 1);
    }
    const char *label[1] = {o->label};
    if ((rc = check_option_columns(b, "--categorical", o->categorical, o->n_categorical)) ||
        (rc = check_option_columns(b, "--ignore", o->ignore, o->n_ignore)) ||
        (rc = check_option_columns(b, "--label", label, o->label ? 1 : 0)))
        return rc;

    b->columns = mw_calloc(b->n_columns, sizeof *b->columns);
    b->p->features = mw_calloc(b->n_columns, sizeof *b->p->features);
    if (!b->columns || !b->p->features)
        return fail(b->err, MW_ENOMEM, "out of memory");
    size_t n_candidates = 0;
    for (size_t i = 0; i < b->n_columns; i++) {
        struct column *c = &b->columns[i];
        const char *name = field(r, i);
        c->feature = -1;
        if (in_list(name, o->ignore, o->n_ignore) || (o->label && strcmp(name, o->label) == 0))
            continue;
        if (strchr(name, '|'))
            return fail(b->err, MW_EPARSE,
                        "%s:%" PRIu64 ": column %zu (\"%s\"): a feature name cannot contain '|' "
                        "(rename the column, or --ignore it)",
                        r->path, r->record_line, i + 1, name);
        struct mw_built_feature *f = &b->p->features[b->p->n_features];
        c->feature = (int)b->p->n_features++;
        f->name = mw_strdup(name);
        if (!f->name)
            return fail(b->err, MW_ENOMEM, "out of memory");
        f->column = i;
        f->min = f->max = f->mean = f->std = NAN;
        c->forced_categorical = in_list(name, o->categorical, o->n_categorical);
        c->numeric = !c->forced_categorical;
        c->rng = 0x6D6F64656C776174ull ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
        n_candidates += c->numeric;
    }
    if (b->p->n_features == 0)
        return fail(b->err, MW_EINVAL, "%s: no feature columns left (all ignored)", r->path);
    if (b->p->n_features > MW_PROFILE_BUILD_MAX_FEATURES)
        return fail(b->err, MW_EINVAL,
                    "%s: %zu feature columns, a profile holds at most %d (--ignore some)", r->path,
                    b->p->n_features, MW_PROFILE_BUILD_MAX_FEATURES);
    /* Every numeric sample together fits MW_PROFILE_SAMPLE_BUDGET values. */
    size_t cap = o->sample_cap ? o->sample_cap : MW_PROFILE_SAMPLE_CAP;
    if (n_candidates && cap > MW_PROFILE_SAMPLE_BUDGET / n_candidates) {
        cap = MW_PROFILE_SAMPLE_BUDGET / n_candidates;
        if (cap < MW_PROFILE_MIN_SAMPLE_CAP)
            cap = MW_PROFILE_MIN_SAMPLE_CAP;
    }
    for (size_t i = 0; i < b->n_columns; i++)
        b->columns[i].sample_cap = cap;
    b->n_numeric_candidates = n_candidates;
    return 0;
}

static int check_width(struct build *b)
{
    struct csv_reader *r = &b->reader;
    if (r->n_fields != b->n_columns)
        return fail(b->err, MW_EPARSE, "%s:%" PRIu64 ": expected %zu fields, got %zu", r->path,
                    r->record_line, b->n_columns, r->n_fields);
    return 0;
}

/* Reservoir sampling (algorithm R): the first cap values, then value n replaces a random
 * slot with probability cap / n. */
static int sample_add(struct column *c, uint64_t n_seen, double x)
{
    if (c->sample_len < c->sample_cap) {
        if (c->sample_len == c->sample_alloc) {
            size_t grow = c->sample_alloc ? 2 * c->sample_alloc : 1024;
            if (grow > c->sample_cap)
                grow = c->sample_cap;
            double *p = mw_realloc(c->sample, grow * sizeof *p);
            if (!p)
                return MW_ENOMEM;
            c->sample = p;
            c->sample_alloc = grow;
        }
        c->sample[c->sample_len++] = x;
        return 0;
    }
    uint64_t j = next_random(&c->rng) % n_seen; /* n_seen <= 2^63: the bias is < 2^-20 */
    if (j < c->sample_cap)
        c->sample[j] = x;
    return 0;
}

/* Neumaier's compensated sum: *sum + *comp is the sum of the values added, the low-order bits
 * each addition drops kept in *comp (which the caller adds last). */
static void neumaier_add(double *sum, double *comp, double x)
{
    double t = *sum + x;
    *comp += fabs(*sum) >= fabs(x) ? (*sum - t) + x : (x - t) + *sum;
    *sum = t;
}

/*
 * Welford's update with the column's n_numeric-th value x (n_numeric already counts it). Unlike
 * sum(x^2) - n mean^2 it never subtracts two large nearly equal numbers. It runs on x minus the
 * column's first value, which leaves the deviation unchanged: on raw values the running mean
 * rounds at the scale of |mean|, and for a feature with a large mean and a small spread that
 * costs digits (4e-9 relative at mean 1e9, sd 1, 20,000 values; shifted, below 1e-15).
 */
static void welford_add(struct column *c, double x)
{
    if (c->n_numeric == 1)
        c->w_shift = x;
    x -= c->w_shift;
    double delta = x - c->w_mean;
    c->w_mean += delta / (double)c->n_numeric;
    double inc = delta * (x - c->w_mean);
    double t = c->w_m2 + inc;
    c->w_m2_comp += fabs(c->w_m2) >= fabs(inc) ? (c->w_m2 - t) + inc : (inc - t) + c->w_m2;
    c->w_m2 = t;
}

/* Population standard deviation (ddof 0) of the values given to welford_add; NaN for none,
 * +inf when the squared deviations overflow (written as null, like a non-finite mean). */
static double welford_std(const struct column *c)
{
    if (c->n_numeric == 0)
        return NAN;
    double m2 = c->w_m2 + c->w_m2_comp;
    return sqrt(fmax(m2, 0.0) / (double)c->n_numeric);
}

static int pass1_value(struct build *b, struct column *c, const char *s, size_t len)
{
    struct mw_built_feature *f = &b->p->features[c->feature];
    if (is_missing(s, len)) {
        f->missing++;
        return 0;
    }
    f->count++;
    if (!c->numeric)
        return 0;
    double x;
    if (!parse_number(s, len, &x)) {
        c->numeric = false;
        mw_free(c->sample);
        c->sample = NULL;
        c->sample_len = c->sample_alloc = 0;
        char shown[NOTE_VALUE_CHARS + 8];
        quote_value(s, len, shown, sizeof shown);
        if (c->n_numeric > 0)
            return note(b,
                        "column \"%s\" is categorical: \"%s\" on line %" PRIu64
                        " is not a number (%" PRIu64 " values before it were)",
                        f->name, shown, b->reader.record_line, c->n_numeric);
        return 0;
    }
    c->n_numeric++;
    if (c->n_numeric == 1 || x < f->min)
        f->min = x;
    if (c->n_numeric == 1 || x > f->max)
        f->max = x;
    neumaier_add(&c->sum, &c->sum_comp, x);
    welford_add(c, x);
    return sample_add(c, c->n_numeric, x) ? fail(b->err, MW_ENOMEM, "out of memory") : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of the sorted s[0..m-1] by linear interpolation, as numpy.quantile (method
 * "linear") computes it, so that cuts match numpy's exactly on unsampled columns. */
static double quantile_linear(const double *s, size_t m, double q)
{
    double h = (double)(m - 1) * q;
    if (h >= (double)(m - 1))
        return s[m - 1];
    double lo = floor(h);
    size_t i = (size_t)lo;
    double g = h - lo, a = s[i], d = s[i + 1] - a;
    return g >= 0.5 ? s[i + 1] - d * (1 - g) : a + d * g;
}

/* Sort v[0..n-1] and keep each distinct value strictly inside (lo, hi) once; a zero becomes
 * +0.0 (-0.0 compares equal to it, and which of the two survived would depend on qsort).
 * Returns the number kept. */
static size_t unique_inside(double *v, size_t n, double lo, double hi)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[i] == 0 ? 0.0 : v[i];
        if (!(x > lo && x < hi) || (kept > 0 && x == v[kept - 1]))
            continue;
        v[kept++] = x;
    }
    return kept;
}

/* The cuts and deciles of numeric feature f from its column's sorted sample (the method of
 * profile_build.h), and zeroed region counters for pass 2. Returns 0, or MW_ENOMEM with the
 * message set. */
static int quantile_cuts(struct build *b, struct column *c, struct mw_built_feature *f)
{
    const size_t n_grid = (size_t)b->o->n_grid_bins, n_bins = (size_t)b->o->n_bins;
    const size_t n_candidates = (n_grid - 1) + (n_bins - 1);
    f->cuts = mw_calloc(n_candidates, sizeof *f->cuts);
    f->deciles = mw_calloc(n_bins - 1, sizeof *f->deciles);
    if (!f->cuts || !f->deciles)
        return fail(b->err, MW_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 1; i < n_grid; i++)
        f->cuts[n++] = quantile_linear(c->sample, c->sample_len, (double)i / (double)n_grid);
    for (size_t j = 1; j < n_bins; j++) {
        double q = quantile_linear(c->sample, c->sample_len, (double)j / (double)n_bins);
        f->cuts[n++] = q;
        f->deciles[j - 1] = q;
    }
    f->n_cuts = unique_inside(f->cuts, n, f->min, f->max);
    /* Every decile is one of the candidates and passes the same filter, so it is a cut; bit for
     * bit too, as equal doubles are the same bits except for zeros, which are all +0.0. */
    f->n_deciles = unique_inside(f->deciles, n_bins - 1, f->min, f->max);
    f->region_counts = mw_calloc(f->n_cuts + 1, sizeof *f->region_counts);
    f->region_sums = mw_calloc(f->n_cuts + 1, sizeof *f->region_sums);
    c->region_comp = mw_calloc(f->n_cuts + 1, sizeof *c->region_comp);
    if (!f->region_counts || !f->region_sums || !c->region_comp)
        return fail(b->err, MW_ENOMEM, "out of memory");
    return 0;
}

/* After pass 1: numeric features get their cuts, categorical ones a counting table. */
static int finish_pass1(struct build *b)
{
    const struct mw_profile_build_options *o = b->o;
    size_t n_categorical = 0;
    for (size_t i = 0; i < b->n_columns; i++)
        n_categorical += b->columns[i].feature >= 0 && !b->columns[i].numeric;
    size_t k = o->exact_categories ? o->exact_categories : MW_PROFILE_EXACT_CATEGORIES;
    if (n_categorical && k > MW_PROFILE_CATEGORY_BUDGET / n_categorical)
        k = MW_PROFILE_CATEGORY_BUDGET / n_categorical;
    if (k < 2 * o->max_categories)
        k = 2 * o->max_categories;

    for (size_t i = 0; i < b->n_columns; i++) {
        struct column *c = &b->columns[i];
        if (c->feature < 0)
            continue;
        struct mw_built_feature *f = &b->p->features[c->feature];
        if (!c->numeric) {
            f->type = MW_BUILT_CATEGORICAL;
            f->min = f->max = f->mean = f->std = NAN;
            f->count = f->missing = 0; /* counted again in pass 2 */
            if (cat_table_init(&c->table, k))
                return fail(b->err, MW_ENOMEM, "out of memory");
            continue;
        }
        f->type = MW_BUILT_NUMERIC;
        if (f->count == 0)
            continue; /* left out of the profile at the end */
        f->mean = (c->sum + c->sum_comp) / (double)f->count;
        if (f->mean < f->min) /* rounding cannot put the mean outside the range */
            f->mean = f->min;
        if (f->mean > f->max)
            f->mean = f->max;
        f->std = welford_std(c);
        f->sample_size = c->sample_len;
        qsort(c->sample, c->sample_len, sizeof *c->sample, cmp_double);
        int rc = quantile_cuts(b, c, f);
        if (rc)
            return rc;
        if (c->sample_len < f->count && !b->noted_small_sample &&
            c->sample_cap < (o->sample_cap ? o->sample_cap : MW_PROFILE_SAMPLE_CAP)) {
            b->noted_small_sample = true; /* one note for every column */
            if (note(b,
                     "the sample budget is shared by %zu numeric columns: the quantile cuts of "
                     "a column with more than %zu values come from a sample of %zu (rank error "
                     "up to %.3f, except with probability 1e-6)",
                     b->n_numeric_candidates, c->sample_len, c->sample_len,
                     sqrt(log(2.0 / 1e-6) / (2.0 * (double)c->sample_len))))
                return MW_ENOMEM;
        }
        mw_free(c->sample);
        c->sample = NULL;
    }
    return 0;
}

static int pass2_value(struct build *b, struct column *c, const char *s, size_t len)
{
    struct mw_built_feature *f = &b->p->features[c->feature];
    if (c->numeric) {
        double x;
        if (is_missing(s, len))
            return 0;
        if (!parse_number(s, len, &x) || !f->region_counts) /* not so in pass 1 */
            return fail(b->err, MW_EIO, "%s:%" PRIu64 ": the file changed while it was read",
                        b->reader.path, b->reader.record_line);
        size_t r = mw_grid_region(f->cuts, f->n_cuts, x);
        f->region_counts[r]++;
        neumaier_add(&f->region_sums[r], &c->region_comp[r], x);
        return 0;
    }
    if (is_missing(s, len)) {
        f->missing++;
        return 0;
    }
    f->count++;
    if (len > MW_PROFILE_MAX_CATEGORY_BYTES) {
        c->n_long++;
        return 0;
    }
    if (!utf8_valid(s, len)) {
        c->n_invalid++;
        return 0;
    }
    return cat_add(&c->table, s, len) ? fail(b->err, MW_ENOMEM, "out of memory") : 0;
}

/* One pass over the data rows; pass 1 counts the rows, later passes check the count. */
static int run_pass(struct build *b, int pass)
{
    struct csv_reader *r = &b->reader;
    int rc;
    uint64_t rows = 0;
    if (pass > 1) {
        if ((rc = reader_rewind(r)))
            return rc;
        if ((rc = csv_next(r)) != 1) /* the header, checked in pass 1 */
            return rc < 0 ? rc
                          : fail(b->err, MW_EIO, "%s: the file changed while it was read", r->path);
    }
    while ((rc = csv_next(r)) == 1) {
        if ((rc = check_width(b)))
            return rc;
        rows++;
        for (size_t i = 0; i < b->n_columns; i++) {
            struct column *c = &b->columns[i];
            if (c->feature < 0)
                continue;
            const char *s = field(r, i);
            size_t len = field_len(r, i);
            rc = 0;
            if (pass == 1)
                rc = pass1_value(b, c, s, len);
            else if (pass == 2)
                rc = pass2_value(b, c, s, len);
            else if (!c->numeric && c->table.lookup_only && !is_missing(s, len))
                rc = cat_add(&c->table, s, len); /* a lookup: cannot fail */
            if (rc)
                return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (pass == 1) {
        if (rows == 0)
            return fail(b->err, MW_EPARSE, "%s: no data rows after the header", r->path);
        b->p->rows = rows;
    } else if (rows != b->p->rows) {
        return fail(b->err, MW_EIO,
                    "%s: the file changed while it was read (%" PRIu64 " rows, then %" PRIu64 ")",
                    r->path, b->p->rows, rows);
    }
    b->p->passes = (unsigned)pass;
    return 0;
}

/* Keep the top max_categories entries of a sorted table as the feature's categories. */
static int keep_categories(struct build *b, struct column *c, struct mw_built_feature *f)
{
    struct cat_table *t = &c->table;
    size_t keep = t->n_used < b->o->max_categories ? t->n_used : b->o->max_categories;
    while (keep > 0 && t->heap[keep - 1].count == 0)
        keep--; /* pass 3 candidates that never occurred */
    f->categories = mw_calloc(keep ? keep : 1, sizeof *f->categories);
    if (!f->categories)
        return fail(b->err, MW_ENOMEM, "out of memory");
    uint64_t kept = 0;
    for (size_t i = 0; i < keep; i++) {
        struct mw_built_category *cat = &f->categories[i];
        cat->value = t->heap[i].key; /* moved from the table */
        t->heap[i].key = NULL;
        cat->count = t->heap[i].count;
        cat->share = f->count ? (double)cat->count / (double)f->count : 0;
        kept += cat->count;
    }
    f->n_categories = keep;
    f->other_count = f->count - kept;
    f->other = f->count ? (double)f->other_count / (double)f->count : 0;
    return 0;
}

/* After pass 2: region sums get their compensation; exact category tables give their
 * categories, sketched ones are replaced by a lookup table of their top candidates for pass 3.
 * Sets *need_pass3. */
static int finish_pass2(struct build *b, bool *need_pass3)
{
    *need_pass3 = false;
    for (size_t i = 0; i < b->n_columns; i++) {
        struct column *c = &b->columns[i];
        if (c->feature < 0)
            continue;
        struct mw_built_feature *f = &b->p->features[c->feature];
        if (c->numeric) {
            for (size_t j = 0; c->region_comp && j <= f->n_cuts; j++)
                f->region_sums[j] += c->region_comp[j];
            mw_free(c->region_comp);
            c->region_comp = NULL;
            continue;
        }
        f->distinct_lower_bound = c->table.n_used + c->table.sketched;
        cat_table_sort(&c->table);
        if (!c->table.sketched) {
            int rc = keep_categories(b, c, f);
            if (rc)
                return rc;
            cat_table_free(&c->table);
            continue;
        }
        f->sketched = true;
        *need_pass3 = true;
        size_t n_cand = 2 * b->o->max_categories;
        if (n_cand > c->table.n_used)
            n_cand = c->table.n_used;
        struct cat_table lookup;
        if (cat_table_init(&lookup, n_cand))
            return fail(b->err, MW_ENOMEM, "out of memory");
        for (size_t j = 0; j < n_cand; j++) {
            struct cat_entry *e = &c->table.heap[j];
            size_t s = cat_find_slot(&lookup, e->key, e->key_len, e->hash);
            lookup.heap[j] = (struct cat_entry){
                .key = e->key, .key_len = e->key_len, .hash = e->hash, .count = 0, .slot = s};
            lookup.slots[s] = (uint32_t)j + 1;
            e->key = NULL;
        }
        lookup.n_used = n_cand;
        lookup.lookup_only = true;
        cat_table_free(&c->table);
        c->table = lookup;
    }
    return 0;
}

static int finish_pass3(struct build *b)
{
    for (size_t i = 0; i < b->n_columns; i++) {
        struct column *c = &b->columns[i];
        if (c->feature < 0 || c->numeric || !c->table.lookup_only)
            continue;
        cat_table_sort(&c->table);
        int rc = keep_categories(b, c, &b->p->features[c->feature]);
        if (rc)
            return rc;
        cat_table_free(&c->table);
    }
    return 0;
}

static void free_feature(struct mw_built_feature *f)
{
    mw_free(f->name);
    mw_free(f->cuts);
    mw_free(f->region_counts);
    mw_free(f->region_sums);
    mw_free(f->deciles);
    for (size_t j = 0; f->categories && j < f->n_categories; j++)
        mw_free(f->categories[j].value);
    mw_free(f->categories);
}

/* The last notes, and features without a single value are left out: they say nothing about a
 * distribution (a numeric one would have no min, max, nor region). */
static int finish(struct build *b)
{
    struct mw_built_profile *p = b->p;
    for (size_t i = 0; i < b->n_columns; i++) {
        const struct column *c = &b->columns[i];
        const struct mw_built_feature *f = c->feature >= 0 ? &p->features[c->feature] : NULL;
        if (f && c->n_long &&
            note(b, "column \"%s\": %" PRIu64 " values longer than %d bytes count as other",
                 f->name, c->n_long, MW_PROFILE_MAX_CATEGORY_BYTES))
            return MW_ENOMEM;
        if (f && c->n_invalid &&
            note(b, "column \"%s\": %" PRIu64 " values that are not UTF-8 count as other", f->name,
                 c->n_invalid))
            return MW_ENOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < p->n_features; i++) {
        struct mw_built_feature *f = &p->features[i];
        if (f->count > 0) {
            p->features[kept++] = *f;
            continue;
        }
        int rc = note(b,
                      "column \"%s\" has no values (every row is missing): left out of the "
                      "profile",
                      f->name);
        free_feature(f);
        if (rc)
            return rc;
    }
    p->n_features = kept;
    if (kept == 0)
        return fail(b->err, MW_EPARSE, "%s: no column has a single value", b->reader.path);
    return 0;
}

static int check_options(const struct mw_profile_build_options *o, struct errbuf *err)
{
    if (!o || !o->model || !*o->model)
        return fail(err, MW_EINVAL, "a model name is required (--model)");
    if (!mw_model_name_valid(o->model))
        return fail(err, MW_EINVAL, "--model %s: 1 to %d characters from [A-Za-z0-9._-]", o->model,
                    MW_MODEL_NAME_MAX);
    if (!o->version || !*o->version)
        return fail(err, MW_EINVAL, "a model version is required (--version)");
    if (!mw_version_valid(o->version) || !utf8_valid(o->version, strlen(o->version)))
        return fail(err, MW_EINVAL,
                    "--version: at most %d bytes of UTF-8 text, no control "
                    "characters",
                    MW_VERSION_MAX);
    if (o->n_bins < MW_PROFILE_MIN_BINS || o->n_bins > MW_PROFILE_MAX_BINS)
        return fail(err, MW_EINVAL, "--bins %d: must be %d..%d", o->n_bins, MW_PROFILE_MIN_BINS,
                    MW_PROFILE_MAX_BINS);
    if (o->n_grid_bins < MW_PROFILE_MIN_GRID_BINS || o->n_grid_bins > MW_PROFILE_MAX_GRID_BINS)
        return fail(err, MW_EINVAL, "--grid-bins %d: must be %d..%d", o->n_grid_bins,
                    MW_PROFILE_MIN_GRID_BINS, MW_PROFILE_MAX_GRID_BINS);
    if (o->n_grid_bins < o->n_bins)
        return fail(err, MW_EINVAL, "--grid-bins %d: must be at least --bins (%d)", o->n_grid_bins,
                    o->n_bins);
    if (o->max_categories < 1 || o->max_categories > MW_PROFILE_MAX_MAX_CATEGORIES)
        return fail(err, MW_EINVAL, "--max-categories %zu: must be 1..%d", o->max_categories,
                    MW_PROFILE_MAX_MAX_CATEGORIES);
    return 0;
}

void mw_profile_build_options_init(struct mw_profile_build_options *o)
{
    memset(o, 0, sizeof *o);
    o->n_bins = MW_PROFILE_DEFAULT_BINS;
    o->n_grid_bins = MW_PROFILE_DEFAULT_GRID_BINS;
    o->max_categories = MW_PROFILE_DEFAULT_MAX_CATEGORIES;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Both entry points: the input is the file at `path`, or `fd` (>= 0) named `path`. */
static int build(const char *path, int fd, const struct mw_profile_build_options *o,
                 struct mw_built_profile **out, char *err, size_t err_size)
{
    struct errbuf e = {err, err_size};
    struct build b = {.o = o, .err = &e};
    bool need_pass3 = false;
    int rc;
    if (err_size)
        err[0] = '\0';
    if (out)
        *out = NULL;
    if (!path || !out)
        return fail(&e, MW_EINVAL, "no file or no output");
    if ((rc = check_options(o, &e)))
        return rc;
    b.p = mw_calloc(1, sizeof *b.p);
    if (!b.p)
        return fail(&e, MW_ENOMEM, "out of memory");
    b.p->model = mw_strdup(o->model);
    b.p->version = mw_strdup(o->version);
    b.p->created_ms = o->created_ms ? o->created_ms : now_ms();
    if (!b.p->model || !b.p->version) {
        rc = fail(&e, MW_ENOMEM, "out of memory");
        goto out;
    }
    rc = fd >= 0 ? reader_start(&b.reader, fd, false, path, &e) : reader_open(&b.reader, path, &e);
    if (rc || (rc = read_header(&b)) ||
        (rc = run_pass(&b, 1)) || (rc = finish_pass1(&b)) || (rc = run_pass(&b, 2)) ||
        (rc = finish_pass2(&b, &need_pass3)))
        goto out;
    if (need_pass3 && ((rc = run_pass(&b, 3)) || (rc = finish_pass3(&b))))
        goto out;
    if ((rc = finish(&b)))
        goto out;
    *out = b.p;
    b.p = NULL;
out:
    if (b.columns) {
        for (size_t i = 0; i < b.n_columns; i++) {
            mw_free(b.columns[i].sample);
            mw_free(b.columns[i].region_comp);
            cat_table_free(&b.columns[i].table);
        }
        mw_free(b.columns);
    }
    reader_close(&b.reader);
    mw_built_profile_destroy(b.p);
    return rc;
}

int mw_profile_build(const char *path, const struct mw_profile_build_options *o,
                     struct mw_built_profile **out, char *err, size_t err_size)
{
    return build(path, -1, o, out, err, err_size);
}

int mw_profile_build_fd(int fd, const char *name, const struct mw_profile_build_options *o,
                        struct mw_built_profile **out, char *err, size_t err_size)
{
    if (fd < 0 || !name) {
        struct errbuf e = {err, err_size};
        if (out)
            *out = NULL;
        return fail(&e, MW_EINVAL, "no file or no output");
    }
    return build(name, fd, o, out, err, err_size);
}

void mw_built_profile_destroy(struct mw_built_profile *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->features && i < p->n_features; i++)
        free_feature(&p->features[i]);
    for (size_t i = 0; i < p->n_notes; i++)
        mw_free(p->notes[i]);
    mw_free(p->notes);
    mw_free(p->features);
    mw_free(p->model);
    mw_free(p->version);
    mw_free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                      */

static json_t *real_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* An array of n numbers (a non-finite one as null). NULL when out of memory. */
static json_t *double_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, real_or_null(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *count_array(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer((json_int_t)v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *feature_json(const struct mw_built_feature *f)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(
        j, "type", json_string(f->type == MW_BUILT_NUMERIC ? "numeric" : "categorical"));
    bad |= json_object_set_new(j, "count", json_integer((json_int_t)f->count));
    bad |= json_object_set_new(j, "missing", json_integer((json_int_t)f->missing));
    if (f->type == MW_BUILT_NUMERIC) {
        bad |= json_object_set_new(j, "min", real_or_null(f->min));
        bad |= json_object_set_new(j, "max", real_or_null(f->max));
        bad |= json_object_set_new(j, "mean", real_or_null(f->mean));
        bad |= json_object_set_new(j, "std", real_or_null(f->std));
        bad |= json_object_set_new(j, "cuts", double_array(f->cuts, f->n_cuts));
        bad |= json_object_set_new(j, "region_counts",
                                   count_array(f->region_counts, f->count ? f->n_cuts + 1 : 0));
        bad |= json_object_set_new(j, "region_sums",
                                   double_array(f->region_sums, f->count ? f->n_cuts + 1 : 0));
        bad |= json_object_set_new(j, "deciles", double_array(f->deciles, f->n_deciles));
    } else {
        json_t *cats = json_object();
        for (size_t i = 0; cats && i < f->n_categories; i++)
            bad |= json_object_set_new(cats, f->categories[i].value,
                                       json_real(f->categories[i].share));
        bad |= json_object_set_new(j, "categories", cats);
        bad |= json_object_set_new(j, "other", json_real(f->other));
    }
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *mw_built_profile_to_json(const struct mw_built_profile *p)
{
    if (!p)
        return NULL;
    json_t *features = json_object();
    json_t *doc = json_pack("{s:i, s:s, s:s, s:I, s:I}", "format", MW_PROFILE_BUILD_FORMAT, "model",
                            p->model, "version", p->version, "created_ms",
                            (json_int_t)p->created_ms, "rows", (json_int_t)p->rows);
    int bad = !features || !doc;
    for (size_t i = 0; !bad && i < p->n_features; i++)
        bad |= json_object_set_new(features, p->features[i].name, feature_json(&p->features[i]));
    if (!bad)
        bad |= json_object_set_new(doc, "features", features);
    else
        json_decref(features);
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}
