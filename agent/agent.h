/*
 * agent.h — modelwatch-agent assembled: intake -> exact counters -> sampling and redaction ->
 * batch -> zstd -> spool -> Kafka.
 *
 * main.c parses flags and the config and hands them here; tests can run an agent inside their
 * own process on their own loop the same way.
 */
#ifndef MW_AGENT_AGENT_H
#define MW_AGENT_AGENT_H

#include "agent_config.h"

#include <stdint.h>
#include <uv.h>

struct mw_agent;

struct mw_agent_stats {
    uint64_t events_accepted;
    uint64_t feedback_accepted;
    uint64_t dropped_malformed;
    uint64_t dropped_invalid_name;
    uint64_t dropped_future_time; /* event or label time beyond intake.max_future_skew ahead */
    uint64_t dropped_counters_full;
    uint64_t dropped_batch_error;
    uint64_t records_kept;
    /* Events a client sent without features and output (payload_omitted: the rules it read
     * said the rate leaves them out), and of those, the ones this agent's sampler kept all the
     * same (its rules changed after the client read them): a sample short of a payload. */
    uint64_t events_payload_omitted;
    uint64_t kept_without_payload;
    /* Events a client counted itself and sent as counts (ClientMessage.counts), accepted. */
    uint64_t events_counted_by_client;
    uint64_t counts_messages; /* the counts messages that carried them */
    uint64_t redact_failures;
    uint64_t batches_sealed;
    uint64_t events_lost_before_start; /* accepted but unsealed when the previous process died */
    /* Handed over by a client but never received (ClientStream gaps), in this process's life;
     * across a restart too, as far as the state file knew the client. */
    uint64_t events_lost_in_transit;
    uint64_t feedback_lost_in_transit;
};

/* Start an agent on `loop` with `cfg` (borrowed; must outlive the agent). Errors are logged
 * where they happen and returned (MW_ECONFIG, MW_ETRANSPORT, MW_EKAFKA, MW_EIO, MW_ENOMEM). */
int mw_agent_create(uv_loop_t *loop, const struct mw_agent_config *cfg, struct mw_agent **out);

/* Apply what may change live from `fresh` (sampling and redaction rules, log level); `fresh` is
 * only read. Returns 0, or an error (logged) in which case the old rules stay. */
int mw_agent_reload(struct mw_agent *agent, const struct mw_agent_config *fresh);

/* Begin the orderly stop SIGTERM asks for: stop intake, seal what is open, keep delivering
 * until everything is acknowledged or the shutdown grace has passed (what is left stays in the
 * spool), then close every handle; the loop ends by itself. Idempotent. */
void mw_agent_shutdown(struct mw_agent *agent);

/* After the loop has ended: 0 when every sealed batch was delivered or spooled, else MW_EIO.
 * Frees the agent. Accepts NULL. */
int mw_agent_destroy(struct mw_agent *agent);

const struct mw_agent_stats *mw_agent_stats(const struct mw_agent *agent);

#endif
