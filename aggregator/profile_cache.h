/*
 * profile_cache.h — reference profiles held in memory for the consumer's hot path.
 *
 * The first batch of a (model, version) starts an asynchronous GET of its profile from Redis;
 * until the answer is in, lookups say MW_EAGAIN and the consumer waits a moment (only the very
 * first batch of a model version ever waits). Entries are refreshed in the background after
 * `refresh_ms`, serving the old profile meanwhile, so a newly pushed profile takes effect within
 * that time on every replica; the replica that takes the push through its API uses it at once.
 */
#ifndef MW_AGGREGATOR_PROFILE_CACHE_H
#define MW_AGGREGATOR_PROFILE_CACHE_H

#include "profile.h"
#include "store.h"

struct mw_profile_cache;

struct mw_profile_cache *mw_profile_cache_create(struct mw_store *store, int64_t refresh_ms);
void mw_profile_cache_destroy(struct mw_profile_cache *c); /* accepts NULL */

/* 0 with *out the profile (NULL when the model version has none), or MW_EAGAIN while it is
 * being fetched. The profile stays valid until the next call into the cache. */
int mw_profile_cache_get(struct mw_profile_cache *c, const char *model, const char *version,
                         const struct mw_profile **out);

/* Install a profile now (taking ownership), as after a push through the API. */
int mw_profile_cache_put(struct mw_profile_cache *c, struct mw_profile *p);

#endif
