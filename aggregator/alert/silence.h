/*
 * silence.h — silences: "do not notify about alerts matching these matchers between start and
 * end", with who set it and why. This is the model and its matching; where silences are kept
 * (Redis), and how they are created, listed and expired (/api/v1/silences, modelwatch-ctl
 * silence), come on top of it.
 *
 * A silence is pending before starts_at, active in [starts_at, ends_at), expired from ends_at.
 * Expiring a silence early sets ends_at to now. As in Alertmanager, a silence needs at least
 * one matcher that does not match the empty string, so it can never silence everything.
 * What a silence does to notifications is route.h's: a silenced alert is not notified as
 * firing, but the resolve of an alert paged before the silence began is still delivered.
 */
#ifndef MW_ALERT_SILENCE_H
#define MW_ALERT_SILENCE_H

#include "labels.h"
#include "route.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_SILENCE_MAX_MATCHERS 32
#define MW_SILENCE_TEXT_MAX 1024 /* bytes of created_by, comment and id */
#define MW_SILENCES_MAX 10000

struct mw_silence {
    char *id;
    struct mw_matchers matchers;
    int64_t starts_at_ms;
    int64_t ends_at_ms;
    char *created_by;
    char *comment;
};

enum mw_silence_state { MW_SILENCE_PENDING, MW_SILENCE_ACTIVE, MW_SILENCE_EXPIRED };

/* "pending", "active", "expired" */
const char *mw_silence_state_name(enum mw_silence_state s);

/*
 * Make a silence from its parts (copied). Returns 0, MW_ENOMEM, or MW_EINVAL with why[] set:
 * no matchers or a matcher that does not parse, only matchers that match "", ends_at not after
 * starts_at, an empty id, created_by or comment, text too long.
 */
int mw_silence_init(struct mw_silence *s, const char *id, const char *const *matchers,
                    size_t n_matchers, int64_t starts_at_ms, int64_t ends_at_ms,
                    const char *created_by, const char *comment, char *why, size_t why_size);
void mw_silence_free(struct mw_silence *s); /* accepts NULL */

enum mw_silence_state mw_silence_state_at(const struct mw_silence *s, int64_t now_ms);

/* Whether `s` is active at now_ms and all its matchers match `labels`. */
bool mw_silence_mutes(const struct mw_silence *s, const struct mw_labels *labels, int64_t now_ms);

struct mw_silences {
    size_t n;
    struct mw_silence *items;
};

/* Add `s`, taking what it owns (*s is left empty). MW_EINVAL when the id is taken (s is left
 * as it was), MW_EFULL at MW_SILENCES_MAX, MW_ENOMEM. */
int mw_silences_add(struct mw_silences *set, struct mw_silence *s);

/* Expire silence `id` at now_ms: an active one ends now, a pending one never starts. 0, or
 * MW_ENOTFOUND (also for one already expired). */
int mw_silences_expire(struct mw_silences *set, const char *id, int64_t now_ms);

const struct mw_silence *mw_silences_find(const struct mw_silences *set, const char *id);

/* The first silence that mutes `labels` at now_ms, or NULL. */
const struct mw_silence *mw_silences_match(const struct mw_silences *set,
                                           const struct mw_labels *labels, int64_t now_ms);

/* Drop silences expired for longer than retention_ms; returns how many. */
size_t mw_silences_gc(struct mw_silences *set, int64_t now_ms, int64_t retention_ms);

void mw_silences_free(struct mw_silences *set); /* accepts NULL; leaves it empty */

#endif
