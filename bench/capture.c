/*
 * capture.c — mw-bench-capture: what one mw_capture() call costs the model's thread.
 *
 *     build/bench/mw-bench-capture [--calls N] [--rate CALLS_PER_S]
 *                                  [--mode buffered|unbuffered|both] [--no-callgrind]
 *                                  [--sample-rate R] [--count-bucket MS]
 *
 * Each call captures one prediction with 10 numeric and 2 categorical features, a class, a score
 * and a latency, as modelwatch-loadgen does; prediction ids are made before the clock starts.
 * An in-process nanomsg PULL socket stands in for the agent (a thread receives, unwraps
 * ClientBatches and counts), so the client is connected and its buffer drains as it would.
 * Calls are paced at --rate (busy-waiting between calls; 0 = back to back) and each is timed
 * with two clock_gettime(CLOCK_MONOTONIC) calls, whose own cost is measured and printed.
 * Reports p50/p90/p99/p99.9/max in ns per call, for the default (buffered) client and the
 * unbuffered one (one nanomsg message per call).
 *
 * Then, unless --no-callgrind or valgrind is missing, it runs itself under
 * `valgrind --tool=callgrind --fair-sched=yes --toggle-collect=mw_capture` (100,000
 * back-to-back calls per mode, with a buffer large enough that none is refused) and prints the
 * instructions executed inside mw_capture per call, everything it calls included: a number that
 * does not depend on the machine's load.
 *
 * With --sample-rate R the stand-in agent publishes the rule "every model at rate R" beside its
 * socket, as an agent does (common/sampling_rules.h): the buffered client then writes only the
 * head of an event the rate does not select, and the percentiles are reported for those calls
 * and for the selected ones apart. --sample-rate 0 makes every call an unselected one (what
 * callgrind then counts). The rules carry the count line of an agent's default (counters 60 s
 * wide, intake.count_at_source on), so the client counts an unselected event instead of writing
 * its head; --count-bucket 0 publishes the rules without it (the client writes heads).
 *
 * A benchmark reports numbers; it asserts nothing about time.
 */
#include "modelwatch.h"
#include "sampling_rules.h"

#include <errno.h>
#include <inttypes.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define VALGRIND "/usr/bin/valgrind"
#define CALLGRIND_CALLS 100000
#define WARMUP_CALLS 20000
#define ID_BYTES 32

struct options {
    long calls;
    double rate;
    int buffered, unbuffered;
    bool callgrind;
    bool child;         /* running under callgrind, started by ourselves */
    double sample_rate; /* < 0: no rules published */
    long count_bucket_ms; /* the count line of the published rules; 0: none */
};

struct receiver {
    int sock;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t messages; /* client messages, batches unwrapped */
    atomic_uint_fast64_t transport_messages;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Client messages in one nanomsg message: the entries of a ClientBatch (key 0x7a) but the
 * ClientStream that opens it (an entry whose ClientMessage starts with 0x1a), else 1. */
static uint64_t count_messages(const uint8_t *p, size_t n)
{
    uint64_t count = 0;
    size_t i = 0;
    while (n && p[0] == 0x7a && i < n) {
        if (p[i++] != 0x7a)
            return 1;
        uint64_t len = 0;
        for (unsigned shift = 0; i < n && shift < 64; shift += 7) {
            uint8_t b = p[i++];
            len |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
        }
        if (len > n - i)
            return 1;
        count += !(len > 0 && p[i] == 0x1a);
        i += (size_t)len;
    }
    return count ? count : 1;
}

static void *receive_main(void *arg)
{
    struct receiver *r = arg;
    while (!atomic_load(&r->stop)) {
        void *msg = NULL;
        int n = nn_recv(r->sock, &msg, NN_MSG, 0);
        if (n < 0)
            continue; /* NN_RCVTIMEO: look at `stop` again */
        atomic_fetch_add(&r->transport_messages, 1);
        atomic_fetch_add(&r->messages, count_messages(msg, (size_t)n));
        nn_freemsg(msg);
    }
    return NULL;
}

static int receiver_start(struct receiver *r, const char *endpoint)
{
    memset(r, 0, sizeof *r);
    int timeout_ms = 50;
    r->sock = nn_socket(AF_SP, NN_PULL);
    if (r->sock < 0 || nn_bind(r->sock, endpoint) < 0 ||
        nn_setsockopt(r->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof timeout_ms) < 0) {
        fprintf(stderr, "mw-bench-capture: cannot bind %s: %s\n", endpoint, nn_strerror(errno));
        return -1;
    }
    return pthread_create(&r->thread, NULL, receive_main, r);
}

static void receiver_stop(struct receiver *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    nn_close(r->sock);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t percentile(const uint32_t *sorted, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* Cost of the two clock reads around each call: the median of back-to-back pairs. */
static uint32_t timer_overhead_ns(void)
{
    enum { N = 100001 };
    static uint32_t d[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = now_ns();
        d[i] = (uint32_t)(now_ns() - t0);
    }
    qsort(d, N, sizeof d[0], cmp_u32);
    return d[N / 2];
}

struct workload {
    char (*ids)[ID_BYTES];
    struct mw_feature features[12];
    struct mw_event ev;
};

static void workload_init(struct workload *w, long calls)
{
    static const char *const numeric_names[] = {"f0", "f1", "f2", "f3", "f4",
                                                "f5", "f6", "f7", "f8", "f9"};
    w->ids = malloc((size_t)calls * ID_BYTES);
    if (!w->ids) {
        fprintf(stderr, "mw-bench-capture: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < calls; i++)
        snprintf(w->ids[i], ID_BYTES, "churn-%ld", i);
    for (int k = 0; k < 10; k++)
        w->features[k] = (struct mw_feature)MW_NUMERIC(numeric_names[k], 17.25 * (k + 1));
    w->features[10] = (struct mw_feature)MW_CATEGORICAL("country", "fr");
    w->features[11] = (struct mw_feature)MW_CATEGORICAL("plan", "pro");
    w->ev = (struct mw_event){.model = "churn",
                              .version = "v3",
                              .latency_us = 1830,
                              .status = MW_STATUS_OK,
                              .features = w->features,
                              .n_features = 12,
                              .predicted_class = "churn",
                              .has_score = 1,
                              .score = 0.91};
}

/* The file an agent writes beside its socket (common/sampling_rules.h): one "*" rule. */
static int publish_rules(const char *endpoint, double rate, long count_bucket_ms)
{
    char path[256];
    snprintf(path, sizeof path, "%s%s", endpoint + strlen("ipc://"), MW_SAMPLING_RULES_SUFFIX);
    const struct mw_sampling_rule every_model = {.name = "*", .rate = rate};
    if (mw_sampling_rules_write(path, &every_model, 1, count_bucket_ms) != 0) {
        fprintf(stderr, "mw-bench-capture: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Percentiles of the calls whose id the rate selects (`selected`) or not, apart. */
static void print_split(const uint32_t *lat, char (*ids)[ID_BYTES], long calls, double rate)
{
    for (int want = 0; want < 2; want++) {
        uint32_t *part = malloc((size_t)calls * sizeof *part);
        long n = 0;
        for (long i = 0; part && i < calls; i++)
            if ((mw_sampler_unit(ids[i]) < rate) == want)
                part[n++] = lat[i];
        if (n) {
            qsort(part, (size_t)n, sizeof part[0], cmp_u32);
            printf("           %s by the rate (%ld calls): p50 %" PRIu32 " ns, p90 %" PRIu32
                   " ns, p99 %" PRIu32 " ns, p99.9 %" PRIu32 " ns\n",
                   want ? "selected" : "not selected", n, percentile(part, n, 0.50),
                   percentile(part, n, 0.90), percentile(part, n, 0.99),
                   percentile(part, n, 0.999));
        }
        free(part);
    }
}

/* Wait for the connection to the receiver (it forms in the background), then capture one. */
static int wait_connected(mw_client *c, struct workload *w)
{
    w->ev.prediction_id = "warmup";
    if (mw_client_wait_ready(c, 10000) == 0) {
        for (int tries = 0; tries < 10000; tries++) {
            if (mw_capture(c, &w->ev) == 0) /* unbuffered: refused until nanomsg is ready */
                return 0;
            usleep(1000);
        }
    }
    fprintf(stderr, "mw-bench-capture: the client never connected\n");
    return -1;
}

static int run_mode(const char *endpoint, bool buffered, const struct options *o,
                    uint32_t overhead_ns)
{
    struct receiver r;
    if (receiver_start(&r, endpoint) != 0)
        return -1;
    if (o->sample_rate >= 0 && publish_rules(endpoint, o->sample_rate, o->count_bucket_ms) != 0)
        return -1;
    struct mw_client_options copts = {.unbuffered = !buffered};
    if (o->child)
        copts.buffer_bytes = 256u << 20; /* no refusal while valgrind serialises the threads */
    mw_client *c = NULL;
    int rc = mw_client_open_ex(endpoint, &copts, &c);
    if (rc) {
        fprintf(stderr, "mw-bench-capture: mw_client_open_ex: %s\n", mw_strerror(rc));
        return -1;
    }
    struct workload w;
    long calls = o->calls;
    workload_init(&w, calls);
    uint32_t *lat = malloc((size_t)calls * sizeof *lat);
    if (!lat || wait_connected(c, &w) != 0)
        return -1;
    if (!o->child) {
        for (long i = 0; i < WARMUP_CALLS; i++) {
            w.ev.prediction_id = w.ids[i % calls];
            mw_capture(c, &w.ev);
        }
        mw_client_flush(c, 5000);
    }
    uint64_t accepted_before = mw_client_sent(c), dropped_before = mw_client_dropped(c);
    uint64_t received_before = atomic_load(&r.messages);
    uint64_t transport_before = atomic_load(&r.transport_messages);
    uint64_t interval_ns = o->rate > 0 ? (uint64_t)(1e9 / o->rate) : 0;
    uint64_t start = now_ns(), next = start;
    for (long i = 0; i < calls; i++) {
        w.ev.prediction_id = w.ids[i];
        if (interval_ns) {
            while (now_ns() < next)
                ;
            next += interval_ns;
        }
        uint64_t t0 = now_ns();
        mw_capture(c, &w.ev);
        lat[i] = (uint32_t)(now_ns() - t0);
    }
    uint64_t elapsed = now_ns() - start;
    uint64_t accepted = mw_client_sent(c) - accepted_before;
    uint64_t refused = mw_client_dropped(c) - dropped_before;
    mw_client_flush(c, 5000);
    usleep(100000);
    uint64_t received = atomic_load(&r.messages) - received_before;
    uint64_t transport = atomic_load(&r.transport_messages) - transport_before;
    mw_client_close(c);
    receiver_stop(&r);
    if (o->child) {
        printf("accepted %" PRIu64 " refused %" PRIu64 "\n", accepted, refused);
    } else {
        if (o->sample_rate >= 0 && buffered)
            print_split(lat, w.ids, calls, o->sample_rate);
        qsort(lat, (size_t)calls, sizeof lat[0], cmp_u32);
        printf("%-10s %ld calls in %.3f s (%s): p50 %" PRIu32 " ns, p90 %" PRIu32
               " ns, p99 %" PRIu32 " ns, p99.9 %" PRIu32 " ns, max %" PRIu32 " ns\n",
               buffered ? "buffered" : "unbuffered", calls, (double)elapsed / 1e9,
               interval_ns ? "paced" : "back to back", percentile(lat, calls, 0.50),
               percentile(lat, calls, 0.90), percentile(lat, calls, 0.99),
               percentile(lat, calls, 0.999), lat[calls - 1]);
        printf("           accepted %" PRIu64 ", refused %" PRIu64 "; the receiver got %" PRIu64
               " messages in %" PRIu64 " nanomsg messages (timer pair overhead %" PRIu32
               " ns, included)\n",
               accepted, refused, received, transport, overhead_ns);
    }
    free(lat);
    free(w.ids);
    return 0;
}

/* Run ourselves under callgrind, collecting only inside mw_capture; print Ir per call. */
static void instructions_per_call(const char *self, const char *mode, double sample_rate,
                                  long count_bucket_ms)
{
    char out_file[128], calls[32], log_file[128], rate[32], bucket[32];
    snprintf(bucket, sizeof bucket, "%ld", count_bucket_ms);
    snprintf(rate, sizeof rate, "%.17g", sample_rate);
    snprintf(out_file, sizeof out_file, "/tmp/mw-bench-capture-%d.callgrind", (int)getpid());
    snprintf(log_file, sizeof log_file, "--log-file=/tmp/mw-bench-capture-%d.valgrind.log",
             (int)getpid());
    snprintf(calls, sizeof calls, "%d", CALLGRIND_CALLS);
    char out_arg[160];
    snprintf(out_arg, sizeof out_arg, "--callgrind-out-file=%s", out_file);
    /* --fair-sched: the receiving thread gets its turn, so no call is refused for a full pipe. */
    char *argv[] = {VALGRIND,
                    "--tool=callgrind",
                    "--fair-sched=yes",
                    "--toggle-collect=mw_capture",
                    out_arg,
                    log_file,
                    (char *)self,
                    "--child",
                    "--mode",
                    (char *)mode,
                    "--calls",
                    calls,
                    "--rate",
                    "0",
                    "--count-bucket",
                    bucket,
                    sample_rate >= 0 ? "--sample-rate" : NULL,
                    rate,
                    NULL};
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, VALGRIND, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        printf("callgrind: cannot start valgrind: %s\n", strerror(rc));
        return;
    }
    char child_out[256] = {0};
    FILE *f = fdopen(pipefd[0], "r");
    if (f) {
        if (!fgets(child_out, sizeof child_out, f))
            child_out[0] = '\0';
        fclose(f);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    unsigned long long accepted = 0, refused = 0, ir = 0;
    sscanf(child_out, "accepted %llu refused %llu", &accepted, &refused);
    FILE *cg = fopen(out_file, "r");
    char line[512];
    while (cg && fgets(line, sizeof line, cg)) {
        if (sscanf(line, "totals: %llu", &ir) == 1 || sscanf(line, "summary: %llu", &ir) == 1)
            break;
    }
    if (cg)
        fclose(cg);
    unlink(out_file);
    unlink(log_file + strlen("--log-file="));
    unsigned long long calls_made = accepted + refused;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !ir || !calls_made) {
        printf("callgrind (%s): no result (valgrind exit status %d)\n", mode, status);
        return;
    }
    printf("%-10s %llu instructions per mw_capture call (callgrind, %llu calls, %llu refused)\n",
           mode, ir / calls_made, calls_made, refused);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: mw-bench-capture [--calls N] [--rate CALLS_PER_S] "
                "[--mode buffered|unbuffered|both] [--no-callgrind] [--sample-rate R]\n"
                "       [--count-bucket MS]\n");
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .calls = 1000000, .rate = 200000, .buffered = 1, .unbuffered = 1, .callgrind = true,
        .sample_rate = -1, .count_bucket_ms = 60000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--calls") == 0 && v) {
            o->calls = strtol(v, &end, 10);
            i++;
            if (*end || o->calls < 1 || o->calls > 100000000)
                return -1;
        } else if (strcmp(a, "--rate") == 0 && v) {
            o->rate = strtod(v, &end);
            i++;
            if (*end || o->rate < 0)
                return -1;
        } else if (strcmp(a, "--mode") == 0 && v) {
            o->buffered = strcmp(v, "buffered") == 0 || strcmp(v, "both") == 0;
            o->unbuffered = strcmp(v, "unbuffered") == 0 || strcmp(v, "both") == 0;
            i++;
            if (!o->buffered && !o->unbuffered)
                return -1;
        } else if (strcmp(a, "--sample-rate") == 0 && v) {
            o->sample_rate = strtod(v, &end);
            i++;
            if (*end || !(o->sample_rate >= 0 && o->sample_rate <= 1))
                return -1;
        } else if (strcmp(a, "--count-bucket") == 0 && v) {
            o->count_bucket_ms = strtol(v, &end, 10);
            i++;
            if (*end || o->count_bucket_ms < 0 ||
                o->count_bucket_ms > MW_SAMPLING_COUNT_BUCKET_MAX_MS)
                return -1;
        } else if (strcmp(a, "--no-callgrind") == 0) {
            o->callgrind = false;
        } else if (strcmp(a, "--child") == 0) {
            o->child = true;
        } else if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/mw-bench-capture-%d.sock", (int)getpid());
    uint32_t overhead = o.child ? 0 : timer_overhead_ns();
    if (!o.child)
        printf("mw_capture, 10 numeric + 2 categorical features, %ld calls per mode, %.0f calls/s "
               "(0 = back to back)\n",
               o.calls, o.rate);
    if (o.child && o.rate > 0)
        o.rate = 0;
    int rc = 0;
    if (o.buffered)
        rc |= run_mode(endpoint, true, &o, overhead);
    if (o.unbuffered)
        rc |= run_mode(endpoint, false, &o, overhead);
    unlink(endpoint + strlen("ipc://"));
    char rules[160];
    snprintf(rules, sizeof rules, "%s%s", endpoint + strlen("ipc://"), MW_SAMPLING_RULES_SUFFIX);
    unlink(rules);
    if (!o.child && o.callgrind) {
        if (access(VALGRIND, X_OK) != 0) {
            printf("callgrind: %s not found (apt-get install valgrind)\n", VALGRIND);
        } else {
            if (o.buffered)
                instructions_per_call(argv[0], "buffered", o.sample_rate, o.count_bucket_ms);
            if (o.unbuffered)
                instructions_per_call(argv[0], "unbuffered", o.sample_rate, o.count_bucket_ms);
        }
    }
    return rc ? 1 : 0;
}
