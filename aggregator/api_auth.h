/*
 * api_auth.h — who may write through the aggregator's HTTP API.
 *
 * With `alerting.api_token_file` set, every write (any method but GET and HEAD: profile
 * pushes, silences) must carry `Authorization: Bearer <the file's token>`; others get 401
 * before any handler runs. The check is the HTTP server's write guard, so a write route added
 * later is covered without doing anything. Without a token file, profile pushes are open (a
 * local setup) and silence writes are refused by the alert API itself (403): set the token file
 * wherever the API is reachable beyond loopback (SECURITY.md).
 */
#ifndef MW_AGGREGATOR_API_AUTH_H
#define MW_AGGREGATOR_API_AUTH_H

#include "http_server.h"

#include <stdbool.h>
#include <stddef.h>

#define MW_API_TOKEN_MAX 512

struct mw_api_auth {
    bool has_token;
    char token[MW_API_TOKEN_MAX];
    size_t token_len;
};

/* Read the token from `token_file` (NULL or "": no token, every write allowed by this check).
 * Returns 0, or MW_EIO / MW_ECONFIG with the reason in why (naming the file, never its
 * contents). */
int mw_api_auth_init(struct mw_api_auth *auth, const char *token_file, char *why,
                     size_t why_size);

/* The write guard (http_server.h) for `arg`, a struct mw_api_auth: answers 401 unless the
 * request carries the token, compared in constant time. */
bool mw_api_auth_guard(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg);

/* Wipe the token. Accepts NULL. */
void mw_api_auth_clear(struct mw_api_auth *auth);

#endif
