/*
 * redact.h — removing and pseudonymising input features before events leave the pod
 * (DESIGN.md step 5).
 *
 * Per-model rules (model_rules.h, `redact.drop` and `redact.hash`) either remove a feature from
 * the event or replace its value by a pseudonym: the lowercase hex of HMAC-SHA256(key, value),
 * all 64 hex characters, no truncation. The key is the exact bytes of `redaction_key_file` (a
 * trailing newline is part of the key). The value's canonical bytes are the categorical string
 * as is, or for a numeric value its "%.17g" text (42 -> "42", 0.1 -> "0.10000000000000001"), so
 * anyone holding the key can compute the same pseudonym outside the pod to join on it.
 *
 * Redaction is additive: the "*" rule's lists apply to every model, and a model's own rule adds
 * to them (a rule written to change one model's sample rate cannot lose the default's
 * redaction). When one list drops a feature and another hashes it, it is dropped.
 *
 * Only input features are redacted: outputs and ids are not personal data by this schema.
 *
 * Threads: a redactor holds one reusable HMAC context, so one thread at a time may call
 * mw_redact_event() on it (the agent's loop). On SIGHUP the agent builds a new one and swaps.
 */
#ifndef MW_AGENT_REDACT_H
#define MW_AGENT_REDACT_H

#include "model_rules.h"

#include "telemetry.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

/* Length of a pseudonym: hex of a 32-byte HMAC-SHA256, without the NUL. */
#define MW_REDACT_HEX_LEN 64

struct mw_redactor;

/*
 * Build a redactor from rules[0..n) and the key file `key_file` (NULL or "" = no key). The
 * rules and the path are copied; the key is read now, once. Returns 0 with *out set (free with
 * mw_redact_destroy), or with err set (may be NULL when errsize is 0):
 *   MW_ECONFIG  the rules fail mw_model_rules_check; a rule hashes but there is no key file;
 *               the key file is empty or larger than 4 KiB (message names the file)
 *   MW_EIO      the key file cannot be read (message names the file and the reason)
 *   MW_ENOMEM
 */
int mw_redact_create(const struct mw_model_rule *rules, size_t n, const char *key_file,
                     struct mw_redactor **out, char *err, size_t errsize);

/* Free the redactor and wipe its key. Accepts NULL. */
void mw_redact_destroy(struct mw_redactor *r);

/* Whether events of `model` have anything to redact; when false the agent may ship the event
 * without decoding it. NULL redactor: false. */
bool mw_redact_has_rules(const struct mw_redactor *r, const char *model);

/*
 * Redact `ev` in place under the rules of ev->model: dropped features are removed from
 * ev->features (the array is compacted, n_features lowered); hashed features become categorical
 * with their pseudonym as value; a missing feature (missing = true, no value) stays missing.
 * New strings come from alloc(alloc_ctx, n) and are never freed here: pass an arena, as the
 * agent does with the arena it decoded the event into. Removed Feature objects and replaced
 * strings are abandoned, not freed, for the same reason.
 *
 * Fails closed: when a value cannot be hashed (alloc returns NULL, or OpenSSL fails), that
 * feature is dropped instead and the rest is still redacted, so the event is safe to ship
 * whatever the result. Returns 0, MW_ENOMEM or MW_EIO (OpenSSL failure). *changed (may be NULL)
 * is set to whether ev was modified.
 */
int mw_redact_event(const struct mw_redactor *r, Modelwatch__V1__PredictionEvent *ev,
                    void *(*alloc)(void *ctx, size_t n), void *alloc_ctx, bool *changed);

/*
 * The pseudonym of `len` bytes at `data` into out (MW_REDACT_HEX_LEN + 1 bytes, NUL-terminated).
 * Returns 0, MW_EINVAL when the redactor has no key, or MW_EIO.
 */
int mw_redact_pseudonym(const struct mw_redactor *r, const void *data, size_t len,
                        char out[MW_REDACT_HEX_LEN + 1]);

#endif
