/* pb_read.c — protobuf-c 1.4's unpacking rules in one pass (see pb_read.h). */
#include "pb_read.h"

#include "error.h"
#include "wire.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 64      /* of one message type: the repeated counts live on the stack */
#define MAX_DESCRIPTORS 64 /* message types reachable from the one read */
/* protobuf-c scans one message's fields into slabs of 16 << 0 .. 16 << 22 members and refuses
 * a message with more ("too many fields"). */
#define MAX_FIELDS_PER_MESSAGE (16ull * ((1ull << 23) - 1))

/* protobuf-c's own default allocator is static: this is the same malloc and free, so that
 * protobuf_c_message_free_unpacked(m, NULL) frees what a NULL allocator gave. */
static void *system_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void system_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator system_allocator = {system_alloc, system_free, NULL};

static void *take(ProtobufCAllocator *a, size_t n)
{
    return a->alloc(a->allocator_data, n);
}

static void give_back(ProtobufCAllocator *a, void *p)
{
    if (p)
        a->free(a->allocator_data, p);
}

/* ---- what the reader takes ------------------------------------------------------------------- */

static bool has_oneof(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            return true;
    return false;
}

/* Whether every message type reachable from `d` is one this reader fills as protobuf-c would:
 * no required fields (their absence refuses a message), no bytes fields, no proto3 fields
 * without presence (protobuf-c's merge takes the later occurrence's zero for them), fields
 * sorted by number (the lookup below), at most MAX_FIELDS each; and no oneof in a message that
 * can be merged (an optional message field's): protobuf-c merges occurrences pairwise as it
 * unpacks them and refuses a pair whose oneof neither sets, which reading the occurrences one
 * over the other cannot follow. */
static bool schema_ok(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **seen,
                      size_t *n_seen)
{
    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i] == d)
            return true;
    if (*n_seen == MAX_DESCRIPTORS || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC ||
        !d->message_init || d->n_fields > MAX_FIELDS)
        return false;
    seen[(*n_seen)++] = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->label == PROTOBUF_C_LABEL_REQUIRED || fd->label == PROTOBUF_C_LABEL_NONE ||
            fd->type == PROTOBUF_C_TYPE_BYTES)
            return false;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->label == PROTOBUF_C_LABEL_OPTIONAL &&
            !(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && has_oneof(fd->descriptor))
            return false;
        if (i > 0 && fd->id <= d->fields[i - 1].id)
            return false;
        if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !schema_ok(fd->descriptor, seen, n_seen))
            return false;
    }
    return true;
}

/* The last schema found good: the aggregator reads one message type over and over. */
static _Atomic(const ProtobufCMessageDescriptor *) schema_checked;

static bool schema_taken(const ProtobufCMessageDescriptor *d)
{
    if (atomic_load_explicit(&schema_checked, memory_order_relaxed) == d)
        return true;
    const ProtobufCMessageDescriptor *seen[MAX_DESCRIPTORS];
    size_t n_seen = 0;
    if (!schema_ok(d, seen, &n_seen))
        return false;
    atomic_store_explicit(&schema_checked, d, memory_order_relaxed);
    return true;
}

/* ---- fields ---------------------------------------------------------------------------------- */

/* The field numbered `tag`, or NULL: protobuf-c's int_range_lookup over fields sorted by
 * number, with the common case (numbers 1..n) first. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d, uint32_t tag)
{
    const ProtobufCFieldDescriptor *fields = d->fields;
    uint32_t i = tag - 1;
    if (i < d->n_fields && fields[i].id == tag)
        return &fields[i];
    size_t lo = 0, hi = d->n_fields;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fields[mid].id < tag)
            lo = mid + 1;
        else if (fields[mid].id > tag)
            hi = mid;
        else
            return &fields[mid];
    }
    return NULL;
}

/* protobuf-c's sizeof_elt_in_repeated_array. */
static size_t element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
    default:
        return sizeof(ProtobufCBinaryData);
    }
}

/* Whether a length-delimited occurrence of repeated field `fd` is read as packed values
 * (protobuf-c: declared packed, or of a type that could be). */
static bool read_as_packed(const ProtobufCFieldDescriptor *fd)
{
    return (fd->flags & PROTOBUF_C_FIELD_FLAG_PACKED) ||
           (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_BYTES &&
            fd->type != PROTOBUF_C_TYPE_MESSAGE);
}

/* Values in a packed run of `len` bytes, as protobuf-c's count_packed_elements counts them
 * (room to make; a varint run's malformed end is refused when it is read). */
static bool count_packed(ProtobufCType type, const uint8_t *data, size_t len, size_t *count)
{
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        *count = len / 4;
        return len % 4 == 0;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        *count = len / 8;
        return len % 8 == 0;
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64: {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += !(data[i] & 0x80);
        *count = n;
        return true;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *count = len;
        return true;
    default:
        return false;
    }
}

static void put32(void *member, uint32_t v)
{
    memcpy(member, &v, 4);
}

static void put64(void *member, uint64_t v)
{
    memcpy(member, &v, 8);
}

static uint32_t unzigzag32(uint32_t v)
{
    return (v >> 1) ^ -(v & 1);
}

static uint64_t unzigzag64(uint64_t v)
{
    return (v >> 1) ^ -(v & 1);
}

/* A varint of a packed run: its length (at most 10 bytes), 0 when unterminated (protobuf-c's
 * scan_varint). */
static size_t varint_len(const uint8_t *at, size_t rem)
{
    size_t max = rem < 10 ? rem : 10;
    for (size_t i = 0; i < max; i++)
        if (!(at[i] & 0x80))
            return i + 1;
    return 0;
}

/* Append the packed run of `f` to the *n values of `array` (room made), adding their number
 * to *n: protobuf-c's parse_packed_repeated_member. (An empty run may meet no array yet.) */
static int read_packed(ProtobufCType type, const struct mw_wire_field *f, char *array, size_t *n)
{
    if (f->len == 0)
        return 0;
    size_t size = element_size(type);
    switch (type) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        memcpy(array + size * *n, f->data, f->len);
        *n += f->len / size;
        return 0;
    default:
        break;
    }
    const uint8_t *at = f->data;
    size_t rem = f->len;
    size_t count = 0;
    while (rem > 0) {
        size_t s = varint_len(at, rem);
        if (!s)
            return MW_EPARSE;
        char *out = array + size * (*n + count);
        switch (type) {
        case PROTOBUF_C_TYPE_ENUM:
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_UINT32:
            put32(out, mw_wire_u32(at, s));
            break;
        case PROTOBUF_C_TYPE_SINT32:
            put32(out, unzigzag32(mw_wire_u32(at, s)));
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT64:
            put64(out, mw_wire_u64(at, s));
            break;
        case PROTOBUF_C_TYPE_SINT64:
            put64(out, unzigzag64(mw_wire_u64(at, s)));
            break;
        case PROTOBUF_C_TYPE_BOOL: {
            struct mw_wire_field v = {.type = MW_WIRE_VARINT, .data = at, .len = s};
            protobuf_c_boolean b = mw_wire_bool(&v);
            memcpy(out, &b, sizeof b);
            break;
        }
        default:
            return MW_PB_READ_NOT_MINE;
        }
        count++;
        at += s;
        rem -= s;
    }
    *n += count;
    return 0;
}

/* ---- messages -------------------------------------------------------------------------------- */

static int read_message(ProtobufCAllocator *a, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, const uint8_t *p, const uint8_t *end, bool merging,
                        unsigned depth);

/* One value of field `fd` from `f` into `member` (the field's slot, or a repeated field's
 * element): protobuf-c's parse_required_member. `replace`: the slot may hold an earlier
 * value (an optional or oneof field) — a string is freed, a message merged into. */
static int read_value(ProtobufCAllocator *a, const ProtobufCFieldDescriptor *fd,
                      const struct mw_wire_field *f, void *member, bool replace, unsigned depth)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
        if (f->type != MW_WIRE_VARINT)
            return MW_EPARSE;
        put32(member, mw_wire_u32(f->data, f->len));
        return 0;
    case PROTOBUF_C_TYPE_SINT32:
        if (f->type != MW_WIRE_VARINT)
            return MW_EPARSE;
        put32(member, unzigzag32(mw_wire_u32(f->data, f->len)));
        return 0;
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        if (f->type != MW_WIRE_32BIT)
            return MW_EPARSE;
        memcpy(member, f->data, 4);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        if (f->type != MW_WIRE_VARINT)
            return MW_EPARSE;
        put64(member, mw_wire_u64(f->data, f->len));
        return 0;
    case PROTOBUF_C_TYPE_SINT64:
        if (f->type != MW_WIRE_VARINT)
            return MW_EPARSE;
        put64(member, unzigzag64(mw_wire_u64(f->data, f->len)));
        return 0;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (f->type != MW_WIRE_64BIT)
            return MW_EPARSE;
        memcpy(member, f->data, 8);
        return 0;
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean b = mw_wire_bool(f);
        memcpy(member, &b, sizeof b);
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char **s = member;
        if (f->type != MW_WIRE_LEN)
            return MW_EPARSE;
        if (replace && *s != fd->default_value)
            give_back(a, *s);
        *s = take(a, f->len + 1);
        if (!*s)
            return MW_ENOMEM;
        memcpy(*s, f->data, f->len);
        (*s)[f->len] = '\0';
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage **sub = member;
        if (f->type != MW_WIRE_LEN)
            return MW_EPARSE;
        const ProtobufCMessageDescriptor *sd = fd->descriptor;
        /* protobuf-c unpacks the later occurrence and merges the earlier one into it, which
         * comes to reading the later one over the earlier. */
        if (replace && *sub && *sub != fd->default_value)
            return read_message(a, sd, *sub, f->data, f->data + f->len, true, depth + 1);
        /* Linked before it is read, so that a failure frees what was read. */
        *sub = take(a, sd->sizeof_message);
        if (!*sub)
            return MW_ENOMEM;
        sd->message_init(*sub);
        return read_message(a, sd, *sub, f->data, f->data + f->len, false, depth + 1);
    }
    case PROTOBUF_C_TYPE_BYTES:
    default:
        return MW_PB_READ_NOT_MINE;
    }
}

static void *member_at(ProtobufCMessage *m, unsigned offset)
{
    return (char *)m + offset;
}

/* A member of a oneof, replacing the member set before (protobuf-c's parse_oneof_member: the
 * earlier one is freed, not merged). */
static int read_oneof(ProtobufCAllocator *a, const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                      const struct mw_wire_field *f, unsigned depth)
{
    uint32_t *which = member_at(m, fd->quantifier_offset);
    void *member = member_at(m, fd->offset);
    if (*which) {
        const ProtobufCFieldDescriptor *old = find_field(d, *which);
        if (!old)
            return MW_EPARSE;
        if (old->type == PROTOBUF_C_TYPE_STRING) {
            char *s = *(char **)member;
            if (s != old->default_value)
                give_back(a, s);
        } else if (old->type == PROTOBUF_C_TYPE_MESSAGE) {
            ProtobufCMessage *sub = *(ProtobufCMessage **)member;
            if (sub && sub != old->default_value)
                protobuf_c_message_free_unpacked(sub, a);
        }
        memset(member, 0, element_size(old->type));
    }
    /* Set first, so that a failure frees what was read (the slot is clear). */
    *which = fd->id;
    return read_value(a, fd, f, member, true, depth);
}

/* Drop the unknown fields a message kept from an earlier occurrence: protobuf-c's merge keeps
 * only those of the last. */
static void drop_unknown(ProtobufCAllocator *a, ProtobufCMessage *m)
{
    for (size_t i = 0; i < m->n_unknown_fields; i++)
        give_back(a, m->unknown_fields[i].data);
    give_back(a, m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
}

static int keep_unknown(ProtobufCAllocator *a, ProtobufCMessage *m, const struct mw_wire_field *f)
{
    ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields];
    /* protobuf-c keeps the bytes after the tag: a length-delimited value with its length. */
    const uint8_t *from = f->type == MW_WIRE_LEN ? f->data - f->prefix_len : f->data;
    size_t len = f->type == MW_WIRE_LEN ? f->len + f->prefix_len : f->len;
    u->data = take(a, len);
    if (!u->data)
        return MW_ENOMEM;
    memcpy(u->data, from, len);
    u->tag = f->tag;
    u->wire_type = (ProtobufCWireType)f->type;
    u->len = len;
    m->n_unknown_fields++;
    return 0;
}

/* Make room in `m` for every repeated value and unknown field from p to end (p is the first
 * of them in this occurrence of the message, so the arrays are allocated once, at their size):
 * protobuf-c's scan pass. */
static int make_room(ProtobufCAllocator *a, const ProtobufCMessageDescriptor *d,
                     ProtobufCMessage *m, const uint8_t *p, const uint8_t *end)
{
    size_t add[MAX_FIELDS];
    memset(add, 0, d->n_fields * sizeof add[0]);
    size_t n_unknown = 0;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return MW_EPARSE;
        const ProtobufCFieldDescriptor *fd = find_field(d, f.tag);
        if (!fd) {
            n_unknown++;
            continue;
        }
        if (fd->label != PROTOBUF_C_LABEL_REPEATED)
            continue;
        size_t count = 1;
        if (f.type == MW_WIRE_LEN && read_as_packed(fd) &&
            !count_packed(fd->type, f.data, f.len, &count))
            return MW_EPARSE;
        add[fd - d->fields] += count;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (!add[i])
            continue;
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        size_t size = element_size(fd->type);
        size_t *n = member_at(m, fd->quantifier_offset);
        void **array = member_at(m, fd->offset);
        void *grown = take(a, (*n + add[i]) * size);
        if (!grown)
            return MW_ENOMEM;
        /* A merged occurrence appends to the earlier one's values. */
        if (*n)
            memcpy(grown, *array, *n * size);
        give_back(a, *array);
        *array = grown;
    }
    if (n_unknown) {
        m->unknown_fields = take(a, n_unknown * sizeof *m->unknown_fields);
        if (!m->unknown_fields)
            return MW_ENOMEM;
    }
    return 0;
}

static int read_repeated(ProtobufCAllocator *a, ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *fd, const struct mw_wire_field *f,
                         unsigned depth)
{
    size_t *n = member_at(m, fd->quantifier_offset);
    char *array = *(char **)member_at(m, fd->offset);
    size_t size = element_size(fd->type);
    if (f->type == MW_WIRE_LEN && read_as_packed(fd))
        return read_packed(fd->type, f, array, n);
    void *element = array + size * *n;
    if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        /* Counted first, so that a failure frees what was read. */
        *(void **)element = NULL;
        ++*n;
        return read_value(a, fd, f, element, false, depth);
    }
    int rc = read_value(a, fd, f, element, false, depth);
    if (rc == 0)
        ++*n;
    return rc;
}

/* Read the fields of p..end into `m` (initialised; `merging`: holding an earlier occurrence,
 * read over). */
static int read_message(ProtobufCAllocator *a, const ProtobufCMessageDescriptor *d,
                        ProtobufCMessage *m, const uint8_t *p, const uint8_t *end, bool merging,
                        unsigned depth)
{
    if (depth > MW_PB_READ_MAX_DEPTH)
        return MW_PB_READ_NOT_MINE;
    if (merging)
        drop_unknown(a, m);
    bool room_made = false;
    uint64_t n_read = 0;
    while (p < end) {
        const uint8_t *at = p;
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f) || ++n_read > MAX_FIELDS_PER_MESSAGE)
            return MW_EPARSE;
        const ProtobufCFieldDescriptor *fd = find_field(d, f.tag);
        int rc;
        if (!fd || fd->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!room_made) {
                rc = make_room(a, d, m, at, end);
                if (rc)
                    return rc;
                room_made = true;
            }
            rc = fd ? read_repeated(a, m, fd, &f, depth) : keep_unknown(a, m, &f);
        } else if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            rc = read_oneof(a, d, m, fd, &f, depth);
        } else {
            rc = read_value(a, fd, &f, member_at(m, fd->offset), true, depth);
            if (rc == 0 && fd->quantifier_offset)
                *(protobuf_c_boolean *)member_at(m, fd->quantifier_offset) = 1;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int mw_pb_read(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *allocator,
               const void *data, size_t len, ProtobufCMessage **out)
{
    *out = NULL;
    if (!schema_taken(desc))
        return MW_PB_READ_NOT_MINE;
    ProtobufCAllocator *a = allocator ? allocator : &system_allocator;
    ProtobufCMessage *m = take(a, desc->sizeof_message);
    if (!m)
        return MW_ENOMEM;
    desc->message_init(m);
    const uint8_t *p = data;
    int rc = read_message(a, desc, m, p, p + len, false, 0);
    if (rc) {
        protobuf_c_message_free_unpacked(m, a);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- comparing ------------------------------------------------------------------------------- */

static bool value_equal(const ProtobufCFieldDescriptor *fd, const void *x, const void *y)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)x, *t = *(char *const *)y;
        return s && t ? strcmp(s, t) == 0 : s == t;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return mw_pb_equal(*(ProtobufCMessage *const *)x, *(ProtobufCMessage *const *)y);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = x, *t = y;
        return s->len == t->len && (s->len == 0 || memcmp(s->data, t->data, s->len) == 0);
    }
    default:
        return memcmp(x, y, element_size(fd->type)) == 0;
    }
}

static const void *const_member_at(const ProtobufCMessage *m, unsigned offset)
{
    return (const char *)m + offset;
}

bool mw_pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (!a || !b)
        return a == b;
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d != b->descriptor)
        return false;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const void *x = const_member_at(a, fd->offset), *y = const_member_at(b, fd->offset);
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)const_member_at(a, fd->quantifier_offset);
            if (which != *(const uint32_t *)const_member_at(b, fd->quantifier_offset))
                return false;
            if (which == fd->id && !value_equal(fd, x, y))
                return false;
        } else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)const_member_at(a, fd->quantifier_offset);
            if (n != *(const size_t *)const_member_at(b, fd->quantifier_offset))
                return false;
            const char *xs = *(char *const *)x, *ys = *(char *const *)y;
            size_t size = element_size(fd->type);
            for (size_t k = 0; k < n; k++)
                if (!value_equal(fd, xs + k * size, ys + k * size))
                    return false;
        } else {
            if (fd->quantifier_offset &&
                *(const protobuf_c_boolean *)const_member_at(a, fd->quantifier_offset) !=
                    *(const protobuf_c_boolean *)const_member_at(b, fd->quantifier_offset))
                return false;
            if (!value_equal(fd, x, y))
                return false;
        }
    }
    if (a->n_unknown_fields != b->n_unknown_fields)
        return false;
    for (size_t i = 0; i < a->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &a->unknown_fields[i], *v = &b->unknown_fields[i];
        if (u->tag != v->tag || u->wire_type != v->wire_type || u->len != v->len ||
            memcmp(u->data, v->data, u->len) != 0)
            return false;
    }
    return true;
}
