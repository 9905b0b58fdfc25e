/*
 * arena.h — a bump allocator for per-message scratch memory.
 *
 * Decoding a protobuf message allocates many small pieces that all die together; an arena
 * hands them out from one block and frees them all with one reset, so the hot path does no
 * malloc per event. It also plugs into protobuf-c as a ProtobufCAllocator.
 */
#ifndef MW_COMMON_ARENA_H
#define MW_COMMON_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct mw_arena {
    char *block;
    size_t size;
    size_t used;
    ProtobufCAllocator pb_allocator; /* allocates from this arena; free is a no-op */
};

/* Allocate a block of `size` bytes. Returns 0 or MW_ENOMEM. */
int mw_arena_init(struct mw_arena *a, size_t size);
void mw_arena_free(struct mw_arena *a); /* accepts NULL */
/* 16-byte aligned memory from the arena, or NULL when the arena is exhausted. */
void *mw_arena_alloc(struct mw_arena *a, size_t n);
/* Release everything allocated since init or the last reset. */
void mw_arena_reset(struct mw_arena *a);

#endif
