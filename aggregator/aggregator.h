/*
 * aggregator.h — modelwatch-aggregator assembled: Kafka consumer -> decode -> windows in Redis,
 * and the read side over HTTP. main.c wires flags and signals; tests can run it in-process.
 */
#ifndef MW_AGGREGATOR_AGGREGATOR_H
#define MW_AGGREGATOR_AGGREGATOR_H

#include "aggregator_config.h"

#include <uv.h>

struct mw_aggregator;

/* Start on `loop` with `cfg` (borrowed; must outlive the aggregator). Errors are logged and
 * returned. */
int mw_aggregator_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                         struct mw_aggregator **out);
/* SIGHUP: take what can change live from `fresh` (loaded from `config_path`; borrowed for the
 * call): the alert rule files, routing and inhibition. 0, or an error (logged; nothing
 * changed). */
int mw_aggregator_reload(struct mw_aggregator *agg, const struct mw_aggregator_config *fresh,
                         const char *config_path);
/* Stop consuming and serving, close every handle; the loop then ends by itself. Idempotent. */
void mw_aggregator_shutdown(struct mw_aggregator *agg);
/* After the loop has ended. Accepts NULL. */
void mw_aggregator_destroy(struct mw_aggregator *agg);

#endif
