/* alloc.c — replaceable allocator behind mw_malloc and friends. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static void *(*malloc_impl)(size_t) = malloc;
static void *(*calloc_impl)(size_t, size_t) = calloc;
static void *(*realloc_impl)(void *, size_t) = realloc;
static void (*free_impl)(void *) = free;

void *mw_malloc(size_t size)
{
    return malloc_impl(size ? size : 1);
}

void *mw_calloc(size_t count, size_t size)
{
    return calloc_impl(count ? count : 1, size ? size : 1);
}

void *mw_realloc(void *ptr, size_t size)
{
    return realloc_impl(ptr, size ? size : 1);
}

void mw_free(void *ptr)
{
    if (ptr)
        free_impl(ptr);
}

char *mw_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *copy = mw_malloc(n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

char *mw_strdup(const char *s)
{
    return s ? mw_strndup(s, strlen(s)) : NULL;
}

void mw_replace_allocator(void *(*malloc_fn)(size_t), void *(*calloc_fn)(size_t, size_t),
                          void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *))
{
    malloc_impl = malloc_fn ? malloc_fn : malloc;
    calloc_impl = calloc_fn ? calloc_fn : calloc;
    realloc_impl = realloc_fn ? realloc_fn : realloc;
    free_impl = free_fn ? free_fn : free;
}
