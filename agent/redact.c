/*
 * redact.c — per-model feature drop and HMAC-SHA256 pseudonymisation (see redact.h).
 *
 * At creation every rule is turned into its effective form (its own lists merged with the "*"
 * rule's, sorted, deduplicated, drop winning over hash), so redacting an event is one bsearch
 * for the model and two per feature. The HMAC key is set once into an OpenSSL EVP_MAC context;
 * each pseudonym re-initialises that context with the same key, which allocates nothing and is
 * about five times faster than the one-shot HMAC() (that one fetches the algorithm per call).
 */
#include "redact.h"

#include "alloc.h"
#include "error.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_BYTES 4096
#define HMAC_BYTES 32

/* A sorted set of owned feature names. */
struct name_set {
    char **items;
    size_t n;
};

/* One model's effective rule. */
struct redact_rule {
    char *model; /* owned; "*" for the default */
    struct name_set drop;
    struct name_set hash;
};

struct mw_redactor {
    struct redact_rule *rules; /* sorted by model */
    size_t n_rules;
    const struct redact_rule *fallback; /* the "*" rule, or NULL */
    EVP_MAC_CTX *mac;                   /* keyed HMAC-SHA256; NULL without a key file */
};

/* What happens to one feature; HASH as a result means it was hashed in place. */
enum action { KEEP, DROP, HASH };

static int set_error(char *err, size_t errsize, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_error(char *err, size_t errsize, int rc, const char *fmt, ...)
{
    if (err && errsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int compare_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool set_has(const struct name_set *s, const char *name)
{
    return s->n && bsearch(&name, s->items, s->n, sizeof s->items[0], compare_str_ptr);
}

static void set_free(struct name_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        mw_free(s->items[i]);
    mw_free(s->items);
    *s = (struct name_set){0};
}

/* ---------------------------------------------------------------------------------------- */
/* Effective rules                                                                           */

/* out = (a ∪ b) \ exclude, sorted and unique; b and exclude may be NULL. Returns 0 or
 * MW_ENOMEM (out is then empty). */
static int set_build(struct name_set *out, const struct mw_cfg_strlist *a,
                     const struct mw_cfg_strlist *b, const struct name_set *exclude)
{
    size_t total = a->n + (b ? b->n : 0);
    *out = (struct name_set){0};
    if (!total)
        return 0;
    const char **all = mw_malloc(total * sizeof all[0]);
    if (!all || !(out->items = mw_calloc(total, sizeof out->items[0]))) {
        mw_free(all);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < total; i++)
        all[i] = i < a->n ? a->items[i] : b->items[i - a->n];
    qsort(all, total, sizeof all[0], compare_str_ptr);
    int rc = 0;
    for (size_t i = 0; !rc && i < total; i++) {
        if ((i && strcmp(all[i], all[i - 1]) == 0) || (exclude && set_has(exclude, all[i])))
            continue;
        if (!(out->items[out->n] = mw_strdup(all[i])))
            rc = MW_ENOMEM;
        else
            out->n++;
    }
    mw_free(all);
    if (rc)
        set_free(out);
    return rc;
}

/* The effective rule of `own`, merged with the default rule `def` (NULL, or own itself). */
static int rule_build(struct redact_rule *dst, const struct mw_model_rule *own,
                      const struct mw_model_rule *def)
{
    if (def == own)
        def = NULL;
    if (!(dst->model = mw_strdup(own->name)))
        return MW_ENOMEM;
    int rc = set_build(&dst->drop, &own->redact.drop, def ? &def->redact.drop : NULL, NULL);
    if (!rc)
        rc = set_build(&dst->hash, &own->redact.hash, def ? &def->redact.hash : NULL, &dst->drop);
    return rc;
}

static int compare_rules(const void *a, const void *b)
{
    return strcmp(((const struct redact_rule *)a)->model, ((const struct redact_rule *)b)->model);
}

static int compare_model_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct redact_rule *)elem)->model);
}

static const struct redact_rule *find_exact(const struct mw_redactor *r, const char *model)
{
    if (!model || !r->n_rules)
        return NULL;
    return bsearch(model, r->rules, r->n_rules, sizeof r->rules[0], compare_model_key);
}

static const struct redact_rule *lookup(const struct mw_redactor *r, const char *model)
{
    const struct redact_rule *rule = find_exact(r, model);
    return rule ? rule : r->fallback;
}

static int build_rules(struct mw_redactor *r, const struct mw_model_rule *rules, size_t n)
{
    if (!n)
        return 0;
    if (!(r->rules = mw_calloc(n, sizeof r->rules[0])))
        return MW_ENOMEM;
    long def = mw_model_rules_find(rules, n, MW_MODEL_RULE_DEFAULT);
    for (; r->n_rules < n; r->n_rules++) {
        int rc =
            rule_build(&r->rules[r->n_rules], &rules[r->n_rules], def < 0 ? NULL : &rules[def]);
        if (rc) {
            r->n_rules++; /* so destroy frees the partial rule */
            return rc;
        }
    }
    qsort(r->rules, n, sizeof r->rules[0], compare_rules);
    r->fallback = find_exact(r, MW_MODEL_RULE_DEFAULT);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Key                                                                                       */

/* Read the key file into key[0..*len). Messages name the file, never the key. */
static int read_key(const char *path, unsigned char *key, size_t *len, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return set_error(err, errsize, MW_EIO, "redaction_key_file: cannot read \"%s\": %s", path,
                         strerror(errno));
    size_t n = fread(key, 1, MAX_KEY_BYTES + 1, f);
    int saved_errno = errno;
    bool failed = ferror(f);
    fclose(f);
    if (failed)
        return set_error(err, errsize, MW_EIO, "redaction_key_file: cannot read \"%s\": %s", path,
                         strerror(saved_errno));
    if (n == 0)
        return set_error(err, errsize, MW_ECONFIG, "redaction_key_file: \"%s\" is empty", path);
    if (n > MAX_KEY_BYTES)
        return set_error(err, errsize, MW_ECONFIG,
                         "redaction_key_file: \"%s\" is larger than %d bytes: not a key file?",
                         path, MAX_KEY_BYTES);
    *len = n;
    return 0;
}

/* An HMAC-SHA256 context keyed with key[0..len), or NULL. */
static EVP_MAC_CTX *keyed_hmac(const unsigned char *key, size_t len)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (ctx && !EVP_MAC_init(ctx, key, len, params)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* Read the key file and key r->mac with it; the key bytes are wiped from the stack after. */
static int load_key(struct mw_redactor *r, const char *path, char *err, size_t errsize)
{
    unsigned char key[MAX_KEY_BYTES + 1];
    size_t len = 0;
    int rc = read_key(path, key, &len, err, errsize);
    if (!rc && !(r->mac = keyed_hmac(key, len)))
        rc = set_error(err, errsize, MW_EIO, "redaction_key_file: OpenSSL HMAC-SHA256 unavailable");
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* The first rule that hashes, as an index into rules, or -1. */
static long first_hashing_rule(const struct mw_model_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (rules[i].redact.hash.n)
            return (long)i;
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Create / destroy                                                                          */

int mw_redact_create(const struct mw_model_rule *rules, size_t n, const char *key_file,
                     struct mw_redactor **out, char *err, size_t errsize)
{
    int rc = mw_model_rules_check(rules, n, err, errsize);
    if (rc)
        return rc;
    bool have_key = key_file && *key_file;
    long hashing = first_hashing_rule(rules, n);
    if (hashing >= 0 && !have_key)
        return set_error(err, errsize, MW_ECONFIG,
                         "models[%ld].redact.hash: hashing needs redaction_key_file (the HMAC key)",
                         hashing);
    struct mw_redactor *r = mw_calloc(1, sizeof *r);
    if (!r)
        return set_error(err, errsize, MW_ENOMEM, "redaction: out of memory");
    rc = build_rules(r, rules, n);
    if (rc) {
        set_error(err, errsize, rc, "redaction: out of memory");
        goto fail;
    }
    if (have_key && (rc = load_key(r, key_file, err, errsize)))
        goto fail;
    *out = r;
    return 0;
fail:
    mw_redact_destroy(r);
    return rc;
}

void mw_redact_destroy(struct mw_redactor *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_rules; i++) {
        mw_free(r->rules[i].model);
        set_free(&r->rules[i].drop);
        set_free(&r->rules[i].hash);
    }
    mw_free(r->rules);
    EVP_MAC_CTX_free(r->mac); /* wipes the key */
    mw_free(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Redaction                                                                                 */

bool mw_redact_has_rules(const struct mw_redactor *r, const char *model)
{
    const struct redact_rule *rule = r ? lookup(r, model) : NULL;
    return rule && (rule->drop.n || rule->hash.n);
}

int mw_redact_pseudonym(const struct mw_redactor *r, const void *data, size_t len,
                        char out[MW_REDACT_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[HMAC_BYTES];
    size_t md_len = 0;
    if (!r->mac)
        return MW_EINVAL;
    /* A NULL key re-initialises with the key already set. */
    if (!EVP_MAC_init(r->mac, NULL, 0, NULL) || !EVP_MAC_update(r->mac, data, len) ||
        !EVP_MAC_final(r->mac, md, &md_len, sizeof md) || md_len != HMAC_BYTES)
        return MW_EIO;
    for (size_t i = 0; i < HMAC_BYTES; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[MW_REDACT_HEX_LEN] = '\0';
    return 0;
}

/* Replace f's value (numeric or categorical, not missing) by its pseudonym. */
static int hash_feature(const struct mw_redactor *r, Modelwatch__V1__Feature *f,
                        void *(*alloc)(void *ctx, size_t n), void *alloc_ctx)
{
    char number[40];
    const char *bytes;
    size_t len;
    if (f->value_case == MODELWATCH__V1__FEATURE__VALUE_NUMERIC) {
        int n = snprintf(number, sizeof number, "%.17g", f->numeric);
        if (n < 0 || (size_t)n >= sizeof number)
            return MW_EIO;
        bytes = number;
        len = (size_t)n;
    } else {
        bytes = f->categorical ? f->categorical : "";
        len = strlen(bytes);
    }
    char *pseudonym = alloc(alloc_ctx, MW_REDACT_HEX_LEN + 1);
    if (!pseudonym)
        return MW_ENOMEM;
    int rc = mw_redact_pseudonym(r, bytes, len, pseudonym);
    if (rc)
        return rc;
    f->value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
    f->categorical = pseudonym;
    return 0;
}

static enum action classify(const struct redact_rule *rule, const Modelwatch__V1__Feature *f)
{
    if (!f || !f->name)
        return KEEP;
    if (set_has(&rule->drop, f->name))
        return DROP;
    return set_has(&rule->hash, f->name) ? HASH : KEEP;
}

/* Apply the rule to one feature: KEEP (hashed in place when the rule says so) or DROP. A
 * failure to hash is reported in *rc (the first one wins) and turns into DROP. */
static enum action redact_feature(const struct mw_redactor *r, const struct redact_rule *rule,
                                  Modelwatch__V1__Feature *f, void *(*alloc)(void *ctx, size_t n),
                                  void *alloc_ctx, int *rc)
{
    enum action act = classify(rule, f);
    if (act != HASH)
        return act;
    if (f->value_case == MODELWATCH__V1__FEATURE__VALUE__NOT_SET)
        return KEEP; /* missing stays missing: no value, nothing to hide */
    int hrc = hash_feature(r, f, alloc, alloc_ctx);
    if (hrc && !*rc)
        *rc = hrc;
    return hrc ? DROP : HASH;
}

int mw_redact_event(const struct mw_redactor *r, Modelwatch__V1__PredictionEvent *ev,
                    void *(*alloc)(void *ctx, size_t n), void *alloc_ctx, bool *changed)
{
    const struct redact_rule *rule = r && ev ? lookup(r, ev->model) : NULL;
    bool modified = false;
    int rc = 0;
    if (rule && (rule->drop.n || rule->hash.n)) {
        size_t kept = 0;
        for (size_t i = 0; i < ev->n_features; i++) {
            Modelwatch__V1__Feature *f = ev->features[i];
            enum action act = redact_feature(r, rule, f, alloc, alloc_ctx, &rc);
            modified |= act != KEEP;
            if (act != DROP)
                ev->features[kept++] = f;
        }
        ev->n_features = kept;
    }
    if (changed)
        *changed = modified;
    return rc;
}
