/* profile_cache.c — (model, version) -> parsed profile, loaded from Redis asynchronously. */
#include "profile_cache.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "schema.h"

#include <string.h>

#define BUCKETS 4096

struct entry {
    struct entry *next;
    char *model;
    char *version;
    struct mw_profile *profile; /* NULL: none exists (or not loaded yet) */
    bool loaded;
    bool fetching;
    uint64_t fetched_ms;
    struct mw_profile_cache *cache;
};

struct mw_profile_cache {
    struct mw_store *store;
    int64_t refresh_ms;
    struct entry *buckets[BUCKETS];
};

struct mw_profile_cache *mw_profile_cache_create(struct mw_store *store, int64_t refresh_ms)
{
    struct mw_profile_cache *c = mw_calloc(1, sizeof *c);
    if (c) {
        c->store = store;
        c->refresh_ms = refresh_ms;
    }
    return c;
}

static void free_entry(struct entry *e)
{
    mw_profile_free(e->profile);
    mw_free(e->model);
    mw_free(e->version);
    mw_free(e);
}

static void free_cache(struct mw_profile_cache *c)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        for (struct entry *e = c->buckets[i], *next; e; e = next) {
            next = e->next;
            if (e->fetching)
                e->cache = NULL; /* the reply frees it */
            else
                free_entry(e);
        }
    }
    mw_free(c);
}

void mw_profile_cache_destroy(struct mw_profile_cache *c)
{
    if (c)
        free_cache(c);
}

static size_t bucket_of(const char *model, const char *version)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, model);
    h = mw_hash_byte(h, 0xff);
    h = mw_hash_str(h, version);
    return (size_t)(h % BUCKETS);
}

static struct entry *find(struct mw_profile_cache *c, const char *model, const char *version,
                          bool create)
{
    size_t b = bucket_of(model, version);
    for (struct entry *e = c->buckets[b]; e; e = e->next)
        if (strcmp(e->model, model) == 0 && strcmp(e->version, version) == 0)
            return e;
    if (!create)
        return NULL;
    struct entry *e = mw_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->model = mw_strdup(model);
    e->version = mw_strdup(version);
    if (!e->model || !e->version) {
        free_entry(e);
        return NULL;
    }
    e->cache = c;
    e->next = c->buckets[b];
    c->buckets[b] = e;
    return e;
}

static void on_profile_reply(redisReply *reply, void *arg)
{
    struct entry *e = arg;
    e->fetching = false;
    if (!e->cache) { /* the cache was destroyed meanwhile */
        free_entry(e);
        return;
    }
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL))
        return; /* Redis unavailable: try again on the next lookup */
    e->loaded = true;
    e->fetched_ms = mw_clock_mono_ms();
    if (reply->type == REDIS_REPLY_NIL) {
        mw_profile_free(e->profile);
        e->profile = NULL;
        return;
    }
    char err[256];
    struct mw_profile *p = NULL;
    if (mw_profile_parse(reply->str, reply->len, &p, err, sizeof err) != 0) {
        MW_LOG_ERROR("profiles", "stored profile is invalid; drift not computed",
                     "model=%s "
                     "version=%s error=\"%s\"",
                     e->model, e->version, err);
        return;
    }
    mw_profile_free(e->profile);
    e->profile = p;
}

static void fetch(struct mw_profile_cache *c, struct entry *e)
{
    char key[MW_SCHEMA_KEY_MAX];
    struct mw_redis_cmd cmd;
    if (mw_schema_profile_key(key, sizeof key, e->model, e->version) != 0)
        return;
    mw_redis_cmd_init(&cmd);
    if (mw_redis_cmd_add(&cmd, "GET") == 0 && mw_redis_cmd_add(&cmd, key) == 0 &&
        mw_store_command(c->store, &cmd, on_profile_reply, e) == 0)
        e->fetching = true;
    mw_redis_cmd_free(&cmd);
}

int mw_profile_cache_get(struct mw_profile_cache *c, const char *model, const char *version,
                         const struct mw_profile **out)
{
    *out = NULL;
    struct entry *e = find(c, model, version, true);
    if (!e)
        return MW_ENOMEM;
    bool stale = e->loaded && mw_clock_mono_ms() - e->fetched_ms >= (uint64_t)c->refresh_ms;
    if ((!e->loaded || stale) && !e->fetching)
        fetch(c, e);
    if (!e->loaded)
        return MW_EAGAIN;
    *out = e->profile;
    return 0;
}

int mw_profile_cache_put(struct mw_profile_cache *c, struct mw_profile *p)
{
    struct entry *e = find(c, p->model, p->version, true);
    if (!e) {
        mw_profile_free(p);
        return MW_ENOMEM;
    }
    mw_profile_free(e->profile);
    e->profile = p;
    e->loaded = true;
    e->fetched_ms = mw_clock_mono_ms();
    return 0;
}
