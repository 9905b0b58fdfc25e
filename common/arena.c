/* arena.c — bump allocator with a protobuf-c adapter. */
#include "arena.h"

#include "alloc.h"
#include "error.h"

static void *pb_alloc(void *data, size_t size)
{
    return mw_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

int mw_arena_init(struct mw_arena *a, size_t size)
{
    a->block = mw_malloc(size);
    if (!a->block)
        return MW_ENOMEM;
    a->size = size;
    a->used = 0;
    a->pb_allocator.alloc = pb_alloc;
    a->pb_allocator.free = pb_free;
    a->pb_allocator.allocator_data = a;
    return 0;
}

void mw_arena_free(struct mw_arena *a)
{
    if (!a)
        return;
    mw_free(a->block);
    a->block = NULL;
    a->size = a->used = 0;
}

void *mw_arena_alloc(struct mw_arena *a, size_t n)
{
    size_t start = (a->used + 15u) & ~(size_t)15u;
    if (start > a->size || n > a->size - start)
        return NULL;
    a->used = start + n;
    return a->block + start;
}

void mw_arena_reset(struct mw_arena *a)
{
    a->used = 0;
}
