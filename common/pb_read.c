/* pb_read.c — protobuf-c 1.4's unpacking rules in one pass (see pb_read.h).
 *
 * Each call first turns the descriptors of the message types it may meet into plans: per
 * type, a table indexed by field number saying how a field is stored (kind, shape, the wire
 * type it needs, its offsets). The read then costs one table lookup and one switch per field;
 * protobuf-c's descriptors themselves are read only to plan. */
#include "pb_read.h"

#include "arena.h"
#include "error.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAG 63           /* highest field number planned; above, the schema is not mine */
#define MAX_DESCRIPTORS 32   /* message types reachable from the one read */
#define MAX_PLANNED_TAGS 512 /* table entries of all of them together (on the stack) */
/* protobuf-c scans one message's fields into slabs of 16 << 0 .. 16 << 22 members and refuses
 * a message with more ("too many fields"). */
#define MAX_FIELDS_PER_MESSAGE (16ull * ((1ull << 23) - 1))
#define WIRE_ANY 0xff /* a bool: protobuf-c reads it from any wire type */

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

/* ---- plans ----------------------------------------------------------------------------------- */

/* How a value is stored (protobuf-c's parse_required_member, by type). */
enum kind {
    K_UNKNOWN = 0, /* no such field: kept as an unknown field */
    K_FIXED64,     /* double, fixed64, sfixed64: 8 bytes as they are */
    K_FIXED32,     /* float, fixed32, sfixed32 */
    K_VARINT64,    /* int64, uint64 */
    K_VARINT32,    /* int32, uint32, enum: parse_uint32 */
    K_SINT64,
    K_SINT32,
    K_BOOL,
    K_STRING,
    K_MESSAGE,
};

enum shape { S_OPTIONAL, S_ONEOF, S_REPEATED };

struct message_plan;

struct field_plan {
    uint8_t kind;
    uint8_t shape;
    uint8_t wire;   /* the wire type a value needs (WIRE_ANY: a bool) */
    uint8_t packed; /* S_REPEATED: a length-delimited occurrence is a packed run */
    uint8_t size;   /* of an element of a repeated field */
    ProtobufCType type;
    unsigned offset, quantifier_offset;
    const void *default_value;
    const struct message_plan *sub; /* K_MESSAGE */
};

struct message_plan {
    const ProtobufCMessageDescriptor *d;
    uint32_t max_tag;
    const struct field_plan *by_tag; /* [max_tag + 1] */
};

struct plans {
    size_t n, n_tags;
    struct message_plan messages[MAX_DESCRIPTORS];
    struct field_plan tags[MAX_PLANNED_TAGS];
};

static bool has_oneof(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            return true;
    return false;
}

/* A field's kind, size and wire type; false for a type this reader leaves to protobuf-c. */
static bool plan_type(struct field_plan *fp, ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *fp = (struct field_plan){.kind = K_FIXED64, .wire = MW_WIRE_64BIT, .size = 8};
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *fp = (struct field_plan){.kind = K_FIXED32, .wire = MW_WIRE_32BIT, .size = 4};
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        *fp = (struct field_plan){.kind = K_VARINT64, .wire = MW_WIRE_VARINT, .size = 8};
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
        *fp = (struct field_plan){.kind = K_VARINT32, .wire = MW_WIRE_VARINT, .size = 4};
        break;
    case PROTOBUF_C_TYPE_SINT64:
        *fp = (struct field_plan){.kind = K_SINT64, .wire = MW_WIRE_VARINT, .size = 8};
        break;
    case PROTOBUF_C_TYPE_SINT32:
        *fp = (struct field_plan){.kind = K_SINT32, .wire = MW_WIRE_VARINT, .size = 4};
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *fp = (struct field_plan){
            .kind = K_BOOL, .wire = WIRE_ANY, .size = sizeof(protobuf_c_boolean)};
        break;
    case PROTOBUF_C_TYPE_STRING:
        *fp = (struct field_plan){.kind = K_STRING, .wire = MW_WIRE_LEN, .size = sizeof(char *)};
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        *fp = (struct field_plan){
            .kind = K_MESSAGE, .wire = MW_WIRE_LEN, .size = sizeof(ProtobufCMessage *)};
        break;
    default:
        return false; /* bytes */
    }
    fp->type = type;
    return true;
}

/* The plan of `d` and of every message type reachable from it, or NULL when one of them is not
 * one this reader fills as protobuf-c would: a required field (its absence refuses a message),
 * a bytes field, a proto3 field without presence (protobuf-c's merge takes the later
 * occurrence's zero for it), fields not sorted by number or numbered above MAX_TAG, too many
 * types; or a oneof in a message that can be merged (an optional message field's):
 * protobuf-c merges occurrences pairwise as it unpacks them and refuses a pair whose oneof
 * neither sets, which reading the occurrences one over the other cannot follow. */
static const struct message_plan *plan(struct plans *pl, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < pl->n; i++)
        if (pl->messages[i].d == d)
            return &pl->messages[i];
    if (pl->n == MAX_DESCRIPTORS || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC ||
        !d->message_init)
        return NULL;
    uint32_t max_tag = d->n_fields ? d->fields[d->n_fields - 1].id : 0;
    if (max_tag > MAX_TAG || pl->n_tags + max_tag + 1 > MAX_PLANNED_TAGS)
        return NULL;
    struct message_plan *mp = &pl->messages[pl->n++];
    struct field_plan *by_tag = &pl->tags[pl->n_tags];
    pl->n_tags += max_tag + 1;
    memset(by_tag, 0, (max_tag + 1) * sizeof *by_tag);
    *mp = (struct message_plan){.d = d, .max_tag = max_tag, .by_tag = by_tag};
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (fd->label == PROTOBUF_C_LABEL_REQUIRED || fd->label == PROTOBUF_C_LABEL_NONE ||
            fd->id == 0 || (i > 0 && fd->id <= d->fields[i - 1].id))
            return NULL;
        struct field_plan *fp = &by_tag[fd->id];
        if (!plan_type(fp, fd->type))
            return NULL;
        fp->offset = fd->offset;
        fp->quantifier_offset = fd->quantifier_offset;
        fp->default_value = fd->default_value;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            fp->shape = S_REPEATED;
            /* protobuf-c: declared packed, or of a type that could be */
            fp->packed = (fd->flags & PROTOBUF_C_FIELD_FLAG_PACKED) ||
                         (fp->kind != K_STRING && fp->kind != K_MESSAGE);
        } else {
            fp->shape = fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF ? S_ONEOF : S_OPTIONAL;
        }
        if (fp->kind == K_MESSAGE) {
            if (fp->shape == S_OPTIONAL && has_oneof(fd->descriptor))
                return NULL;
            if (!(fp->sub = plan(pl, fd->descriptor)))
                return NULL;
        }
    }
    return mp;
}

/* ---- values ---------------------------------------------------------------------------------- */

/* The allocator of one mw_pb_read, and the arena behind it when it is one. */
struct reader {
    ProtobufCAllocator *a;
    struct mw_arena *arena; /* allocate inline; its free is a no-op */
};

static inline void *take(struct reader *r, size_t n)
{
    return r->arena ? mw_arena_alloc(r->arena, n) : r->a->alloc(r->a->allocator_data, n);
}

static void give_back(struct reader *r, void *p)
{
    if (p && !r->arena)
        r->a->free(r->a->allocator_data, p);
}

static void *member_at(ProtobufCMessage *m, unsigned offset)
{
    return (char *)m + offset;
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

/* A scalar value of `kind` whose wire type was checked: protobuf-c's parse_required_member. */
static inline void put_scalar(uint8_t kind, const struct mw_wire_field *f, void *member)
{
    switch (kind) {
    case K_FIXED64:
        memcpy(member, f->data, 8);
        break;
    case K_FIXED32:
        memcpy(member, f->data, 4);
        break;
    case K_VARINT64:
        put64(member, mw_wire_u64(f->data, f->len));
        break;
    case K_VARINT32:
        put32(member, mw_wire_u32(f->data, f->len));
        break;
    case K_SINT64:
        put64(member, unzigzag64(mw_wire_u64(f->data, f->len)));
        break;
    case K_SINT32:
        put32(member, unzigzag32(mw_wire_u32(f->data, f->len)));
        break;
    case K_BOOL: {
        protobuf_c_boolean b = mw_wire_bool(f);
        memcpy(member, &b, sizeof b);
        break;
    }
    default:
        break;
    }
}

/* A string, copied whole and NUL-terminated; `replace`: the slot may hold an earlier one. */
static inline int put_string(struct reader *r, const struct field_plan *fp,
                             const struct mw_wire_field *f, char **s, bool replace)
{
    if (replace && *s != fp->default_value)
        give_back(r, *s);
    *s = take(r, f->len + 1);
    if (!*s)
        return MW_ENOMEM;
    memcpy(*s, f->data, f->len);
    (*s)[f->len] = '\0';
    return 0;
}

static int read_message(struct reader *r, const struct message_plan *mp, ProtobufCMessage *m,
                        const uint8_t *p, const uint8_t *end, bool merging, unsigned depth);

/* A message: merged into the one in the slot when `replace` finds one there (protobuf-c
 * unpacks the later occurrence and merges the earlier one into it, which comes to reading the
 * later one over the earlier), else a new one. */
static int put_message(struct reader *r, const struct field_plan *fp, const struct mw_wire_field *f,
                       ProtobufCMessage **sub, bool replace, unsigned depth)
{
    const struct message_plan *sp = fp->sub;
    if (replace && *sub && *sub != fp->default_value)
        return read_message(r, sp, *sub, f->data, f->data + f->len, true, depth + 1);
    /* Linked before it is read, so that a failure frees what was read. */
    *sub = take(r, sp->d->sizeof_message);
    if (!*sub)
        return MW_ENOMEM;
    sp->d->message_init(*sub);
    return read_message(r, sp, *sub, f->data, f->data + f->len, false, depth + 1);
}

/* One value of a field whose wire type was checked into its slot or element. */
static inline int put_value(struct reader *r, const struct field_plan *fp,
                            const struct mw_wire_field *f, void *member, bool replace,
                            unsigned depth)
{
    if (fp->kind == K_STRING)
        return put_string(r, fp, f, member, replace);
    if (fp->kind == K_MESSAGE)
        return put_message(r, fp, f, member, replace, depth);
    put_scalar(fp->kind, f, member);
    return 0;
}

/* ---- repeated and unknown fields ------------------------------------------------------------- */

/* Values in a packed run of `len` bytes, as protobuf-c's count_packed_elements counts them
 * (room to make; a varint run's malformed end is refused when it is read). */
static bool count_packed(uint8_t kind, const uint8_t *data, size_t len, size_t *count)
{
    switch (kind) {
    case K_FIXED32:
        *count = len / 4;
        return len % 4 == 0;
    case K_FIXED64:
        *count = len / 8;
        return len % 8 == 0;
    case K_BOOL:
        *count = len;
        return true;
    default: {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += !(data[i] & 0x80);
        *count = n;
        return true;
    }
    }
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
static int read_packed(const struct field_plan *fp, const struct mw_wire_field *f, char *array,
                       size_t *n)
{
    if (f->len == 0)
        return 0;
    if (fp->kind == K_FIXED64 || fp->kind == K_FIXED32) {
        memcpy(array + fp->size * *n, f->data, f->len);
        *n += f->len / fp->size;
        return 0;
    }
    const uint8_t *at = f->data;
    size_t rem = f->len;
    while (rem > 0) {
        size_t s = varint_len(at, rem);
        if (!s)
            return MW_EPARSE;
        struct mw_wire_field v = {.type = MW_WIRE_VARINT, .data = at, .len = s};
        put_scalar(fp->kind, &v, array + fp->size * *n);
        ++*n;
        at += s;
        rem -= s;
    }
    return 0;
}

/* Room for the repeated fields and unknown fields of one occurrence of a message, made as they
 * come: protobuf-c counts them in a first pass and allocates each array once, at its size;
 * one pass here, arrays doubling. (The arrays hold the same values; only their spare room
 * differs.) */
struct room {
    uint64_t known;          /* bit t: cap[t] is set */
    size_t cap[MAX_TAG + 1]; /* elements allocated for field t */
    size_t unknown_cap;      /* unknown fields allocated */
};

/* At least `need` elements of room in the array at `*array` holding n of `size` bytes. */
static int grow(struct reader *r, void **array, size_t n, size_t size, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t want = *cap * 2 > need ? *cap * 2 : need;
    if (want < 4)
        want = 4;
    void *grown = take(r, want * size);
    if (!grown)
        return MW_ENOMEM;
    /* A merged occurrence appends to the earlier one's values. */
    if (n)
        memcpy(grown, *array, n * size);
    give_back(r, *array);
    *array = grown;
    *cap = want;
    return 0;
}

/* Drop the unknown fields a message kept from an earlier occurrence: protobuf-c's merge keeps
 * only those of the last. */
static void drop_unknown(struct reader *r, ProtobufCMessage *m)
{
    for (size_t i = 0; i < m->n_unknown_fields; i++)
        give_back(r, m->unknown_fields[i].data);
    give_back(r, m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
}

static int keep_unknown(struct reader *r, ProtobufCMessage *m, const struct mw_wire_field *f,
                        struct room *room)
{
    int rc = grow(r, (void **)&m->unknown_fields, m->n_unknown_fields, sizeof *m->unknown_fields,
                  &room->unknown_cap, m->n_unknown_fields + 1);
    if (rc)
        return rc;
    ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields];
    /* protobuf-c keeps the bytes after the tag: a length-delimited value with its length. */
    const uint8_t *from = f->type == MW_WIRE_LEN ? f->data - f->prefix_len : f->data;
    size_t len = f->type == MW_WIRE_LEN ? f->len + f->prefix_len : f->len;
    u->data = take(r, len);
    if (!u->data)
        return MW_ENOMEM;
    memcpy(u->data, from, len);
    u->tag = f->tag;
    u->wire_type = (ProtobufCWireType)f->type;
    u->len = len;
    m->n_unknown_fields++;
    return 0;
}

static const struct field_plan unknown_field; /* K_UNKNOWN */

static const struct field_plan *field_of(const struct message_plan *mp, uint32_t tag)
{
    return tag <= mp->max_tag ? &mp->by_tag[tag] : &unknown_field;
}

static int read_repeated(struct reader *r, ProtobufCMessage *m, const struct field_plan *fp,
                         const struct mw_wire_field *f, struct room *room, unsigned depth)
{
    size_t *n = member_at(m, fp->quantifier_offset);
    void **array = member_at(m, fp->offset);
    bool packed = f->type == MW_WIRE_LEN && fp->packed;
    size_t more = 1;
    if (packed) {
        if (!count_packed(fp->kind, f->data, f->len, &more))
            return MW_EPARSE;
    } else if (f->type != fp->wire && fp->wire != WIRE_ANY) {
        return MW_EPARSE;
    }
    if (more) {
        uint64_t bit = 1ull << f->tag;
        if (!(room->known & bit)) {
            room->known |= bit;
            room->cap[f->tag] = *n; /* an earlier occurrence's array is exactly full */
        }
        if (*n + more > room->cap[f->tag]) {
            int rc = grow(r, array, *n, fp->size, &room->cap[f->tag], *n + more);
            if (rc)
                return rc;
        }
    }
    if (packed)
        return read_packed(fp, f, *array, n);
    void *element = (char *)*array + fp->size * *n;
    if (fp->kind == K_STRING || fp->kind == K_MESSAGE)
        *(void **)element = NULL;
    /* Counted first, so that a failure frees what was read. */
    ++*n;
    return put_value(r, fp, f, element, false, depth);
}

/* A member of a oneof, replacing the member set before (protobuf-c's parse_oneof_member: the
 * earlier one is freed, not merged). */
static int read_oneof(struct reader *r, const struct message_plan *mp, ProtobufCMessage *m,
                      const struct field_plan *fp, const struct mw_wire_field *f, unsigned depth)
{
    uint32_t *which = member_at(m, fp->quantifier_offset);
    void *member = member_at(m, fp->offset);
    if (*which) {
        const struct field_plan *old = field_of(mp, *which);
        if (old->kind == K_UNKNOWN)
            return MW_EPARSE;
        if (old->kind == K_STRING) {
            char *s = *(char **)member;
            if (s != old->default_value)
                give_back(r, s);
        } else if (old->kind == K_MESSAGE) {
            ProtobufCMessage *sub = *(ProtobufCMessage **)member;
            if (sub && sub != old->default_value)
                protobuf_c_message_free_unpacked(sub, r->a);
        }
        memset(member, 0, old->size);
    }
    /* Set first, so that a failure frees what was read (the slot is clear). */
    *which = f->tag;
    if (f->type != fp->wire && fp->wire != WIRE_ANY)
        return MW_EPARSE;
    return put_value(r, fp, f, member, true, depth);
}

/* ---- messages -------------------------------------------------------------------------------- */

/* Read the fields of p..end into `m` (initialised; `merging`: holding an earlier occurrence,
 * read over). */
static int read_message(struct reader *r, const struct message_plan *mp, ProtobufCMessage *m,
                        const uint8_t *p, const uint8_t *end, bool merging, unsigned depth)
{
    if (depth > MW_PB_READ_MAX_DEPTH)
        return MW_PB_READ_NOT_MINE;
    if (merging)
        drop_unknown(r, m);
    struct room room;
    room.known = 0;
    room.unknown_cap = 0; /* none kept: a merged occurrence dropped the earlier one's */
    uint64_t n_read = 0;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f) || ++n_read > MAX_FIELDS_PER_MESSAGE)
            return MW_EPARSE;
        const struct field_plan *fp = field_of(mp, f.tag);
        int rc;
        if (fp->shape == S_OPTIONAL && fp->kind != K_UNKNOWN) {
            if (f.type != fp->wire && fp->wire != WIRE_ANY)
                return MW_EPARSE;
            rc = put_value(r, fp, &f, member_at(m, fp->offset), true, depth);
            if (fp->quantifier_offset)
                *(protobuf_c_boolean *)member_at(m, fp->quantifier_offset) = 1;
        } else if (fp->shape == S_ONEOF) {
            rc = read_oneof(r, mp, m, fp, &f, depth);
        } else if (fp->kind == K_UNKNOWN) {
            rc = keep_unknown(r, m, &f, &room);
        } else {
            rc = read_repeated(r, m, fp, &f, &room, depth);
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
    struct plans plans;
    plans.n = plans.n_tags = 0;
    const struct message_plan *mp = plan(&plans, desc);
    if (!mp)
        return MW_PB_READ_NOT_MINE;
    struct reader reader = {.a = allocator ? allocator : &system_allocator,
                            .arena = mw_arena_of(allocator)};
    struct reader *r = &reader;
    ProtobufCMessage *m = take(r, desc->sizeof_message);
    if (!m)
        return MW_ENOMEM;
    desc->message_init(m);
    const uint8_t *p = data;
    int rc = read_message(r, mp, m, p, p + len, false, 0);
    if (rc) {
        protobuf_c_message_free_unpacked(m, r->a);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- comparing ------------------------------------------------------------------------------- */

/* protobuf-c's sizeof_elt_in_repeated_array. */
static size_t element_size(ProtobufCType type)
{
    struct field_plan fp;
    return plan_type(&fp, type) ? fp.size : sizeof(ProtobufCBinaryData);
}

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
