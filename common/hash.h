/*
 * hash.h — the one string hash of modelwatch: 64-bit FNV-1a, chainable so a key made of several
 * parts (model, version) is hashed without joining them first.
 *
 *   uint64_t h = mw_hash_str(MW_HASH_INIT, model);
 *   h = mw_hash_byte(h, 0xff);   separator: ("ab","") differs from ("a","b")
 *   h = mw_hash_str(h, version);
 *
 * Not a cryptographic hash: use it for tables, tags and sampling, never against an adversary
 * who can choose keys to collide (redaction uses HMAC-SHA256).
 */
#ifndef MW_COMMON_HASH_H
#define MW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define MW_HASH_INIT 0xcbf29ce484222325u /* FNV-1a 64 offset basis */
#define MW_HASH_PRIME 0x100000001b3u     /* FNV-1a 64 prime */

static inline uint64_t mw_hash_byte(uint64_t h, unsigned char byte)
{
    return (h ^ byte) * MW_HASH_PRIME;
}

/* Continue hash `h` over `len` bytes of `data`. */
uint64_t mw_hash_bytes(uint64_t h, const void *data, size_t len);

/* Continue hash `h` over the bytes of NUL-terminated `text` (the NUL excluded). */
uint64_t mw_hash_str(uint64_t h, const char *text);

/* The splitmix64 finalizer: spreads every input bit over every output bit (FNV's high bits
 * depend weakly on the last bytes), for when the top bits are used. */
uint64_t mw_hash_mix(uint64_t h);

#endif
