/* api_auth.c — the bearer token every API write needs (api_auth.h). */
#include "api_auth.h"

#include "alert/receiver_int.h"

#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

int mw_api_auth_init(struct mw_api_auth *auth, const char *token_file, char *why,
                     size_t why_size)
{
    *auth = (struct mw_api_auth){0};
    if (!token_file || !*token_file)
        return 0;
    /* Read as the alert API reads it, so both accept exactly the same token. */
    int rc = mw__receiver_read_secret(token_file, "alerting.api_token_file", true, auth->token,
                                      sizeof auth->token, &auth->token_len, why, why_size);
    if (rc) {
        mw_api_auth_clear(auth);
        return rc;
    }
    auth->has_token = true;
    return 0;
}

bool mw_api_auth_guard(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    const struct mw_api_auth *auth = arg;
    if (!auth->has_token)
        return true;
    static const char prefix[] = "Bearer ";
    const char *given = req->authorization ? req->authorization : "";
    bool ok = strlen(given) == sizeof prefix - 1 + auth->token_len &&
              strncasecmp(given, prefix, sizeof prefix - 1) == 0 &&
              CRYPTO_memcmp(given + sizeof prefix - 1, auth->token, auth->token_len) == 0;
    if (!ok)
        mw_http_respond_error(ex, 401, "a bearer token is required (Authorization: Bearer ...)");
    return ok;
}

void mw_api_auth_clear(struct mw_api_auth *auth)
{
    if (!auth)
        return;
    OPENSSL_cleanse(auth->token, sizeof auth->token);
    *auth = (struct mw_api_auth){0};
}
