/*
 * varint.h — protobuf's base-128 varints, for the places that write protobuf wire bytes by hand
 * (the client's event writer and batch framing, the agent's batch builder).
 */
#ifndef MW_COMMON_VARINT_H
#define MW_COMMON_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of v as a varint. */
static inline size_t mw_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Write v as a varint at out; returns the bytes written. */
static inline size_t mw_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

#endif
