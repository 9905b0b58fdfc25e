/*
 * delivery_throughput.c — how many notifications per second the alert delivery code (receivers,
 * queues, libcurl's multi interface on the libuv loop) gets to a receiver, and what each costs.
 *
 *   mw-bench-delivery [--notifications N] [--alerts K] [--receiver pagerduty|webhook]
 *                     [--in-flight M]
 *
 * A child process serves the receiver's side on a loopback port with the project's HTTP server
 * (202 for PagerDuty's /v2/enqueue, 200 for the webhook), so what is measured is the real
 * request path: encode at submit, queue, send, parse the answer, report the result. N
 * notifications of distinct groups, each carrying K alerts with labels, annotations and values as
 * a page has them, are submitted at once; the run ends when every result is in.
 *
 * Reported (one JSON line): notifications delivered, wall seconds, notifications per second, CPU
 * microseconds per notification in the sending process and in the receiving one, and the mean
 * encoded body size. The receiving side is the project's own server, not PagerDuty: its share
 * only says how much of the wall time the stand-in took.
 */
#include "alert/delivery.h"
#include "alert/receiver.h"

#include "alloc.h"
#include "config.h"
#include "error.h"
#include "http_server.h"
#include "log.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LABELS_PER_ALERT 8
#define ANNOTATIONS_PER_ALERT 3
#define VALUES_PER_ALERT 4

/* ---- the receiving side (child process) --------------------------------------------------- */

struct sink {
    uint64_t requests;
    uint64_t body_bytes;
    uv_signal_t sigterm;
    struct mw_http_server *server;
};

static void on_enqueue(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct sink *s = arg;
    s->requests++;
    s->body_bytes += req->body_len;
    static const char ok[] = "{\"status\":\"success\",\"message\":\"Event processed\"}";
    mw_http_respond(ex, 202, "application/json", ok, sizeof ok - 1);
}

static void on_hook(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct sink *s = arg;
    s->requests++;
    s->body_bytes += req->body_len;
    mw_http_respond(ex, 200, "text/plain", "ok", 2);
}

static void on_sink_sigterm(uv_signal_t *h, int signum)
{
    (void)signum;
    struct sink *s = h->data;
    fprintf(stderr, "mw-bench-delivery: receiver took %" PRIu64 " requests, %" PRIu64 " bytes\n",
            s->requests, s->body_bytes);
    uv_signal_stop(h);
    uv_close((uv_handle_t *)h, NULL);
    mw_http_server_destroy(s->server);
}

/* Serves until SIGTERM; writes its port to `port_fd` once listening. */
static int run_sink(int port_fd)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sink s = {0};
    struct mw_http_server_options opts = {.host = "127.0.0.1", .max_connections = 1024,
                                          .max_connections_per_client = 1024};
    if (mw_http_server_create(&loop, &opts, &s.server) != 0)
        return 1;
    mw_http_server_route(s.server, "POST", "/v2/enqueue", false, on_enqueue, &s);
    mw_http_server_route(s.server, "POST", "/hook", false, on_hook, &s);
    uv_signal_init(&loop, &s.sigterm);
    s.sigterm.data = &s;
    uv_signal_start(&s.sigterm, on_sink_sigterm, SIGTERM);
    int port = mw_http_server_port(s.server);
    if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port)
        return 1;
    close(port_fd);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}

/* ---- the sending side ----------------------------------------------------------------------- */

struct bench_config {
    struct mw_cfg_list receivers;
};

static const struct mw_cfg_field bench_table[] = {
    MW_RECEIVERS_CFG_FIELD(struct bench_config, receivers),
    MW_CFG_END,
};

struct run {
    size_t n, done, delivered;
    struct mw_delivery *delivery;
    double wall_start, wall_end;
};

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void on_closed(void *arg)
{
    (void)arg;
}

static void on_result(const struct mw_delivery_result *r, void *arg)
{
    struct run *run = arg;
    run->done++;
    run->delivered += r->outcome == MW_DELIVERY_DELIVERED;
    if (r->outcome != MW_DELIVERY_DELIVERED && run->done - run->delivered <= 3)
        fprintf(stderr, "mw-bench-delivery: %s: %s (%s)\n", r->group_key,
                mw_delivery_outcome_name(r->outcome), r->reason);
    if (run->done == run->n) {
        run->wall_end = wall_s();
        mw_delivery_shutdown(run->delivery, 1000, on_closed, run);
    }
}

/* The storage behind one notification: every string it points at. */
struct page {
    char group_key[64], model[32], version[16], feature[32];
    struct mw_notify_label group_labels[2];
    struct mw_notify_label labels[16][LABELS_PER_ALERT];
    struct mw_notify_label annotations[16][ANNOTATIONS_PER_ALERT];
    struct mw_notify_value values[16][VALUES_PER_ALERT];
    struct mw_notify_alert alerts[16];
    struct mw_notify_group group;
};

static void build_page(struct page *p, size_t i, size_t n_alerts, const char *receiver)
{
    snprintf(p->group_key, sizeof p->group_key, "{}/{team=\"ml\"}:{model=\"model-%zu\"}", i);
    snprintf(p->model, sizeof p->model, "model-%zu", i);
    snprintf(p->version, sizeof p->version, "v%zu", i % 7);
    p->group_labels[0] = (struct mw_notify_label){"alertname", "ModelDrift"};
    p->group_labels[1] = (struct mw_notify_label){"model", p->model};
    for (size_t a = 0; a < n_alerts; a++) {
        struct mw_notify_label *l = p->labels[a];
        l[0] = (struct mw_notify_label){"alertname", "ModelDrift"};
        l[1] = (struct mw_notify_label){"model", p->model};
        l[2] = (struct mw_notify_label){"version", p->version};
        l[3] = (struct mw_notify_label){"namespace", "ml-serving"};
        l[4] = (struct mw_notify_label){"signal", "psi"};
        l[5] = (struct mw_notify_label){"severity", "critical"};
        l[6] = (struct mw_notify_label){"feature", a % 2 ? "income" : "age"};
        l[7] = (struct mw_notify_label){"team", "ml"};
        struct mw_notify_label *an = p->annotations[a];
        an[0] = (struct mw_notify_label){"summary", "Feature drifted: PSI 0.41 over the last hour "
                                                    "against the reference profile"};
        an[1] = (struct mw_notify_label){"description",
                                         "PSI 0.41 (threshold 0.25) on 12,400 values; KS p-value "
                                         "3e-9; v3 carries 62 % of traffic"};
        an[2] = (struct mw_notify_label){"runbook_url",
                                         "https://runbooks.example.com/deploy/runbooks/drift.md"};
        struct mw_notify_value *v = p->values[a];
        v[0] = (struct mw_notify_value){.name = "value", .value = 0.41};
        v[1] = (struct mw_notify_value){.name = "threshold", .value = 0.25};
        v[2] = (struct mw_notify_value){.name = "samples", .value = 12400};
        v[3] = (struct mw_notify_value){.name = "ks_p_value", .value = 3e-9};
        p->alerts[a] = (struct mw_notify_alert){
            .status = MW_NOTIFY_FIRING,
            .labels = {l, LABELS_PER_ALERT},
            .annotations = {an, ANNOTATIONS_PER_ALERT},
            .values = v,
            .n_values = VALUES_PER_ALERT,
            .starts_at_ms = 1764547200000 + (int64_t)i,
            .generator_url = "https://modelwatch.example.com/api/v1/models/m/drift",
        };
    }
    p->group = (struct mw_notify_group){
        .group_key = p->group_key,
        .receiver = receiver,
        .status = MW_NOTIFY_FIRING,
        .group_labels = {p->group_labels, 2},
        .common_labels = {p->group_labels, 2},
        .common_annotations = {NULL, 0},
        .alerts = p->alerts,
        .n_alerts = n_alerts,
        .external_url = "https://modelwatch.example.com",
    };
}

static int write_config(const char *dir, int port, const char *type, size_t queue, int in_flight,
                        char *path, size_t size)
{
    char key_path[512];
    snprintf(key_path, sizeof key_path, "%s/routing-key", dir);
    FILE *k = fopen(key_path, "w");
    if (!k)
        return MW_ESYS;
    fputs("R0123456789abcdef0123456789abcdef\n", k);
    fclose(k);
    snprintf(path, size, "%s/receivers.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return MW_ESYS;
    if (strcmp(type, "pagerduty") == 0)
        fprintf(f, "receivers:\n  - name: bench\n    type: pagerduty\n"
                   "    url: http://127.0.0.1:%d\n    routing_key_file: %s\n", port, key_path);
    else
        fprintf(f, "receivers:\n  - name: bench\n    type: webhook\n"
                   "    url: http://127.0.0.1:%d/hook\n", port);
    fprintf(f, "    queue_max: %zu\n    queue_max_bytes: 4GiB\n    max_in_flight: %d\n", queue,
            in_flight);
    fclose(f);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: mw-bench-delivery [--notifications N] [--alerts K (1-16)] "
                    "[--receiver pagerduty|webhook] [--in-flight M (1-256)]\n");
    return 2;
}

static pid_t start_sink(int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(run_sink(fds[1]));
    }
    close(fds[1]);
    ssize_t got = pid > 0 ? read(fds[0], port, sizeof *port) : -1;
    close(fds[0]);
    return got == (ssize_t)sizeof *port ? pid : -1;
}

int main(int argc, char **argv)
{
    size_t n = 20000, n_alerts = 3;
    int in_flight = 16;
    const char *type = "pagerduty";
    static const struct option longopts[] = {
        {"notifications", required_argument, NULL, 'n'}, {"alerts", required_argument, NULL, 'a'},
        {"receiver", required_argument, NULL, 'r'},      {"in-flight", required_argument, NULL, 'f'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "n:a:r:f:", longopts, NULL)) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'a')
            n_alerts = strtoull(optarg, NULL, 10);
        else if (opt == 'r')
            type = optarg;
        else if (opt == 'f')
            in_flight = atoi(optarg);
        else
            return usage();
    }
    if (n == 0 || n > 1000000 || n_alerts == 0 || n_alerts > 16 || in_flight < 1 ||
        in_flight > 256 || (strcmp(type, "pagerduty") != 0 && strcmp(type, "webhook") != 0))
        return usage();
    mw_log_set_level(MW_LOG_LEVEL_WARN);

    int port = 0;
    pid_t sink = start_sink(&port);
    if (sink < 0) {
        fprintf(stderr, "mw-bench-delivery: cannot start the receiving side\n");
        return 1;
    }
    char dir[] = "/tmp/mw-bench-delivery-XXXXXX", config_path[600];
    struct bench_config cfg;
    struct mw_cfg_error cerr;
    memset(&cfg, 0, sizeof cfg);
    if (!mkdtemp(dir) || write_config(dir, port, type, n, in_flight, config_path,
                                      sizeof config_path) != 0 ||
        mw_config_load_file(bench_table, &cfg, config_path, &cerr) != 0) {
        fprintf(stderr, "mw-bench-delivery: config: %s\n", cerr.message);
        kill(sink, SIGTERM);
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct run run = {.n = n};
    char err[512] = "";
    struct mw_delivery_options opts = {.on_result = on_result, .arg = &run, .seed = 1};
    if (mw_delivery_create(&loop, &cfg.receivers, &opts, &run.delivery, err, sizeof err) != 0) {
        fprintf(stderr, "mw-bench-delivery: %s\n", err);
        kill(sink, SIGTERM);
        return 1;
    }
    mw_config_free(bench_table, &cfg);

    struct page *pages = mw_calloc(n, sizeof *pages);
    if (!pages)
        return 1;
    for (size_t i = 0; i < n; i++)
        build_page(&pages[i], i, n_alerts, "bench");
    double cpu_start = cpu_s(RUSAGE_SELF);
    run.wall_start = wall_s();
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        if (mw_delivery_submit(run.delivery, &pages[i].group, NULL, &id) != 0)
            refused++;
    }
    run.n = n - refused; /* results come from the loop, never from within submit */
    if (run.n == 0)
        mw_delivery_shutdown(run.delivery, 1000, on_closed, &run);
    uv_run(&loop, UV_RUN_DEFAULT);
    double cpu_send = cpu_s(RUSAGE_SELF) - cpu_start;
    uv_loop_close(&loop);
    mw_free(pages);

    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
    double cpu_receive = cpu_s(RUSAGE_CHILDREN);
    double wall = run.wall_end - run.wall_start;
    printf("{\"receiver\": \"%s\", \"notifications\": %zu, \"alerts_per_notification\": %zu, "
           "\"in_flight\": %d, \"delivered\": %zu, \"refused_at_submit\": %zu, \"wall_s\": %.3f, "
           "\"notifications_per_s\": %.0f, \"send_cpu_us_per_notification\": %.1f, "
           "\"receive_cpu_us_per_notification\": %.1f}\n",
           type, n, n_alerts, in_flight, run.delivered, refused, wall,
           wall > 0 ? (double)run.delivered / wall : 0, cpu_send / (double)n * 1e6,
           cpu_receive / (double)n * 1e6);
    char cleanup[700];
    snprintf(cleanup, sizeof cleanup, "%s/routing-key", dir);
    unlink(cleanup);
    unlink(config_path);
    rmdir(dir);
    return run.delivered == n ? 0 : 1;
}
