/*
 * arena.h — a bump allocator for per-message scratch memory.
 *
 * Decoding a protobuf message allocates many small pieces that all die together; an arena
 * hands them out from one block and frees them all with one reset, so the hot path does no
 * malloc per event. It also plugs into protobuf-c as a ProtobufCAllocator.
 *
 * An arena made by mw_arena_init holds exactly its block: what does not fit fails (the agent
 * bounds a client message so). One made by mw_arena_init_growing takes more blocks as needed,
 * up to a limit, and a reset keeps only the first: for messages whose decoded size is only
 * known while decoding (a Kafka batch), at no malloc per message once the first block fits.
 */
#ifndef MW_COMMON_ARENA_H
#define MW_COMMON_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct mw_arena_chunk; /* an extra block of a growing arena */

struct mw_arena {
    char *block;
    size_t size;
    size_t used;
    size_t limit;                 /* most bytes in all blocks together (== size: fixed) */
    size_t extra_bytes;           /* in the extra blocks */
    struct mw_arena_chunk *extra; /* the extra blocks, newest first; allocation is from it */
    ProtobufCAllocator pb_allocator; /* allocates from this arena; free is a no-op */
};

/* Allocate a block of `size` bytes. Returns 0 or MW_ENOMEM. */
int mw_arena_init(struct mw_arena *a, size_t size);
/* A first block of `size` bytes, growing by further blocks up to `limit` bytes in all. */
int mw_arena_init_growing(struct mw_arena *a, size_t size, size_t limit);
void mw_arena_free(struct mw_arena *a); /* accepts NULL */
void *mw__arena_alloc_grow(struct mw_arena *a, size_t n);

/* 16-byte aligned memory from the arena, or NULL when the arena is exhausted. Inline while
 * the first block holds it: a decoded batch takes tens of thousands of pieces. */
static inline void *mw_arena_alloc(struct mw_arena *a, size_t n)
{
    if (!a->extra) {
        size_t start = (a->used + 15u) & ~(size_t)15u;
        if (start <= a->size && n <= a->size - start) {
            a->used = start + n;
            return a->block + start;
        }
    }
    return mw__arena_alloc_grow(a, n);
}

/* The arena whose pb_allocator `allocator` is, or NULL (for code that can then allocate from
 * it directly, inline). */
struct mw_arena *mw_arena_of(const ProtobufCAllocator *allocator);
/* Release everything allocated since init or the last reset (a growing arena frees its extra
 * blocks). */
void mw_arena_reset(struct mw_arena *a);

#endif
