/*
 * wire.h — protobuf's wire format, one field at a time, read as protobuf-c 1.4 reads it.
 *
 * The readers that skip protobuf-c's generic unpacking on hot paths (the agent's event-head
 * reader, agent/client_message.c; the aggregator's batch reader, common/pb_read.c) must accept
 * and refuse exactly what protobuf-c does, down to how it reads an over-long varint as a bool
 * or an enum. These are the rules they share; each one names the protobuf-c function it
 * follows, so that a difference is a bug here, found by the fuzz targets client_message and
 * kafka_batch, which compare against protobuf-c.
 */
#ifndef MW_COMMON_WIRE_H
#define MW_COMMON_WIRE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wire types (groups, 3 and 4, are refused as protobuf-c refuses them). */
enum { MW_WIRE_VARINT = 0, MW_WIRE_64BIT = 1, MW_WIRE_LEN = 2, MW_WIRE_32BIT = 5 };

/* One field: its number, wire type, and value bytes (a varint's bytes; a length-delimited
 * field's payload, after its length prefix of prefix_len bytes). The pointers are into the
 * buffer being read. */
struct mw_wire_field {
    uint32_t tag;
    uint8_t type;
    uint8_t prefix_len; /* MW_WIRE_LEN only: bytes of the length before data */
    const uint8_t *data;
    size_t len;
};

/* mw_wire_next, for any field. */
__attribute__((noinline)) static bool mw__wire_next_any(const uint8_t **p, const uint8_t *end,
                                                        struct mw_wire_field *f)
{
    const uint8_t *at = *p;
    size_t rem = (size_t)(end - at);
    if ((at[0] & 0xf8) == 0)
        return false;
    f->type = at[0] & 7;
    uint32_t tag = (uint32_t)(at[0] & 0x7f) >> 3;
    size_t used = 1;
    if (at[0] & 0x80) {
        size_t max = rem < 5 ? rem : 5;
        unsigned shift = 4;
        for (;;) {
            if (used == max)
                return false;
            uint8_t b = at[used++];
            tag |= (uint32_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
    }
    f->tag = tag;
    at += used;
    rem -= used;
    size_t n;
    switch (f->type) {
    case MW_WIRE_VARINT: {
        size_t max = rem < 10 ? rem : 10;
        for (n = 0; n < max && (at[n] & 0x80); n++)
            ;
        if (n == max)
            return false;
        f->data = at;
        f->len = n + 1;
        break;
    }
    case MW_WIRE_64BIT:
    case MW_WIRE_32BIT:
        n = f->type == MW_WIRE_64BIT ? 8 : 4;
        if (rem < n)
            return false;
        f->data = at;
        f->len = n;
        break;
    case MW_WIRE_LEN: {
        size_t max = rem < 5 ? rem : 5, value = 0, i;
        for (i = 0; i < max; i++) {
            value |= (size_t)(at[i] & 0x7f) << (7 * i);
            if (!(at[i] & 0x80))
                break;
        }
        if (i == max || value > INT_MAX || i + 1 + value > rem)
            return false;
        f->prefix_len = (uint8_t)(i + 1);
        f->data = at + i + 1;
        f->len = value;
        *p = f->data + value;
        return true;
    }
    default:
        return false; /* groups (3, 4) and the unused types 6, 7 */
    }
    *p = at + f->len;
    return true;
}

/* The next field at *p (before end, p < end), read as protobuf-c 1.4 scans it
 * (parse_tag_and_wiretype, scan_length_prefixed_data): a tag of at most 5 bytes whose first
 * byte's number bits are not all 0, a varint of at most 10 bytes, a length of at most 5 bytes
 * and INT_MAX, no groups. Moves *p past it. Returns false where protobuf-c refuses the
 * message. */
static inline bool mw_wire_next(const uint8_t **p, const uint8_t *end, struct mw_wire_field *f)
{
    const uint8_t *at = *p;
    size_t rem = (size_t)(end - at);
    /* Inline, the fields of most messages: a one-byte key, and a length under 128, a varint or
     * a double. */
    if (rem >= 2 && (at[0] & 0xf8) && !(at[0] & 0x80)) {
        uint8_t type = at[0] & 7;
        f->tag = at[0] >> 3;
        f->type = type;
        if (type == MW_WIRE_LEN && !(at[1] & 0x80)) {
            f->prefix_len = 1;
            f->len = at[1];
            if (f->len > rem - 2)
                return false;
            f->data = at + 2;
            *p = f->data + f->len;
            return true;
        }
        if (type == MW_WIRE_VARINT) {
            size_t max = rem - 1 < 10 ? rem - 1 : 10, n = 0;
            while (n < max && (at[1 + n] & 0x80))
                n++;
            if (n == max)
                return false;
            f->data = at + 1;
            f->len = n + 1;
            *p = at + 2 + n;
            return true;
        }
        if (type == MW_WIRE_64BIT && rem >= 9) {
            f->data = at + 1;
            f->len = 8;
            *p = at + 9;
            return true;
        }
    }
    return mw__wire_next_any(p, end, f);
}

/* A varint of `len` bytes (at most 10) as protobuf-c's parse_uint64 computes it. */
static inline uint64_t mw_wire_u64(const uint8_t *data, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v |= (uint64_t)(data[i] & 0x7f) << (7 * i);
    return v;
}

/* A varint as protobuf-c's parse_uint32 computes it (uint32, int32, enum): the fifth byte is
 * taken whole, later ones not at all. */
static inline uint32_t mw_wire_u32(const uint8_t *data, size_t len)
{
    uint32_t v = 0;
    for (size_t i = 0; i < len && i < 4; i++)
        v |= (uint32_t)(data[i] & 0x7f) << (7 * i);
    if (len > 4)
        v |= (uint32_t)data[4] << 28;
    return v;
}

/* A bool as protobuf-c's parse_boolean reads it, whatever the field's wire type: true when any
 * value bit of its bytes is set, even one beyond the 64 a varint keeps. For a length-delimited
 * field protobuf-c reads the length prefix too, whose value bits are all clear only when the
 * length is 0 (an empty payload). */
static inline bool mw_wire_bool(const struct mw_wire_field *f)
{
    if (f->type == MW_WIRE_LEN)
        return f->len != 0;
    for (size_t i = 0; i < f->len; i++)
        if (f->data[i] & 0x7f)
            return true;
    return false;
}

#endif
