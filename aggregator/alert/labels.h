/*
 * labels.h — label sets of alerts: what rules attach to an alert, what routes, inhibition
 * rules and silences match against, and what groups alerts.
 *
 * A set is kept sorted by name with unique names, so two sets with the same pairs are equal
 * byte for byte and hash (mw_labels_hash) to the same fingerprint whatever order the pairs
 * were added in. A label that is absent reads as "" (as in Prometheus and Alertmanager).
 */
#ifndef MW_ALERT_LABELS_H
#define MW_ALERT_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_LABELS_MAX 64        /* pairs in one set */
#define MW_LABEL_NAME_MAX 128   /* bytes of a name */
#define MW_LABEL_VALUE_MAX 4096 /* bytes of a value (annotations are label sets too) */

struct mw_label {
    char *name;
    char *value;
};

struct mw_labels {
    size_t n;
    struct mw_label *items; /* sorted by name; owned */
};

/* A label name: [A-Za-z_][A-Za-z0-9_]*, at most MW_LABEL_NAME_MAX bytes. */
bool mw_label_name_valid(const char *name);

/* Set `name` to a copy of `value`, replacing an earlier value. Returns 0, MW_EINVAL (invalid
 * name, value too long or not valid for a label), MW_EFULL (MW_LABELS_MAX pairs) or MW_ENOMEM;
 * on error the set is unchanged. */
int mw_labels_set(struct mw_labels *l, const char *name, const char *value);

/* The value of `name` (borrowed), or NULL when absent. */
const char *mw_labels_get(const struct mw_labels *l, const char *name);

/* Copy `src` into `dst` (which must be empty or zeroed). 0 or MW_ENOMEM (dst left empty). */
int mw_labels_copy(struct mw_labels *dst, const struct mw_labels *src);

/* Free the pairs and leave an empty set. Accepts NULL. */
void mw_labels_free(struct mw_labels *l);

/* Fingerprint of the whole set (names and values, with separators). */
uint64_t mw_labels_hash(const struct mw_labels *l);

bool mw_labels_equal(const struct mw_labels *a, const struct mw_labels *b);

#endif
