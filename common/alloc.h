/*
 * alloc.h — the allocation wrappers every modelwatch module uses.
 *
 * All heap memory goes through mw_malloc/mw_calloc/mw_realloc/mw_free so tests can swap in an
 * allocator that fails on demand (as libuv's uv_replace_allocator allows).
 */
#ifndef MW_COMMON_ALLOC_H
#define MW_COMMON_ALLOC_H

#include <stddef.h>

void *mw_malloc(size_t size);
void *mw_calloc(size_t count, size_t size);
void *mw_realloc(void *ptr, size_t size);
void mw_free(void *ptr);
/* Copy of `s` (NULL for NULL or on allocation failure); the caller frees it with mw_free. */
char *mw_strdup(const char *s);
/* Copy of the first `n` bytes of `s`, NUL-terminated; the caller frees it with mw_free. */
char *mw_strndup(const char *s, size_t n);

/* Replace the allocator; NULL arguments restore the C library's. Not thread-safe: call before
 * any other modelwatch function. */
void mw_replace_allocator(void *(*malloc_fn)(size_t), void *(*calloc_fn)(size_t, size_t),
                          void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

#endif
