/*
 * alert_drive.c — pushes notifications through the real delivery code (receivers, queues,
 * retries, the libcurl client on a libuv loop) for the integration tests, which play the
 * receiving side with tools/alert_receiver.py.
 *
 *   mw-alert-drive --config receivers.yaml --notifications notes.json [--seed N]
 *                  [--deadline-ms N] [--grace-ms N]
 *
 * receivers.yaml holds a `receivers:` section exactly as the aggregator's config will. notes.json
 * is a list of notifications, each submitted `at_ms` after start:
 *
 *   [{"at_ms": 0, "receiver": "pd", "group_key": "...", "status": "firing",
 *     "group_labels": {...}, "common_labels": {...}, "common_annotations": {...},
 *     "external_url": "...", "truncated_alerts": 0,
 *     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...}, "values": {...},
 *                 "starts_at_ms": ..., "ends_at_ms": ..., "generator_url": "..."}]}]
 *
 * stdout gets one JSON line per event: {"event": "submitted", "index", "id", "t_ms"} or
 * {"event": "submit_error", "index", "error"} at submit, {"event": "result", "index", "id",
 * "outcome", "attempts", "http_status", "error", "reason", "t_ms"} per result, and finally
 * {"event": "counters", "receivers": {name: {...}}}. It exits 0 once every submitted
 * notification has its result (or the deadline passed and shutdown dropped the rest), 2 on bad
 * input.
 */
#include "alert/delivery.h"
#include "alert/receiver.h"

#include "alloc.h"
#include "config.h"
#include "error.h"
#include "log.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct drive_config {
    struct mw_cfg_list receivers;
};

static const struct mw_cfg_field drive_table[] = {
    MW_RECEIVERS_CFG_FIELD(struct drive_config, receivers),
    MW_CFG_END,
};

struct note {
    int index;
    uint64_t at_ms;
    json_t *src; /* keeps every string below alive */
    struct mw_notify_group n;
    struct mw_notify_alert *alerts;
    struct mw_notify_label *label_pool;
    struct mw_notify_value *value_pool;
    uv_timer_t timer;
    bool submitted, finished;
};

struct drive {
    uv_loop_t *loop;
    struct mw_delivery *delivery;
    struct note *notes;
    size_t n_notes;
    size_t n_pending; /* submitted, no result yet */
    size_t n_unsubmitted;
    uint64_t start_ms;
    uint64_t grace_ms;
    uv_timer_t deadline;
    bool shutting_down;
};

static uint64_t since_start(struct drive *dr)
{
    return uv_now(dr->loop) - dr->start_ms;
}

/* ---- JSON -> notification
 * ------------------------------------------------------------------------ */

static size_t count_labels(json_t *note)
{
    size_t n = 0;
    const char *groups[] = {"group_labels", "common_labels", "common_annotations"};
    for (size_t i = 0; i < 3; i++)
        n += json_object_size(json_object_get(note, groups[i]));
    json_t *a;
    size_t k;
    json_array_foreach(json_object_get(note, "alerts"), k, a)
    {
        n += json_object_size(json_object_get(a, "labels"));
        n += json_object_size(json_object_get(a, "annotations"));
    }
    return n;
}

static struct mw_notify_labels take_labels(json_t *obj, struct mw_notify_label **pool)
{
    struct mw_notify_labels out = {.items = *pool, .n = 0};
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        (*pool)[out.n].name = key;
        (*pool)[out.n].value = json_is_string(v) ? json_string_value(v) : "";
        out.n++;
    }
    *pool += out.n;
    return out;
}

static enum mw_notify_status parse_status(json_t *v)
{
    return json_is_string(v) && strcmp(json_string_value(v), "resolved") == 0 ? MW_NOTIFY_RESOLVED
                                                                              : MW_NOTIFY_FIRING;
}

static const char *opt_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int build_note(struct note *x, json_t *src, int index)
{
    x->index = index;
    x->src = json_incref(src);
    x->at_ms = (uint64_t)json_integer_value(json_object_get(src, "at_ms"));
    json_t *alerts = json_object_get(src, "alerts");
    size_t n_alerts = json_array_size(alerts);
    size_t n_values = 0;
    json_t *a;
    size_t k;
    json_array_foreach(alerts, k, a) n_values += json_object_size(json_object_get(a, "values"));
    x->alerts = mw_calloc(n_alerts ? n_alerts : 1, sizeof *x->alerts);
    x->label_pool = mw_calloc(count_labels(src) + 1, sizeof *x->label_pool);
    x->value_pool = mw_calloc(n_values + 1, sizeof *x->value_pool);
    if (!x->alerts || !x->label_pool || !x->value_pool)
        return MW_ENOMEM;
    struct mw_notify_label *pool = x->label_pool;
    struct mw_notify_value *values = x->value_pool;
    json_array_foreach(alerts, k, a)
    {
        struct mw_notify_alert *al = &x->alerts[k];
        al->status = parse_status(json_object_get(a, "status"));
        al->labels = take_labels(json_object_get(a, "labels"), &pool);
        al->annotations = take_labels(json_object_get(a, "annotations"), &pool);
        al->starts_at_ms = json_integer_value(json_object_get(a, "starts_at_ms"));
        al->ends_at_ms = json_integer_value(json_object_get(a, "ends_at_ms"));
        al->generator_url = opt_str(a, "generator_url");
        al->values = values;
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(a, "values"), key, v)
        {
            values->name = key;
            values->value = json_number_value(v);
            values++;
            al->n_values++;
        }
    }
    x->n = (struct mw_notify_group){
        .group_key = opt_str(src, "group_key"),
        .receiver = opt_str(src, "receiver"),
        .status = parse_status(json_object_get(src, "status")),
        .alerts = x->alerts,
        .n_alerts = n_alerts,
        .truncated_alerts = (size_t)json_integer_value(json_object_get(src, "truncated_alerts")),
        .external_url = opt_str(src, "external_url"),
    };
    x->n.group_labels = take_labels(json_object_get(src, "group_labels"), &pool);
    x->n.common_labels = take_labels(json_object_get(src, "common_labels"), &pool);
    x->n.common_annotations = take_labels(json_object_get(src, "common_annotations"), &pool);
    return x->n.group_key && x->n.receiver ? 0 : MW_EINVAL;
}

static void free_note(struct note *x)
{
    json_decref(x->src);
    mw_free(x->alerts);
    mw_free(x->label_pool);
    mw_free(x->value_pool);
}

/* ---- events
 * -------------------------------------------------------------------------------------- */

static void emit(json_t *obj)
{
    char *line = json_dumps(obj, JSON_COMPACT);
    if (line) {
        printf("%s\n", line);
        fflush(stdout);
        free(line);
    }
    json_decref(obj);
}

static void on_closed(void *arg)
{
    (void)arg; /* the loop runs dry and main returns */
}

static void emit_counters_and_close(struct drive *dr)
{
    if (dr->shutting_down)
        return;
    dr->shutting_down = true;
    json_t *all = json_object();
    for (size_t i = 0; i < mw_delivery_n_receivers(dr->delivery); i++) {
        struct mw_delivery_counters c;
        mw_delivery_counters(dr->delivery, i, &c);
        json_object_set_new(all, mw_delivery_receiver_name(dr->delivery, i),
                            json_pack("{sI sI sI sI sI sI sI sI}", "submitted",
                                      (json_int_t)c.submitted, "delivered", (json_int_t)c.delivered,
                                      "failed", (json_int_t)c.failed, "retried",
                                      (json_int_t)c.retried, "dropped", (json_int_t)c.dropped,
                                      "superseded", (json_int_t)c.superseded, "queued",
                                      (json_int_t)c.queued, "in_flight", (json_int_t)c.in_flight));
    }
    emit(json_pack("{ss so}", "event", "counters", "receivers", all));
    for (size_t i = 0; i < dr->n_notes; i++) {
        uv_timer_stop(&dr->notes[i].timer);
        uv_close((uv_handle_t *)&dr->notes[i].timer, NULL);
    }
    uv_timer_stop(&dr->deadline);
    uv_close((uv_handle_t *)&dr->deadline, NULL);
    mw_delivery_shutdown(dr->delivery, dr->grace_ms, on_closed, dr);
}

static void maybe_done(struct drive *dr)
{
    if (dr->n_unsubmitted == 0 && dr->n_pending == 0)
        emit_counters_and_close(dr);
}

static void on_result(const struct mw_delivery_result *r, void *arg)
{
    struct drive *dr = arg;
    struct note *x = r->user;
    x->finished = true;
    dr->n_pending--;
    emit(json_pack("{ss si sI ss ss ss si sI ss ss sI}", "event", "result", "index", x->index, "id",
                   (json_int_t)r->id, "receiver", r->receiver, "group_key", r->group_key, "outcome",
                   mw_delivery_outcome_name(r->outcome), "attempts", r->attempts, "http_status",
                   (json_int_t)r->last_http_status, "error",
                   r->last_err ? mw_err_name(r->last_err) : "", "reason", r->reason, "t_ms",
                   (json_int_t)since_start(dr)));
    maybe_done(dr);
}

static void on_submit_time(uv_timer_t *t)
{
    struct note *x = t->data;
    struct drive *dr = x->timer.loop->data;
    dr->n_unsubmitted--;
    uint64_t id = 0;
    int rc = mw_delivery_submit(dr->delivery, &x->n, x, &id);
    if (rc) {
        emit(json_pack("{ss si ss sI}", "event", "submit_error", "index", x->index, "error",
                       mw_err_name(rc), "t_ms", (json_int_t)since_start(dr)));
    } else {
        x->submitted = true;
        dr->n_pending++;
        emit(json_pack("{ss si sI sI}", "event", "submitted", "index", x->index, "id",
                       (json_int_t)id, "t_ms", (json_int_t)since_start(dr)));
    }
    maybe_done(dr);
}

static void on_deadline(uv_timer_t *t)
{
    struct drive *dr = t->data;
    fprintf(stderr, "mw-alert-drive: deadline reached with %zu results outstanding\n",
            dr->n_pending);
    emit_counters_and_close(dr);
}

static int usage(void)
{
    fprintf(stderr, "usage: mw-alert-drive --config FILE --notifications FILE [--seed N] "
                    "[--deadline-ms N] [--grace-ms N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *notes_path = NULL;
    uint64_t seed = 0, deadline_ms = 60000, grace_ms = 1000;
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},   {"notifications", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},     {"deadline-ms", required_argument, NULL, 'd'},
        {"grace-ms", required_argument, NULL, 'g'}, {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:n:s:d:g:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'n':
            notes_path = optarg;
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            deadline_ms = strtoull(optarg, NULL, 10);
            break;
        case 'g':
            grace_ms = strtoull(optarg, NULL, 10);
            break;
        default:
            return usage();
        }
    }
    if (!config_path || !notes_path)
        return usage();
    const char *level = getenv("MW_LOG_LEVEL");
    enum mw_log_level lvl;
    if (level && mw_log_level_parse(level, &lvl) == 0)
        mw_log_set_level(lvl);

    struct drive_config cfg;
    struct mw_cfg_error cerr;
    memset(&cfg, 0, sizeof cfg);
    if (mw_config_load_file(drive_table, &cfg, config_path, &cerr) != 0) {
        fprintf(stderr, "%s\n", cerr.message);
        mw_config_free(drive_table, &cfg);
        return 2;
    }
    json_error_t jerr;
    json_t *notes = json_load_file(notes_path, 0, &jerr);
    if (!json_is_array(notes)) {
        fprintf(stderr, "%s:%d: %s\n", notes_path, jerr.line, jerr.text);
        mw_config_free(drive_table, &cfg);
        return 2;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct drive dr = {.loop = &loop, .grace_ms = grace_ms};
    loop.data = &dr;
    char err[512] = "";
    struct mw_delivery_options opts = {.on_result = on_result, .arg = &dr, .seed = seed};
    int rc = mw_delivery_create(&loop, &cfg.receivers, &opts, &dr.delivery, err, sizeof err);
    mw_config_free(drive_table, &cfg); /* delivery copied what it needs */
    if (rc) {
        fprintf(stderr, "mw-alert-drive: %s\n", err);
        json_decref(notes);
        return 2;
    }
    dr.n_notes = json_array_size(notes);
    dr.notes = mw_calloc(dr.n_notes ? dr.n_notes : 1, sizeof *dr.notes);
    dr.start_ms = uv_now(&loop);
    for (size_t i = 0; i < dr.n_notes; i++) {
        if (build_note(&dr.notes[i], json_array_get(notes, i), (int)i) != 0) {
            fprintf(stderr, "mw-alert-drive: notification %zu: needs group_key and receiver\n", i);
            return 2;
        }
        uv_timer_init(&loop, &dr.notes[i].timer);
        dr.notes[i].timer.data = &dr.notes[i];
        uv_timer_start(&dr.notes[i].timer, on_submit_time, dr.notes[i].at_ms, 0);
        dr.n_unsubmitted++;
    }
    uv_timer_init(&loop, &dr.deadline);
    dr.deadline.data = &dr;
    uv_timer_start(&dr.deadline, on_deadline, deadline_ms, 0);
    if (dr.n_notes == 0)
        emit_counters_and_close(&dr);

    uv_run(&loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(&loop);
    for (size_t i = 0; i < dr.n_notes; i++)
        free_note(&dr.notes[i]);
    mw_free(dr.notes);
    json_decref(notes);
    if (close_rc != 0) {
        fprintf(stderr, "mw-alert-drive: handles left open at exit\n");
        return 1;
    }
    return 0;
}
