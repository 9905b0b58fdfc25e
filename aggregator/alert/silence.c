/* silence.c — silences and their matching (silence.h). */
#include "silence.h"

#include "alloc.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

const char *mw_silence_state_name(enum mw_silence_state s)
{
    static const char *const names[] = {"pending", "active", "expired"};
    return (unsigned)s < 3 ? names[s] : "?";
}

static int invalid(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return MW_EINVAL;
}

static bool text_ok(const char *s)
{
    return s && *s && strlen(s) <= MW_SILENCE_TEXT_MAX;
}

int mw_silence_init(struct mw_silence *s, const char *id, const char *const *matchers,
                    size_t n_matchers, int64_t starts_at_ms, int64_t ends_at_ms,
                    const char *created_by, const char *comment, char *why, size_t why_size)
{
    memset(s, 0, sizeof *s);
    if (!text_ok(id))
        return invalid(why, why_size, "id: empty or too long");
    if (!text_ok(created_by))
        return invalid(why, why_size, "created_by: say who sets the silence");
    if (!text_ok(comment))
        return invalid(why, why_size, "comment: say why");
    if (n_matchers == 0)
        return invalid(why, why_size, "matchers: at least one is needed");
    if (n_matchers > MW_SILENCE_MAX_MATCHERS)
        return invalid(why, why_size, "matchers: too many");
    if (ends_at_ms <= starts_at_ms)
        return invalid(why, why_size, "ends_at: must be after starts_at");
    size_t bad;
    char reason[256];
    int rc = mw_matchers_parse(matchers, n_matchers, &s->matchers, &bad, reason, sizeof reason);
    if (rc == MW_ECONFIG) {
        snprintf(why, why_size, "matchers[%zu]: %s", bad, reason);
        return MW_EINVAL;
    }
    if (rc)
        return rc;
    /* At least one matcher that an alert without that label fails: never "everything". */
    struct mw_labels empty = {0};
    bool narrows = false;
    for (size_t i = 0; i < s->matchers.n; i++)
        narrows |= !mw_matcher_matches(&s->matchers.items[i], &empty);
    if (!narrows) {
        mw_matchers_free(&s->matchers);
        return invalid(why, why_size,
                       "matchers: every one matches the empty string, so the "
                       "silence would mute every alert");
    }
    s->id = mw_strdup(id);
    s->created_by = mw_strdup(created_by);
    s->comment = mw_strdup(comment);
    s->starts_at_ms = starts_at_ms;
    s->ends_at_ms = ends_at_ms;
    if (!s->id || !s->created_by || !s->comment) {
        mw_silence_free(s);
        return MW_ENOMEM;
    }
    return 0;
}

void mw_silence_free(struct mw_silence *s)
{
    if (!s)
        return;
    mw_free(s->id);
    mw_free(s->created_by);
    mw_free(s->comment);
    mw_matchers_free(&s->matchers);
    memset(s, 0, sizeof *s);
}

enum mw_silence_state mw_silence_state_at(const struct mw_silence *s, int64_t now_ms)
{
    if (now_ms < s->starts_at_ms)
        return MW_SILENCE_PENDING;
    return now_ms < s->ends_at_ms ? MW_SILENCE_ACTIVE : MW_SILENCE_EXPIRED;
}

bool mw_silence_mutes(const struct mw_silence *s, const struct mw_labels *labels, int64_t now_ms)
{
    return mw_silence_state_at(s, now_ms) == MW_SILENCE_ACTIVE &&
           mw_matchers_match(&s->matchers, labels);
}

const struct mw_silence *mw_silences_find(const struct mw_silences *set, const char *id)
{
    for (size_t i = 0; set && id && i < set->n; i++)
        if (!strcmp(set->items[i].id, id))
            return &set->items[i];
    return NULL;
}

int mw_silences_add(struct mw_silences *set, struct mw_silence *s)
{
    if (mw_silences_find(set, s->id))
        return MW_EINVAL;
    if (set->n >= MW_SILENCES_MAX)
        return MW_EFULL;
    struct mw_silence *items = mw_realloc(set->items, (set->n + 1) * sizeof *items);
    if (!items)
        return MW_ENOMEM;
    set->items = items;
    items[set->n++] = *s;
    memset(s, 0, sizeof *s);
    return 0;
}

int mw_silences_expire(struct mw_silences *set, const char *id, int64_t now_ms)
{
    struct mw_silence *s = (struct mw_silence *)mw_silences_find(set, id);
    if (!s || mw_silence_state_at(s, now_ms) == MW_SILENCE_EXPIRED)
        return MW_ENOTFOUND;
    if (mw_silence_state_at(s, now_ms) == MW_SILENCE_PENDING)
        s->starts_at_ms = now_ms;
    s->ends_at_ms = now_ms;
    return 0;
}

const struct mw_silence *mw_silences_match(const struct mw_silences *set,
                                           const struct mw_labels *labels, int64_t now_ms)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (mw_silence_mutes(&set->items[i], labels, now_ms))
            return &set->items[i];
    return NULL;
}

size_t mw_silences_gc(struct mw_silences *set, int64_t now_ms, int64_t retention_ms)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (set->items[i].ends_at_ms + retention_ms <= now_ms) {
            mw_silence_free(&set->items[i]);
            dropped++;
        } else {
            set->items[kept++] = set->items[i];
        }
    }
    set->n = kept;
    return dropped;
}

void mw_silences_free(struct mw_silences *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        mw_silence_free(&set->items[i]);
    mw_free(set->items);
    *set = (struct mw_silences){0};
}
