/* hash.c — 64-bit FNV-1a and the splitmix64 finalizer (see hash.h). */
#include "hash.h"

uint64_t mw_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = mw_hash_byte(h, p[i]);
    return h;
}

uint64_t mw_hash_str(uint64_t h, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = mw_hash_byte(h, *p);
    return h;
}

uint64_t mw_hash_mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    h ^= h >> 31;
    return h;
}
