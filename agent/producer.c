/* producer.c — librdkafka producer for sealed batches, polled from the libuv loop. */
#include "producer.h"

#include "alloc.h"
#include "batch_builder.h"
#include "clock.h"
#include "error.h"
#include "log.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define POLL_INTERVAL_MS 10

struct mw_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    char *agent_id;
    uv_timer_t poll_timer;
    mw_producer_delivered_fn on_delivered;
    void *arg;
    struct mw_producer_health health;
};

static void set_brokers_up(struct mw_producer *p, bool up, const char *why)
{
    if (up == p->health.brokers_up)
        return;
    p->health.brokers_up = up;
    if (up) {
        MW_LOG_INFO("producer", "Kafka reachable again", "down_ms=%" PRIu64,
                    mw_clock_mono_ms() - p->health.down_since_ms);
        p->health.down_since_ms = 0;
    } else {
        p->health.down_since_ms = mw_clock_mono_ms();
        MW_LOG_WARN("producer", "Kafka unreachable: no broker connection is up", "reason=%s", why);
    }
}

/* librdkafka's client errors: counted; "all brokers down" marks Kafka unreachable at once. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct mw_producer *p = opaque;
    char quoted[512];
    p->health.errors++;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        set_brokers_up(p, false, rd_kafka_err2name(err));
        return;
    }
    char errstr[256];
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, errstr, sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->health.fatal = true;
        MW_LOG_ERROR("producer", "fatal Kafka producer error: nothing more can be delivered",
                     "error=%s", mw_log_quote(errstr, quoted, sizeof quoted));
        return;
    }
    MW_LOG_DEBUG("producer", "Kafka client error", "error=%s reason=%s",
                 rd_kafka_err2name((rd_kafka_resp_err_t)err),
                 mw_log_quote(reason, quoted, sizeof quoted));
}

/* Statistics (JSON, every second): Kafka is reachable while any real broker is UP. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct mw_producer *p = opaque;
    (void)rk;
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *brokers = root ? json_object_get(root, "brokers") : NULL;
    if (json_is_object(brokers)) {
        bool any_up = false;
        const char *name;
        json_t *b;
        json_object_foreach(brokers, name, b)
        {
            const char *source = json_string_value(json_object_get(b, "source"));
            const char *state = json_string_value(json_object_get(b, "state"));
            if (source && strcmp(source, "internal") != 0 && state && strcmp(state, "UP") == 0)
                any_up = true;
        }
        set_brokers_up(p, any_up, "no broker in state UP");
    }
    json_decref(root);
    return 0; /* librdkafka frees json */
}

/* Errors that belong to the record itself: sending it again can never succeed. Everything else
 * (timeouts, brokers down, leadership changes, authorisation) may pass and is retried. */
static bool rejects_record(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        return true;
    default:
        return false;
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct mw_producer *p = opaque;
    uint64_t id = (uint64_t)(uintptr_t)msg->_private;
    (void)rk;
    enum mw_delivery outcome = MW_DELIVERY_OK;
    if (msg->err) {
        outcome = rejects_record(msg->err) ? MW_DELIVERY_REJECTED : MW_DELIVERY_FAILED;
        MW_LOG_WARN("producer", "batch delivery failed", "id=%" PRIu64 " error=%s permanent=%s", id,
                    rd_kafka_err2name(msg->err),
                    outcome == MW_DELIVERY_REJECTED ? "true" : "false");
    }
    if (p->on_delivered)
        p->on_delivered(id, outcome, rd_kafka_err2str(msg->err), msg->payload, msg->len, p->arg);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct mw_producer *p = t->data;
    rd_kafka_poll(p->rk, 0);
}

int mw_producer_create(uv_loop_t *loop, const struct mw_kafka_settings *settings,
                       const char *agent_id, mw_producer_delivered_fn on_delivered, void *arg,
                       struct mw_producer **out, char *errbuf, size_t errbuf_size)
{
    /* The delivery guarantees are not configurable: these win over pass-through properties. */
    static const char *const fixed[] = {"enable.idempotence",     "true", "acks", "all",
                                        "statistics.interval.ms", "1000", NULL};
    rd_kafka_conf_t *conf = NULL;
    int rc = mw_kafka_conf_build(settings, fixed, &conf, errbuf, errbuf_size);
    if (rc)
        return rc;
    struct mw_producer *p = mw_calloc(1, sizeof *p);
    if (!p) {
        rd_kafka_conf_destroy(conf);
        return MW_ENOMEM;
    }
    p->health.brokers_up = true;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    char rderr[256];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errbuf_size, "kafka: %s", rderr);
        mw_free(p);
        return MW_EKAFKA;
    }
    p->topic = rd_kafka_topic_new(p->rk, settings->topic, NULL);
    p->agent_id = mw_strdup(agent_id);
    p->on_delivered = on_delivered;
    p->arg = arg;
    uv_timer_init(loop, &p->poll_timer);
    p->poll_timer.data = p;
    uv_timer_start(&p->poll_timer, on_poll_timer, POLL_INTERVAL_MS, POLL_INTERVAL_MS);
    *out = p;
    return 0;
}

int mw_producer_send(struct mw_producer *p, const void *payload, size_t len, uint64_t id)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    char schema[16];
    snprintf(schema, sizeof schema, "%d", MW_SCHEMA_VERSION);
    rd_kafka_header_add(hdrs, "mw-schema", -1, schema, -1);
    rd_kafka_header_add(hdrs, "mw-encoding", -1, "protobuf+zstd", -1);
    rd_kafka_resp_err_t err =
        rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->topic), RD_KAFKA_V_VALUE((void *)payload, len),
                          RD_KAFKA_V_KEY(p->agent_id, strlen(p->agent_id)),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE((void *)(uintptr_t)id), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs);
        MW_LOG_WARN("producer", "produce refused", "id=%" PRIu64 " bytes=%zu error=%s", id, len,
                    rd_kafka_err2name(err));
        if (rejects_record(err))
            return MW_ETOOBIG;
        return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? MW_EFULL : MW_EKAFKA;
    }
    return 0;
}

void mw_producer_health(const struct mw_producer *p, struct mw_producer_health *out)
{
    *out = p->health;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mw_producer *p = h->data;
    rd_kafka_topic_destroy(p->topic);
    rd_kafka_destroy(p->rk);
    mw_free(p->agent_id);
    mw_free(p);
}

void mw_producer_destroy(struct mw_producer *p)
{
    if (!p)
        return;
    /* Purged records get no callback that matters: their batches stay unacknowledged in the
     * spool and are sent again by the next process. */
    p->on_delivered = NULL;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    uv_timer_stop(&p->poll_timer);
    uv_close((uv_handle_t *)&p->poll_timer, on_timer_closed);
}
