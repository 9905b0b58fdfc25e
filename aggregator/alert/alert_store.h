/*
 * alert_store.h — what the alerting state looks like in Redis (the hashes schema.h names under
 * {alert}), and the commands of alert_state.lua, the lease and its fenced writes.
 *
 * Values are JSON documents, encoded and decoded here only:
 *   mw:{alert}:rules     one alert instance: identity, rule state, labels, annotations, values
 *   mw:{alert}:nlog      one alert group's notification log (struct mw_nlog_entry)
 *   mw:{alert}:silences  one silence
 * Numbers that JSON cannot hold (NaN) are written as null and read back as NaN.
 */
#ifndef MW_ALERT_ALERT_STORE_H
#define MW_ALERT_ALERT_STORE_H

#include "alert/evaluator.h"
#include "alert/labels.h"
#include "alert/receiver.h"
#include "alert/silence.h"
#include "redis_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const char MW_ALERT_STATE_SCRIPT[];
extern const size_t MW_ALERT_STATE_SCRIPT_LEN;
extern const char MW_ALERT_STATE_SCRIPT_SHA1[];

/* ---- instances ------------------------------------------------------------------------------- */

/* The JSON of `inst` (free with mw_free), or NULL when out of memory. */
char *mw_alert_inst_encode(const struct mw_alert_inst *inst);
/* Rebuild an instance from its JSON (its rule is not looked up). 0, MW_EPARSE or MW_ENOMEM. */
int mw_alert_inst_decode(const char *json, size_t len, struct mw_alert_inst **out);

/* ---- the notification log -------------------------------------------------------------------- */

/* An alert as a notification carried it. */
struct mw_nlog_alert {
    struct mw_labels labels;
    struct mw_labels annotations;
    int64_t starts_at_ms;
};

/* What happened to one alert group's notifications (owned strings). */
struct mw_nlog_entry {
    char *group_key;
    char *receiver;
    /* the last notification sent (submitted to delivery) */
    enum mw_notify_status last_status;
    int64_t last_at_ms;   /* wall clock when it was submitted */
    char last_result[16]; /* "sending", "delivered", "failed", "dropped", "superseded" */
    int last_attempts;
    long last_http_status;
    int64_t last_finished_ms;
    size_t last_n_firing, last_n_resolved;
    uint64_t last_id; /* this process's delivery id: matches a result to it (not stored) */
    /* the last notification the receiver accepted */
    bool has_delivered;
    enum mw_notify_status delivered_status;
    int64_t delivered_at_ms;
    size_t n_delivered; /* its firing alerts */
    struct mw_nlog_alert *delivered;
};

char *mw_nlog_entry_encode(const struct mw_nlog_entry *e); /* mw_free it; NULL: no memory */
/* Rebuild the entry of `group_key` from its JSON. 0, MW_EPARSE or MW_ENOMEM. */
int mw_nlog_entry_decode(const char *group_key, const char *json, size_t len,
                         struct mw_nlog_entry **out);
void mw_nlog_entry_free(struct mw_nlog_entry *e); /* accepts NULL */
void mw_nlog_alerts_free(struct mw_nlog_alert *alerts, size_t n);

/* ---- silences -------------------------------------------------------------------------------- */

/* The JSON of a silence: {"id", "matchers": ["name=\"v\"", ...], "starts_at_ms",
 * "ends_at_ms", "created_by", "comment"}. mw_free it; NULL: no memory. */
char *mw_silence_encode(const struct mw_silence *s);
/* The text form of one matcher (name, operator, quoted value) into out. */
void mw_matcher_text(const struct mw_matcher *m, char *out, size_t size);
/* Rebuild a silence from its JSON. 0, MW_EPARSE (why[] says what), MW_EINVAL, MW_ENOMEM. */
int mw_silence_decode(const char *json, size_t len, struct mw_silence *out, char *why,
                      size_t why_size);

/* ---- commands of alert_state.lua --------------------------------------------------------------
 */

/* KEYS of a fenced write, by index, as the script numbers them. */
enum mw_alert_key {
    MW_ALERT_KEY_RULES = 2,
    MW_ALERT_KEY_CURSORS = 3,
    MW_ALERT_KEY_NLOG = 4,
    MW_ALERT_KEY_SILENCES = 5,
};

/* EVALSHA ... "lease" <holder> <ttl_ms>: take or renew; the reply is 1 (ours) or 0. */
int mw_alert_lease_cmd(struct mw_redis_cmd *c, const char *holder, int64_t ttl_ms);
/* EVALSHA ... "release" <holder>. */
int mw_alert_release_cmd(struct mw_redis_cmd *c, const char *holder);

/* A fenced write being built: init, add HSETs and HDELs, send c.cmd; the reply is 1 or 0. */
struct mw_alert_write {
    struct mw_redis_cmd cmd;
    size_t n_ops;
};

int mw_alert_write_init(struct mw_alert_write *w, const char *holder);
int mw_alert_write_hset(struct mw_alert_write *w, enum mw_alert_key key, const char *field,
                        const char *value);
int mw_alert_write_hdel(struct mw_alert_write *w, enum mw_alert_key key, const char *field);
void mw_alert_write_free(struct mw_alert_write *w);

#endif
