/* arena.c — bump allocator with a protobuf-c adapter. */
#include "arena.h"

#include "alloc.h"
#include "error.h"

#include <stdint.h>

#define ALIGN 16u

struct mw_arena_chunk {
    struct mw_arena_chunk *next;
    size_t size, used;
    _Alignas(16) char data[];
};

static void *pb_alloc(void *data, size_t size)
{
    return mw_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

int mw_arena_init_growing(struct mw_arena *a, size_t size, size_t limit)
{
    a->block = mw_malloc(size);
    if (!a->block)
        return MW_ENOMEM;
    a->size = size;
    a->used = 0;
    a->limit = limit > size ? limit : size;
    a->extra_bytes = 0;
    a->extra = NULL;
    a->pb_allocator.alloc = pb_alloc;
    a->pb_allocator.free = pb_free;
    a->pb_allocator.allocator_data = a;
    return 0;
}

int mw_arena_init(struct mw_arena *a, size_t size)
{
    return mw_arena_init_growing(a, size, size);
}

static void free_extra(struct mw_arena *a)
{
    while (a->extra) {
        struct mw_arena_chunk *next = a->extra->next;
        mw_free(a->extra);
        a->extra = next;
    }
    a->extra_bytes = 0;
}

void mw_arena_free(struct mw_arena *a)
{
    if (!a)
        return;
    free_extra(a);
    mw_free(a->block);
    a->block = NULL;
    a->size = a->used = 0;
}

/* `n` bytes at `*used` of a region of `size`, aligned, or NULL when they do not fit. */
static void *bump(char *base, size_t size, size_t *used, size_t n)
{
    size_t start = (*used + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (start > size || n > size - start)
        return NULL;
    *used = start + n;
    return base + start;
}

/* A new extra block holding at least `n` bytes (twice the last, so blocks stay few). */
static void *grow(struct mw_arena *a, size_t n)
{
    size_t last = a->extra ? a->extra->size : a->size;
    size_t want = last * 2 > n ? last * 2 : n;
    size_t room = a->limit - a->size - a->extra_bytes;
    if (a->extra_bytes > a->limit - a->size || n > room)
        return NULL;
    if (want > room)
        want = room;
    struct mw_arena_chunk *c = mw_malloc(sizeof *c + want);
    if (!c)
        return NULL;
    c->next = a->extra;
    c->size = want;
    c->used = 0;
    a->extra = c;
    a->extra_bytes += want;
    return bump(c->data, c->size, &c->used, n);
}

void *mw__arena_alloc_grow(struct mw_arena *a, size_t n)
{
    void *p = a->extra ? bump(a->extra->data, a->extra->size, &a->extra->used, n)
                       : bump(a->block, a->size, &a->used, n);
    return p ? p : grow(a, n);
}

struct mw_arena *mw_arena_of(const ProtobufCAllocator *allocator)
{
    return allocator && allocator->alloc == pb_alloc ? allocator->allocator_data : NULL;
}

void mw_arena_reset(struct mw_arena *a)
{
    free_extra(a);
    a->used = 0;
}
