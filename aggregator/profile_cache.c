/* profile_cache.c — (model, version) -> parsed profile, loaded from Redis asynchronously. */
#include "profile_cache.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "schema.h"
#include "table.h"

#include <string.h>

struct entry {
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
    struct mw_table entries; /* struct entry by (model, version) */
};

/* The key a lookup passes to mw_table_find. */
struct entry_key {
    const char *model;
    const char *version;
};

static bool same_entry(const void *item, const void *key)
{
    const struct entry *e = item;
    const struct entry_key *k = key;
    return strcmp(e->model, k->model) == 0 && strcmp(e->version, k->version) == 0;
}

struct mw_profile_cache *mw_profile_cache_create(struct mw_store *store, int64_t refresh_ms)
{
    struct mw_profile_cache *c = mw_calloc(1, sizeof *c);
    if (c) {
        c->store = store;
        c->refresh_ms = refresh_ms;
        mw_table_init(&c->entries, same_entry);
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
    size_t at = 0;
    struct entry *e;
    while ((e = mw_table_next(&c->entries, &at))) {
        if (e->fetching)
            e->cache = NULL; /* the reply frees it */
        else
            free_entry(e);
    }
    mw_table_free(&c->entries);
    mw_free(c);
}

void mw_profile_cache_destroy(struct mw_profile_cache *c)
{
    if (c)
        free_cache(c);
}

static uint64_t hash_of(const char *model, const char *version)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, model);
    h = mw_hash_byte(h, 0xff);
    return mw_hash_str(h, version);
}

static struct entry *find(struct mw_profile_cache *c, const char *model, const char *version,
                          bool create)
{
    uint64_t h = hash_of(model, version);
    struct entry *found = mw_table_find(&c->entries, h, &(struct entry_key){model, version});
    if (found || !create)
        return found;
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
    if (mw_table_insert(&c->entries, h, e) != 0) {
        free_entry(e);
        return NULL;
    }
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
