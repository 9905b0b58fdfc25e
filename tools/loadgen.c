/*
 * loadgen.c — modelwatch-loadgen, a synthetic model server that captures predictions through
 * libmodelwatch exactly as a real one would.
 *
 * It spreads N events round-robin over the given models and over W consecutive event-time
 * windows, with 10 numeric and 2 categorical features, a score, latencies from a log-normal
 * distribution and a configurable error share, and prints what it sent as JSON: the exact
 * count per (model, version, window start). Tests compare that with what the aggregator
 * computed. The library never blocks; when the agent is not yet connected or momentarily full,
 * loadgen retries the same event after a short pause (a real model server would count the drop
 * instead), unless --no-retry is given.
 *
 * With --junk N and --oversize N it also sends, over a raw nanomsg socket, N random byte strings
 * and N messages larger than any agent accepts, to prove the agent drops and counts them.
 */
#include "modelwatch.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_MODELS 16
#define MAX_WINDOWS 2048

struct options {
    const char *endpoint;
    const char *models[MAX_MODELS];
    size_t n_models;
    long long events;
    long windows;
    long long window_ms;
    long long start_ms;
    double error_share;
    double rate;
    int retry;
    unsigned seed;
    long long junk;
    long long oversize;
    long long oversize_bytes;
    const char *dump_csv;
    double shift;
    const char *shift_feature; /* NULL: --shift moves every numeric feature */
    double labels;
    int in_order;
    double latency_scale;
    const char *slow[MAX_MODELS]; /* models (NAME or NAME:VERSION) --latency-scale applies to */
    size_t n_slow;
    const char *id_prefix;    /* NULL: prediction ids are <model>-<i> */
    long long label_delay_ms; /* labels' event time after their prediction's; -1: now */
    int realistic;            /* --mix realistic */
};

/* Longest --id-prefix: the id "<prefix>-<i>" must fit the 48 bytes it is formatted into. */
#define MAX_ID_PREFIX 24

static void usage(FILE *to)
{
    fprintf(to,
            "usage: modelwatch-loadgen --endpoint ADDR --model NAME[:VERSION] [--model ...]\n"
            "         [--events N] [--windows W] [--window-ms MS] [--start-ms MS]\n"
            "         [--error-share F] [--rate EVENTS_PER_S] [--seed S] [--no-retry]\n"
            "         [--junk N] [--oversize N] [--oversize-bytes BYTES]\n"
            "         [--shift X [--shift-feature NAME]] [--dump-csv FILE] [--labels F]\n"
            "         [--in-order] [--latency-scale F [--slow MODEL[:VERSION]]...]\n"
            "         [--id-prefix TEXT] [--label-delay-ms MS] [--mix uniform|realistic]\n"
            "--shift adds X to every numeric feature, or only to --shift-feature's (to make\n"
            "drift); --latency-scale multiplies latencies, of the --slow models only when any\n"
            "is named (to make a regression); --in-order sends the windows one after the other\n"
            "(event times never go back by more than a second) instead of round-robin over them,\n"
            "so a long replay stays within the aggregator's out-of-orderness.\n"
            "--id-prefix names the predictions TEXT-<i> instead of <model>-<i>, so that runs\n"
            "sending one after the other (or side by side) never reuse an id.\n"
            "--label-delay-ms gives each label the event time of its prediction plus MS instead\n"
            "of now: a replay's labels arrive that long after their predictions, as ground truth\n"
            "does, and count in the performance windows of that time.\n"
            "--mix realistic draws features as tabular data holds them (ages, counts, days and\n"
            "months as integers, amounts in cents or hundreds, ratios and minutes to one or two\n"
            "decimals, the score as a float32) instead of uniform doubles of 24 random bits.\n"
            "--dump-csv writes every\n"
            "event sent as a CSV row (the reference data for a profile, or a test's oracle);\n"
            "--labels F sends a ground-truth label (\"1\" with probability = score, else \"0\")\n"
            "for a share F of the events: one in ten before its prediction, the rest after all.\n"
            "Sends N events spread over the models and W event-time windows; prints the exact\n"
            "counts sent per model, version and window as JSON.\n");
}

static int parse_ll(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *text, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"model", required_argument, NULL, 'm'},
                                         {"events", required_argument, NULL, 'n'},
                                         {"windows", required_argument, NULL, 'w'},
                                         {"window-ms", required_argument, NULL, 'W'},
                                         {"start-ms", required_argument, NULL, 's'},
                                         {"error-share", required_argument, NULL, 'E'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"no-retry", no_argument, NULL, 'R'},
                                         {"junk", required_argument, NULL, 'J'},
                                         {"oversize", required_argument, NULL, 'O'},
                                         {"oversize-bytes", required_argument, NULL, 'B'},
                                         {"dump-csv", required_argument, NULL, 'D'},
                                         {"shift", required_argument, NULL, 'X'},
                                         {"labels", required_argument, NULL, 'L'},
                                         {"shift-feature", required_argument, NULL, 'F'},
                                         {"in-order", no_argument, NULL, 'I'},
                                         {"latency-scale", required_argument, NULL, 'T'},
                                         {"slow", required_argument, NULL, 'Z'},
                                         {"id-prefix", required_argument, NULL, 'P'},
                                         {"label-delay-ms", required_argument, NULL, 'Y'},
                                         {"mix", required_argument, NULL, 'M'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long long v = 0;
    *o = (struct options){.events = 10000,
                          .windows = 1,
                          .window_ms = 60000,
                          .retry = 1,
                          .seed = 1,
                          .latency_scale = 1,
                          .label_delay_ms = -1,
                          .oversize_bytes = 1 << 20};
    int c;
    while ((c = getopt_long(argc, argv, "e:m:n:w:W:s:E:r:S:RJ:O:B:D:X:L:F:IT:Z:P:Y:M:h", opts,
                            NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'e':
            o->endpoint = optarg;
            break;
        case 'm':
            bad = o->n_models == MAX_MODELS;
            if (!bad)
                o->models[o->n_models++] = optarg;
            break;
        case 'n':
            bad = parse_ll(optarg, 0, 1LL << 40, &o->events);
            break;
        case 'w':
            bad = parse_ll(optarg, 1, MAX_WINDOWS, &v);
            o->windows = (long)v;
            break;
        case 'W':
            bad = parse_ll(optarg, 1000, 86400000, &o->window_ms);
            break;
        case 's':
            bad = parse_ll(optarg, 0, 1LL << 50, &o->start_ms);
            break;
        case 'E':
            bad = parse_double(optarg, 0, 1, &o->error_share);
            break;
        case 'r':
            bad = parse_double(optarg, 0, 1e9, &o->rate);
            break;
        case 'S':
            bad = parse_ll(optarg, 0, 1LL << 31, &v);
            o->seed = (unsigned)v;
            break;
        case 'R':
            o->retry = 0;
            break;
        case 'J':
            bad = parse_ll(optarg, 0, 1LL << 30, &o->junk);
            break;
        case 'O':
            bad = parse_ll(optarg, 0, 1LL << 30, &o->oversize);
            break;
        case 'B':
            bad = parse_ll(optarg, 1, 1LL << 28, &o->oversize_bytes);
            break;
        case 'D':
            o->dump_csv = optarg;
            break;
        case 'X':
            bad = parse_double(optarg, -1e9, 1e9, &o->shift);
            break;
        case 'L':
            bad = parse_double(optarg, 0, 1, &o->labels);
            break;
        case 'F':
            o->shift_feature = optarg;
            break;
        case 'I':
            o->in_order = 1;
            break;
        case 'T':
            bad = parse_double(optarg, 0.001, 1e6, &o->latency_scale);
            break;
        case 'Z':
            bad = o->n_slow == MAX_MODELS;
            if (!bad)
                o->slow[o->n_slow++] = optarg;
            break;
        case 'P':
            bad = optarg[0] == '\0' || strlen(optarg) > MAX_ID_PREFIX;
            o->id_prefix = optarg;
            break;
        case 'Y':
            bad = parse_ll(optarg, 0, 1LL << 40, &o->label_delay_ms);
            break;
        case 'M':
            o->realistic = strcmp(optarg, "realistic") == 0;
            bad = !o->realistic && strcmp(optarg, "uniform") != 0;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "modelwatch-loadgen: bad value for option -%c\n", c);
            return -1;
        }
    }
    if (!o->endpoint || o->n_models == 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Whether --latency-scale applies to model `name` version `version`. */
static int is_slow(const struct options *o, const char *name, const char *version)
{
    if (o->n_slow == 0)
        return 1;
    for (size_t i = 0; i < o->n_slow; i++) {
        const char *colon = strchr(o->slow[i], ':');
        size_t len = colon ? (size_t)(colon - o->slow[i]) : strlen(o->slow[i]);
        if (strlen(name) == len && strncmp(o->slow[i], name, len) == 0 &&
            (!colon || strcmp(colon + 1, version) == 0))
            return 1;
    }
    return 0;
}

static double uniform(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffffff) / 16777216.0;
}

/* Numeric feature k of --mix realistic: what a churn model's table holds, with as many
 * significant digits as such data has. u is uniform in [0, 1). */
static double realistic_feature(int k, double u)
{
    switch (k) {
    case 0:
        return floor(18 + u * 72); /* age in years */
    case 1:
        return floor(exp(9.5 + u * 2.0) / 100) * 100; /* yearly income, in hundreds */
    case 2:
        return floor(u * 120); /* tenure in months */
    case 3:
        return floor(u * 250000) / 100; /* balance, in cents */
    case 4:
        return floor(1 + u * 4); /* products held */
    case 5:
        return floor(u * 100) / 100; /* utilisation ratio, two decimals */
    case 6:
        return floor(u * u * 365); /* days since the last login */
    case 7:
        return floor(u * u * u * 12); /* support tickets this year */
    case 8:
        return floor(u * 900) / 10; /* average session, in minutes to one decimal */
    default:
        return floor(u * 5) * 5; /* discount, in steps of 5 % */
    }
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send one event, retrying while the agent is absent or full when asked to. */
static int send_event(mw_client *client, const struct mw_event *ev, int retry)
{
    for (int attempt = 0;; attempt++) {
        int rc = mw_capture(client, ev);
        if (rc != MW_EAGAIN || !retry || attempt > 200000)
            return rc;
        sleep_us(attempt < 100 ? 50 : 1000);
    }
}

/* Send `n` messages of `len(i)` bytes through a raw PUSH socket, waiting while not connected.
 * Returns how many were handed over. */
static long long send_raw(const char *endpoint, long long n, long long fixed_len, unsigned *rng)
{
    int sock = nn_socket(AF_SP, NN_PUSH);
    if (sock < 0 || nn_connect(sock, endpoint) < 0)
        return 0;
    size_t cap = fixed_len > 0 ? (size_t)fixed_len : 512;
    unsigned char *buf = malloc(cap);
    long long sent = 0;
    for (long long i = 0; i < n && buf; i++) {
        size_t len = fixed_len > 0 ? cap : (size_t)(uniform(rng) * 512.0);
        for (size_t k = 0; k < len; k++)
            buf[k] = (unsigned char)(uniform(rng) * 256.0);
        for (int attempt = 0; attempt < 100000; attempt++) {
            if (nn_send(sock, buf, len, NN_DONTWAIT) >= 0) {
                sent++;
                break;
            }
            if (errno != EAGAIN)
                break;
            sleep_us(100);
        }
    }
    sleep_us(500000); /* let nanomsg hand the queue over before closing */
    free(buf);
    nn_close(sock);
    return sent;
}

/* Whether event i gets a label, and its label: "1" with probability = score. */
static bool labelled(const struct options *o, long long i)
{
    return (double)(i % 1000) < o->labels * 1000.0;
}

static const char *label_of(long long i, double score)
{
    unsigned state = (unsigned)i * 2654435761u + 7u;
    return uniform(&state) < score ? "1" : "0";
}

/* Send the label of `ev`, known `delay_ms` after its event time (now when delay_ms < 0). */
static int send_label(mw_client *client, const struct mw_event *ev, const char *label,
                      long long delay_ms, int retry)
{
    struct mw_feedback_options when = {.event_time_ms =
                                           delay_ms < 0 ? 0 : ev->event_time_ms + delay_ms};
    for (int attempt = 0;; attempt++) {
        int rc = mw_feedback_ex(client, ev->model, ev->version, ev->prediction_id, label, &when);
        if (rc != MW_EAGAIN || !retry || attempt > 200000)
            return rc;
        sleep_us(attempt < 100 ? 50 : 1000);
    }
}

/* One CSV row per event sent, numbers printed so they read back exactly. */
static void dump_row(FILE *f, const struct mw_event *ev, const char *label)
{
    fprintf(f, "%s,%s,%s", ev->model, ev->version, ev->prediction_id);
    for (size_t k = 0; k < ev->n_features; k++) {
        if (ev->features[k].kind == MW_FEATURE_NUMERIC)
            fprintf(f, ",%.17g", ev->features[k].numeric);
        else
            fprintf(f, ",%s", ev->features[k].categorical);
    }
    fprintf(f, ",%.17g,%s,%" PRIu64 ",%s\n", ev->score, label ? label : "", ev->latency_us,
            ev->status == MW_STATUS_ERROR ? "error" : "ok");
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (o.start_ms == 0)
        o.start_ms = (now_ms() / o.window_ms) * o.window_ms;
    mw_client *client = NULL;
    int rc = mw_client_open(o.endpoint, &client);
    if (rc) {
        fprintf(stderr, "modelwatch-loadgen: cannot open %s: %s\n", o.endpoint, mw_strerror(rc));
        return 1;
    }
    static long long sent[MAX_MODELS][MAX_WINDOWS];
    long long failed = 0, labels_sent = 0;
    double *scores = o.labels > 0 ? calloc((size_t)o.events + 1, sizeof *scores) : NULL;
    int64_t *event_times = o.labels > 0 ? calloc((size_t)o.events + 1, sizeof *event_times) : NULL;
    if (o.labels > 0 && (!scores || !event_times)) {
        fprintf(stderr, "modelwatch-loadgen: out of memory for %lld labels\n", o.events);
        return 1;
    }
    unsigned rng = o.seed;
    char names[MAX_MODELS][64], versions[MAX_MODELS][64];
    for (size_t m = 0; m < o.n_models; m++) {
        const char *colon = strchr(o.models[m], ':');
        snprintf(names[m], sizeof names[m], "%.*s",
                 (int)(colon ? colon - o.models[m] : (long)strlen(o.models[m])), o.models[m]);
        snprintf(versions[m], sizeof versions[m], "%s", colon ? colon + 1 : "v1");
    }
    FILE *dump = NULL;
    if (o.dump_csv && !(dump = fopen(o.dump_csv, "w"))) {
        fprintf(stderr, "modelwatch-loadgen: cannot write %s: %s\n", o.dump_csv, strerror(errno));
        return 1;
    }
    if (dump)
        fprintf(dump, "model,version,prediction_id,f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,country,plan,"
                      "prediction,label,latency_us,status\n");
    static const char *const countries[] = {"fr", "de", "us", "jp", "br"};
    static const char *const plans[] = {"free", "pro", "team"};
    for (long long i = 0; i < o.events; i++) {
        size_t m = (size_t)(i % (long long)o.n_models);
        long w = o.in_order ? (long)(i * o.windows / (o.events ? o.events : 1))
                            : (long)((i / (long long)o.n_models) % o.windows);
        char id[48];
        snprintf(id, sizeof id, "%s-%lld", o.id_prefix ? o.id_prefix : names[m], i);
        struct mw_feature f[12];
        static const char *const numeric_names[] = {"f0", "f1", "f2", "f3", "f4",
                                                    "f5", "f6", "f7", "f8", "f9"};
        for (int k = 0; k < 10; k++) {
            double u = uniform(&rng);
            f[k] = (struct mw_feature)MW_NUMERIC(
                numeric_names[k],
                (o.realistic ? realistic_feature(k, u) : u * 100.0 + k) +
                    (!o.shift_feature || strcmp(o.shift_feature, numeric_names[k]) == 0 ? o.shift
                                                                                        : 0));
        }
        f[10] = (struct mw_feature)MW_CATEGORICAL("country", countries[i % 5]);
        f[11] = (struct mw_feature)MW_CATEGORICAL("plan", plans[i % 3]);
        int is_error = uniform(&rng) < o.error_share;
        double score = uniform(&rng);
        if (o.realistic)
            score = (double)(float)score; /* a model's float32 output */
        struct mw_event ev = {
            .model = names[m],
            .version = versions[m],
            .prediction_id = id,
            .event_time_ms = o.start_ms + w * o.window_ms + (long long)(uniform(&rng) * 1000),
            .latency_us = (uint64_t)(exp(7.0 + uniform(&rng) * 2.0) *
                                     (is_slow(&o, names[m], versions[m]) ? o.latency_scale : 1.0)),
            .status = is_error ? MW_STATUS_ERROR : MW_STATUS_OK,
            .error_code = is_error ? "timeout" : NULL,
            .features = f,
            .n_features = 12,
            .predicted_class = score >= 0.5 ? "1" : "0",
            .has_score = 1,
            .score = score};
        const char *label = labelled(&o, i) ? label_of(i, score) : NULL;
        if (scores) {
            scores[i] = score;
            event_times[i] = ev.event_time_ms;
        }
        /* One label in ten arrives before its prediction, as late joins must handle. */
        if (label && i % 10 == 0 && send_label(client, &ev, label, o.label_delay_ms, o.retry) == 0)
            labels_sent++;
        if (send_event(client, &ev, o.retry) == 0) {
            sent[m][w]++;
            if (dump)
                dump_row(dump, &ev, label);
        } else {
            failed++;
        }
        if (o.rate > 0)
            sleep_us((long)(1e6 / o.rate));
    }
    for (long long i = 0; scores && i < o.events; i++) {
        if (!labelled(&o, i) || i % 10 == 0)
            continue;
        size_t m = (size_t)(i % (long long)o.n_models);
        char id[48];
        snprintf(id, sizeof id, "%s-%lld", o.id_prefix ? o.id_prefix : names[m], i);
        struct mw_event ev = {.model = names[m], .version = versions[m], .prediction_id = id};
        ev.event_time_ms = event_times[i];
        if (send_label(client, &ev, label_of(i, scores[i]), o.label_delay_ms, o.retry) == 0)
            labels_sent++;
    }
    free(scores);
    free(event_times);
    /* Hand everything buffered to the transport, so that the counts printed below are final
     * (close would count what it cannot hand over after they are printed). */
    int flush_rc = mw_client_flush(client, 30000);
    /* nanomsg sends in the background: give it time to hand the queue to the agent. */
    sleep_us(500000);
    long long junk_sent = send_raw(o.endpoint, o.junk, 0, &rng);
    long long oversize_sent = send_raw(o.endpoint, o.oversize, o.oversize_bytes, &rng);
    printf("{\"sent\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"failed\": %lld, "
           "\"flushed\": %s, \"junk_sent\": %lld, \"oversize_sent\": %lld, "
           "\"labels_sent\": %lld, \"windows\": [",
           mw_client_sent(client), mw_client_dropped(client), failed,
           flush_rc == 0 ? "true" : "false", junk_sent, oversize_sent, labels_sent);
    const char *sep = "";
    for (size_t m = 0; m < o.n_models; m++) {
        for (long w = 0; w < o.windows; w++) {
            if (!sent[m][w])
                continue;
            printf(
                "%s{\"model\": \"%s\", \"version\": \"%s\", \"start_ms\": %lld, \"count\": %lld}",
                sep, names[m], versions[m], o.start_ms + w * o.window_ms, sent[m][w]);
            sep = ", ";
        }
    }
    printf("]}\n");
    if (dump)
        fclose(dump);
    mw_client_close(client);
    return failed ? 1 : 0;
}
