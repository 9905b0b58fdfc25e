/*
 * buf.h — a growable byte buffer with a hard maximum (curl's dynbuf).
 *
 * Appending past `max_bytes` fails with MW_EFULL and leaves the buffer as it was, so no caller
 * can grow memory without bound by accident. The data is always NUL-terminated for text use.
 */
#ifndef MW_COMMON_BUF_H
#define MW_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct mw_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max_bytes;
};

/* Initialise an empty buffer that may grow to max_bytes. Allocates nothing yet. */
void mw_buf_init(struct mw_buf *b, size_t max_bytes);
/* Free the memory and reset to empty. Accepts NULL. */
void mw_buf_free(struct mw_buf *b);
/* Forget the contents, keep the memory. */
void mw_buf_reset(struct mw_buf *b);
/* Make room for `extra` more bytes. Returns 0, MW_EFULL or MW_ENOMEM. */
int mw_buf_reserve(struct mw_buf *b, size_t extra);
int mw_buf_append(struct mw_buf *b, const void *data, size_t n);
int mw_buf_append_str(struct mw_buf *b, const char *s);
int mw_buf_printf(struct mw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mw_buf_vprintf(struct mw_buf *b, const char *fmt, va_list ap);
/* Hand the data to the caller (who frees it with mw_free) and reset the buffer to empty. */
char *mw_buf_detach(struct mw_buf *b, size_t *len);

#endif
