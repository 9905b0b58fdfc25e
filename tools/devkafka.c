/*
 * devkafka.c — modelwatch-devkafka: a throwaway Kafka cluster on loopback for local runs and tests.
 *
 * It hosts librdkafka's mock cluster (the one librdkafka tests itself with), a real Kafka protocol
 * peer: real producers and consumers (idempotent producers, consumer groups with manual commits)
 * connect to the bootstrap list it writes to --bootstrap-file. An optional control port
 * (--control-file) takes brokers down and up, adds latency, creates topics and reports end
 * offsets, for fault tests. It runs until SIGTERM or SIGINT.
 *
 * Files: --control-file is written first, --bootstrap-file last, both atomically (temp + rename)
 * and without a trailing newline, so once the bootstrap file exists the cluster, its topics and
 * the control port are all ready. Both are removed at startup and at a clean exit.
 *
 * Control protocol (127.0.0.1 TCP, one command per line of at most 1024 bytes, one reply line
 * each, "ok ..." or "error <reason>"):
 *     ping                        -> ok
 *     down|up BROKER_ID|all       -> ok
 *     rtt BROKER_ID|all MS        -> ok
 *     topic NAME PARTITIONS       -> ok
 *     offsets NAME                -> ok 0:HIGH 1:HIGH ...   (partition:end offset, in order)
 *     produce-errors ERROR COUNT  -> ok    (the next COUNT produce requests, on any broker, fail
 *                                           with Kafka error ERROR: a name such as
 *                                           MSG_SIZE_TOO_LARGE, or its number)
 *
 * Caveat: the mock keeps only about the last 5 MB per partition in memory and drops older
 * messages, so tests count by end offsets ("offsets") or consume while producing.
 */
#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define COMP "devkafka"

#define MW_DK_MAX_BROKERS 16
#define MW_DK_MAX_TOPICS 64       /* --topic flags */
#define MW_DK_MAX_PARTITIONS 1024 /* per topic, for --topic and "topic" */
#define MW_DK_MAX_TOPIC_NAME 249  /* Kafka's own limit */
#define MW_DK_MAX_LINE 1024       /* control line, without the '\n' */
#define MW_DK_MAX_ARGS 4          /* command word included */
#define MW_DK_MAX_CLIENTS 16      /* concurrent control connections */
#define MW_DK_MAX_RTT_MS 600000
#define MW_DK_REPLY_BYTES 32768     /* fits MW_DK_MAX_PARTITIONS "P:OFFSET" pairs */
#define MW_DK_QUERY_TIMEOUT_MS 3000 /* whole budget of one "offsets" command */
#define MW_DK_SEND_TIMEOUT_MS 2000  /* a client that does not read its replies is dropped */
#define MW_DK_MAX_INJECTED 10000    /* "produce-errors" COUNT */
#define MW_DK_API_PRODUCE 0         /* Kafka's ApiKey of ProduceRequest */

struct topic_spec {
    char name[MW_DK_MAX_TOPIC_NAME + 1];
    int n_partitions;
};

struct ctl_client {
    int fd;          /* -1 when the slot is free */
    bool discarding; /* the current line overflowed: drop bytes up to the next '\n' */
    size_t line_len;
    char line[MW_DK_MAX_LINE + 1];
};

struct devkafka {
    /* From the flags. */
    int n_brokers;
    int n_topics;
    struct topic_spec topics[MW_DK_MAX_TOPICS];
    const char *bootstrap_path; /* borrowed from argv */
    const char *control_path;   /* borrowed from argv; NULL: no control port */

    /* Cluster. */
    rd_kafka_t *owner_rk; /* exists only to own the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    const char *bootstraps; /* owned by mcluster */
    bool bootstrap_written; /* ours to remove at exit */
    bool control_written;

    /* Control port; everything below is touched by the control thread only once it runs. */
    int listen_fd;
    int wake_fds[2]; /* written by main to stop the control thread */
    bool ctl_running;
    pthread_t ctl_thread;
    rd_kafka_t *query_rk; /* created on the first "offsets" */
    struct ctl_client clients[MW_DK_MAX_CLIENTS];
    char reply[MW_DK_REPLY_BYTES];
};

/* ---- flags ------------------------------------------------------------------------------- */

enum {
    OPT_BROKERS = 256,
    OPT_TOPIC,
    OPT_BOOTSTRAP_FILE,
    OPT_CONTROL_FILE,
    OPT_LOG_LEVEL,
};

static const struct option long_options[] = {
    {"brokers", required_argument, NULL, OPT_BROKERS},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE},
    {"control-file", required_argument, NULL, OPT_CONTROL_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: modelwatch-devkafka --bootstrap-file PATH [options]\n"
            "\n"
            "Hosts librdkafka's mock Kafka cluster on loopback until SIGTERM or SIGINT.\n"
            "\n"
            "  --bootstrap-file PATH   write the bootstrap server list here (required)\n"
            "  --brokers N             number of brokers, 1..%d (default 1)\n"
            "  --topic NAME:PARTS      create a topic; repeatable (default:\n"
            "                          modelwatch.telemetry:4 and modelwatch.telemetry.dlq:1)\n"
            "  --control-file PATH     open a control port on 127.0.0.1 and write its address\n"
            "                          here; commands: ping, down|up ID|all, rtt ID|all MS,\n"
            "                          topic NAME PARTS, offsets NAME,\n"
            "                          produce-errors ERROR COUNT\n"
            "  --log-level LEVEL       debug, info, warn or error (default info)\n"
            "  --help                  print this help\n",
            MW_DK_MAX_BROKERS);
}

/* Parse all of `text` as a base-10 integer in [min, max]. Returns 0 or MW_EINVAL. */
static int parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return MW_EINVAL;
    *out = value;
    return 0;
}

/* Kafka's rule: 1..249 of [A-Za-z0-9._-], and neither "." nor "..". */
static bool topic_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MW_DK_MAX_TOPIC_NAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* Append "NAME:PARTS" to dk->topics. Returns 0 or MW_EINVAL (bad, duplicate or too many). */
static int add_topic_flag(struct devkafka *dk, const char *spec)
{
    const char *colon = strrchr(spec, ':');
    long n_partitions;
    if (!colon || dk->n_topics == MW_DK_MAX_TOPICS ||
        (size_t)(colon - spec) > MW_DK_MAX_TOPIC_NAME ||
        parse_long(colon + 1, 1, MW_DK_MAX_PARTITIONS, &n_partitions) != 0)
        return MW_EINVAL;
    struct topic_spec *t = &dk->topics[dk->n_topics];
    snprintf(t->name, sizeof t->name, "%.*s", (int)(colon - spec), spec);
    if (!topic_name_valid(t->name))
        return MW_EINVAL;
    for (int i = 0; i < dk->n_topics; i++) {
        if (strcmp(dk->topics[i].name, t->name) == 0)
            return MW_EINVAL;
    }
    t->n_partitions = (int)n_partitions;
    dk->n_topics++;
    return 0;
}

static void add_default_topics(struct devkafka *dk)
{
    static const struct topic_spec defaults[] = {
        {"modelwatch.telemetry", 4},
        {"modelwatch.telemetry.dlq", 1},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        dk->topics[dk->n_topics++] = defaults[i];
}

/* Apply one option to dk. Returns 0 or MW_EINVAL. */
static int apply_option(struct devkafka *dk, int opt, const char *arg)
{
    long value;
    enum mw_log_level level;
    switch (opt) {
    case OPT_BROKERS:
        if (parse_long(arg, 1, MW_DK_MAX_BROKERS, &value) != 0)
            return MW_EINVAL;
        dk->n_brokers = (int)value;
        return 0;
    case OPT_TOPIC:
        return add_topic_flag(dk, arg);
    case OPT_BOOTSTRAP_FILE:
        dk->bootstrap_path = arg;
        return *arg ? 0 : MW_EINVAL;
    case OPT_CONTROL_FILE:
        dk->control_path = arg;
        return *arg ? 0 : MW_EINVAL;
    case OPT_LOG_LEVEL:
        if (mw_log_level_parse(arg, &level) != 0)
            return MW_EINVAL;
        mw_log_set_level(level);
        return 0;
    default:
        return MW_EINVAL;
    }
}

static const char *option_name(int opt)
{
    for (const struct option *o = long_options; o->name; o++) {
        if (o->val == opt)
            return o->name;
    }
    return "?";
}

/* Fill dk from argv. Returns -1 to go on, or the exit code (0 after --help, 2 on bad usage). */
static int parse_args(struct devkafka *dk, int argc, char **argv)
{
    int opt;
    dk->n_brokers = 1;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return 0;
        }
        if (apply_option(dk, opt, optarg) != 0) {
            if (opt != '?')
                fprintf(stderr, "modelwatch-devkafka: bad value for --%s: %s\n", option_name(opt),
                        optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !dk->bootstrap_path) {
        fprintf(stderr, "modelwatch-devkafka: %s\n",
                optind != argc ? "unexpected argument" : "--bootstrap-file is required");
        usage(stderr);
        return 2;
    }
    if (dk->n_topics == 0)
        add_default_topics(dk);
    return -1;
}

/* ---- files ------------------------------------------------------------------------------- */

/* Write `content` to `path` atomically: a temp file in the same directory, then rename(2).
 * Returns 0 or MW_ESYS (logged). */
static int write_file_atomic(const char *path, const char *content)
{
    char tmp_path[4096];
    const char *op = "snprintf";
    int rc = MW_ESYS;
    int n = snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp_path)
        goto out;
    op = "open";
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    size_t len = strlen(content);
    ssize_t written = write(fd, content, len);
    op = (written == (ssize_t)len) ? "close" : "write";
    if (close(fd) != 0 || written != (ssize_t)len) {
        unlink(tmp_path);
        goto out;
    }
    op = "rename";
    if (rename(tmp_path, path) != 0) {
        unlink(tmp_path);
        goto out;
    }
    rc = 0;
out:
    if (rc)
        MW_LOG_ERROR(COMP, "cannot write file", "op=%s path=%s errno=%d", op, path, errno);
    return rc;
}

/* ---- cluster ----------------------------------------------------------------------------- */

static enum mw_log_level syslog_to_mw(int level)
{
    if (level <= 3)
        return MW_LOG_LEVEL_ERROR;
    if (level == 4)
        return MW_LOG_LEVEL_WARN;
    return level <= 6 ? MW_LOG_LEVEL_INFO : MW_LOG_LEVEL_DEBUG;
}

/* Logs of the owner handle, i.e. of the mock cluster itself. */
static void owner_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char quoted[1024];
    (void)rk;
    /* The owner has no bootstrap.servers by design; its complaint about that is noise. */
    enum mw_log_level mw_level =
        strcmp(fac, "CONFWARN") == 0 ? MW_LOG_LEVEL_DEBUG : syslog_to_mw(level);
    MW_LOG(mw_level, COMP, "rdkafka", "source=mock fac=%s text=%s", fac,
           mw_log_quote(buf, quoted, sizeof quoted));
}

/* Logs of our own query client: connection failures there are expected while brokers are down
 * and surface as "error" replies, so they are debug only. */
static void query_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char quoted[1024];
    (void)rk;
    (void)level;
    MW_LOG_DEBUG(COMP, "rdkafka", "source=query fac=%s text=%s", fac,
                 mw_log_quote(buf, quoted, sizeof quoted));
}

static void query_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    char quoted[512];
    (void)rk;
    (void)opaque;
    MW_LOG_DEBUG(COMP, "query client error", "err=%s reason=%s", rd_kafka_err2name(err),
                 mw_log_quote(reason, quoted, sizeof quoted));
}

/* Set conf key=value. Returns 0 or MW_ECONFIG (logged). */
static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
        return 0;
    MW_LOG_ERROR(COMP, "rdkafka config rejected", "key=%s error=\"%s\"", key, errstr);
    return MW_ECONFIG;
}

/* Create a handle of `type` from conf, which it takes in every case. Returns NULL (logged). */
static rd_kafka_t *handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        MW_LOG_ERROR(COMP, "cannot create rdkafka handle", "error=\"%s\"", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Create the owner handle and the mock cluster with its topics. Returns 0, MW_ECONFIG or
 * MW_EKAFKA (logged); devkafka_destroy() cleans up a partial start. */
static int cluster_create(struct devkafka *dk)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, owner_log_cb);
    if (conf_set(conf, "client.id", "modelwatch-devkafka") != 0) {
        rd_kafka_conf_destroy(conf);
        return MW_ECONFIG;
    }
    dk->owner_rk = handle_new(RD_KAFKA_PRODUCER, conf);
    if (!dk->owner_rk)
        return MW_EKAFKA;
    dk->mcluster = rd_kafka_mock_cluster_new(dk->owner_rk, dk->n_brokers);
    if (!dk->mcluster) {
        MW_LOG_ERROR(COMP, "cannot create mock cluster", "brokers=%d", dk->n_brokers);
        return MW_EKAFKA;
    }
    dk->bootstraps = rd_kafka_mock_cluster_bootstraps(dk->mcluster);
    return 0;
}

/* Create a topic on the mock. Returns 0 or MW_EKAFKA with the rdkafka error in *err. */
static int topic_create(struct devkafka *dk, const char *name, int n_partitions,
                        rd_kafka_resp_err_t *err)
{
    int replication = dk->n_brokers < 3 ? dk->n_brokers : 3;
    *err = rd_kafka_mock_topic_create(dk->mcluster, name, n_partitions, replication);
    return *err ? MW_EKAFKA : 0;
}

static int topics_create(struct devkafka *dk)
{
    rd_kafka_resp_err_t err;
    for (int i = 0; i < dk->n_topics; i++) {
        if (topic_create(dk, dk->topics[i].name, dk->topics[i].n_partitions, &err) != 0) {
            MW_LOG_ERROR(COMP, "cannot create topic", "topic=%s error=%s", dk->topics[i].name,
                         rd_kafka_err2name(err));
            return MW_EKAFKA;
        }
    }
    return 0;
}

/* ---- control commands -------------------------------------------------------------------- */

/* Each handler gets the command's words (argv[0] is the command) and writes one reply line,
 * without '\n', into reply. It returns 0 or the MW_E* code behind an "error" reply. */
struct ctl_command {
    const char *name;
    int argc; /* words, command included */
    int (*run)(struct devkafka *dk, char **argv, char *reply, size_t size);
};

static int reply_error(char *reply, size_t size, int rc, const char *reason)
{
    snprintf(reply, size, "error %s", reason);
    return rc;
}

/* "all" -> 0 (meaning every broker), else a broker id in 1..n_brokers. */
static int parse_broker(struct devkafka *dk, const char *text, int32_t *broker_id)
{
    long value;
    if (strcmp(text, "all") == 0) {
        *broker_id = 0;
        return 0;
    }
    if (parse_long(text, 1, dk->n_brokers, &value) != 0)
        return MW_EINVAL;
    *broker_id = (int32_t)value;
    return 0;
}

enum broker_op { BROKER_DOWN, BROKER_UP, BROKER_RTT };

/* Apply op to one broker, or to all of them for broker_id 0. Returns the first error. */
static rd_kafka_resp_err_t broker_apply(struct devkafka *dk, int32_t broker_id, enum broker_op op,
                                        int rtt_ms)
{
    int32_t first = broker_id ? broker_id : 1;
    int32_t last = broker_id ? broker_id : dk->n_brokers;
    rd_kafka_resp_err_t first_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int32_t id = first; id <= last; id++) {
        rd_kafka_resp_err_t err;
        if (op == BROKER_DOWN)
            err = rd_kafka_mock_broker_set_down(dk->mcluster, id);
        else if (op == BROKER_UP)
            err = rd_kafka_mock_broker_set_up(dk->mcluster, id);
        else
            err = rd_kafka_mock_broker_set_rtt(dk->mcluster, id, rtt_ms);
        if (err && !first_err)
            first_err = err;
    }
    return first_err;
}

static int run_broker_op(struct devkafka *dk, const char *target, enum broker_op op, int rtt_ms,
                         char *reply, size_t size)
{
    static const char *const op_names[] = {"down", "up", "rtt"};
    int32_t broker_id;
    if (parse_broker(dk, target, &broker_id) != 0)
        return reply_error(reply, size, MW_EINVAL, "bad broker id");
    rd_kafka_resp_err_t err = broker_apply(dk, broker_id, op, rtt_ms);
    if (err)
        return reply_error(reply, size, MW_EKAFKA, rd_kafka_err2str(err));
    MW_LOG_INFO(COMP, "broker changed", "op=%s broker=%s rtt_ms=%d", op_names[op], target, rtt_ms);
    snprintf(reply, size, "ok");
    return 0;
}

static int cmd_ping(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    (void)dk;
    (void)argv;
    snprintf(reply, size, "ok");
    return 0;
}

static int cmd_down(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    return run_broker_op(dk, argv[1], BROKER_DOWN, 0, reply, size);
}

static int cmd_up(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    return run_broker_op(dk, argv[1], BROKER_UP, 0, reply, size);
}

static int cmd_rtt(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    long rtt_ms;
    if (parse_long(argv[2], 0, MW_DK_MAX_RTT_MS, &rtt_ms) != 0)
        return reply_error(reply, size, MW_EINVAL, "bad rtt (0..600000 ms)");
    return run_broker_op(dk, argv[1], BROKER_RTT, (int)rtt_ms, reply, size);
}

static int cmd_topic(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    long n_partitions;
    rd_kafka_resp_err_t err;
    if (!topic_name_valid(argv[1]))
        return reply_error(reply, size, MW_EINVAL, "bad topic name");
    if (parse_long(argv[2], 1, MW_DK_MAX_PARTITIONS, &n_partitions) != 0)
        return reply_error(reply, size, MW_EINVAL, "bad partition count (1..1024)");
    if (topic_create(dk, argv[1], (int)n_partitions, &err) != 0)
        return reply_error(reply, size, MW_EKAFKA, rd_kafka_err2str(err));
    MW_LOG_INFO(COMP, "topic created", "topic=%s partitions=%ld", argv[1], n_partitions);
    snprintf(reply, size, "ok");
    return 0;
}

/* The client that asks the cluster for metadata and end offsets, created on first use and kept:
 * the mock has no public API for watermarks. Fast reconnects so that "up" is seen quickly;
 * read_uncommitted so that "latest" is the high watermark, not the last stable offset. */
static rd_kafka_t *query_handle(struct devkafka *dk)
{
    if (dk->query_rk)
        return dk->query_rk;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, query_log_cb);
    rd_kafka_conf_set_error_cb(conf, query_error_cb);
    if (conf_set(conf, "bootstrap.servers", dk->bootstraps) != 0 ||
        conf_set(conf, "client.id", "modelwatch-devkafka-control") != 0 ||
        conf_set(conf, "reconnect.backoff.ms", "20") != 0 ||
        conf_set(conf, "reconnect.backoff.max.ms", "250") != 0 ||
        conf_set(conf, "isolation.level", "read_uncommitted") != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    dk->query_rk = handle_new(RD_KAFKA_CONSUMER, conf);
    return dk->query_rk;
}

static int remaining_ms(uint64_t deadline_ms)
{
    uint64_t now_ms = mw_clock_mono_ms();
    return now_ms >= deadline_ms ? 1 : (int)(deadline_ms - now_ms);
}

/* Partition count of `topic` from a full metadata request (a request naming the topic could
 * auto-create it). Returns 0, MW_ENOTFOUND or MW_EKAFKA, with the rdkafka error in *err. */
static int topic_partition_count(rd_kafka_t *rk, const char *topic, uint64_t deadline_ms,
                                 int *n_partitions, rd_kafka_resp_err_t *err)
{
    const struct rd_kafka_metadata *md = NULL;
    int rc = MW_ENOTFOUND;
    *err = rd_kafka_metadata(rk, 1, NULL, &md, remaining_ms(deadline_ms));
    if (*err)
        return MW_EKAFKA;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0)
            continue;
        *err = md->topics[i].err;
        *n_partitions = md->topics[i].partition_cnt;
        rc = *err ? MW_EKAFKA : 0;
        break;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* End offsets of partitions 0..n_partitions-1 of topic, appended as " P:HIGH" to reply (which
 * holds "ok"). ListOffsets with the special timestamp RD_KAFKA_OFFSET_END returns the high
 * watermark (read_uncommitted). rd_kafka_query_watermark_offsets() is not used: before
 * librdkafka 2.3.0 it ignores its timeout and blocks forever while a partition's leader is down
 * (librdkafka #2588), which would wedge the control thread and shutdown with it;
 * rd_kafka_offsets_for_times() honours its timeout. Returns 0 or the code behind an "error". */
static int append_end_offsets(rd_kafka_t *rk, const char *topic, int n_partitions,
                              uint64_t deadline_ms, char *reply, size_t size)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n_partitions);
    size_t len = strlen(reply);
    int rc = 0;
    for (int32_t p = 0; p < n_partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, parts, remaining_ms(deadline_ms));
    for (int i = 0; !err && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->err) {
            err = tp->err;
            break;
        }
        int n = snprintf(reply + len, size - len, " %d:%lld", (int)tp->partition,
                         (long long)tp->offset);
        if (n < 0 || (size_t)n >= size - len) {
            rc = reply_error(reply, size, MW_EFULL, "reply too long");
            break;
        }
        len += (size_t)n;
    }
    if (err)
        rc = reply_error(reply, size, MW_EKAFKA, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

static int cmd_offsets(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    uint64_t deadline_ms = mw_clock_mono_ms() + MW_DK_QUERY_TIMEOUT_MS;
    int n_partitions = 0;
    rd_kafka_resp_err_t err;
    rd_kafka_t *rk = query_handle(dk);
    if (!rk)
        return reply_error(reply, size, MW_EKAFKA, "cannot create query client");
    int rc = topic_partition_count(rk, argv[1], deadline_ms, &n_partitions, &err);
    if (rc == MW_ENOTFOUND)
        return reply_error(reply, size, rc, "unknown topic");
    if (rc)
        return reply_error(reply, size, rc, rd_kafka_err2str(err));
    snprintf(reply, size, "ok");
    return append_end_offsets(rk, argv[1], n_partitions, deadline_ms, reply, size);
}

/* A broker error by its name without the "RD_KAFKA_RESP_ERR_" prefix, or by its number. */
static int parse_kafka_error(const char *text, rd_kafka_resp_err_t *out)
{
    long code;
    if (parse_long(text, 1, 32767, &code) == 0) {
        *out = (rd_kafka_resp_err_t)code;
        return 0;
    }
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].code > 0 && descs[i].name && strcmp(descs[i].name, text) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return MW_EINVAL;
}

static int cmd_produce_errors(struct devkafka *dk, char **argv, char *reply, size_t size)
{
    static rd_kafka_resp_err_t errs[MW_DK_MAX_INJECTED];
    rd_kafka_resp_err_t err;
    long count;
    if (parse_kafka_error(argv[1], &err) != 0)
        return reply_error(reply, size, MW_EINVAL, "unknown Kafka error");
    if (parse_long(argv[2], 1, MW_DK_MAX_INJECTED, &count) != 0)
        return reply_error(reply, size, MW_EINVAL, "bad count (1..10000)");
    for (long i = 0; i < count; i++)
        errs[i] = err;
    rd_kafka_mock_push_request_errors_array(dk->mcluster, MW_DK_API_PRODUCE, (size_t)count, errs);
    MW_LOG_INFO(COMP, "produce errors injected", "error=%s count=%ld", rd_kafka_err2name(err),
                count);
    snprintf(reply, size, "ok");
    return 0;
}

static const struct ctl_command ctl_commands[] = {
    {"ping", 1, cmd_ping},
    {"down", 2, cmd_down},
    {"up", 2, cmd_up},
    {"rtt", 3, cmd_rtt},
    {"topic", 3, cmd_topic},
    {"offsets", 2, cmd_offsets},
    {"produce-errors", 3, cmd_produce_errors},
};

/* Split line in place at spaces and tabs. Returns the word count, or -1 if more than max. */
static int split_words(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        p += strspn(p, " \t");
        if (*p == '\0')
            return n;
        if (n == max)
            return -1;
        words[n++] = p;
        p += strcspn(p, " \t");
        if (*p != '\0')
            *p++ = '\0';
    }
}

static bool line_printable(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f)
            return false;
    }
    return true;
}

/* Run one command line (NUL-terminated, no '\n', len bytes) and write the reply into reply. */
static int ctl_execute(struct devkafka *dk, char *line, size_t len, char *reply, size_t size)
{
    char *words[MW_DK_MAX_ARGS];
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (!line_printable(line, len))
        return reply_error(reply, size, MW_EPARSE, "malformed line");
    int n_words = split_words(line, words, MW_DK_MAX_ARGS);
    if (n_words == 0)
        return reply_error(reply, size, MW_EPARSE, "empty command");
    if (n_words < 0)
        return reply_error(reply, size, MW_EPARSE, "too many arguments");
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++) {
        const struct ctl_command *cmd = &ctl_commands[i];
        if (strcmp(words[0], cmd->name) != 0)
            continue;
        if (n_words != cmd->argc)
            return reply_error(reply, size, MW_EPARSE, "wrong number of arguments");
        return cmd->run(dk, words, reply, size);
    }
    return reply_error(reply, size, MW_EPARSE, "unknown command");
}

/* ---- control port ------------------------------------------------------------------------ */

static void client_close(struct ctl_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->line_len = 0;
    c->discarding = false;
}

/* Send text + '\n'. A client that does not take its reply within the send timeout is dropped.
 * Returns 0 or MW_ETRANSPORT. */
static int client_send_line(struct ctl_client *c, const char *text)
{
    char line[MW_DK_REPLY_BYTES + 1];
    int len = snprintf(line, sizeof line, "%s\n", text);
    size_t off = 0;
    if (len < 0)
        return MW_ETRANSPORT;
    while (off < (size_t)len) {
        ssize_t n = send(c->fd, line + off, (size_t)len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            MW_LOG_DEBUG(COMP, "control client dropped", "op=send errno=%d", errno);
            return MW_ETRANSPORT;
        }
        off += (size_t)n;
    }
    return 0;
}

/* The client's current line is complete: run it and reply. */
static int client_line_done(struct devkafka *dk, struct ctl_client *c)
{
    c->line[c->line_len] = '\0';
    int rc = ctl_execute(dk, c->line, c->line_len, dk->reply, sizeof dk->reply);
    MW_LOG_DEBUG(COMP, "control command", "rc=%s", rc ? mw_err_name(rc) : "0");
    c->line_len = 0;
    return client_send_line(c, dk->reply);
}

/* Feed received bytes into the client's line buffer, running each complete line. A line longer
 * than MW_DK_MAX_LINE gets "error line too long" as soon as it overflows and the rest of it up to
 * its '\n' is dropped. Returns 0 or MW_ETRANSPORT (the client must be closed). */
static int client_feed(struct devkafka *dk, struct ctl_client *c, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (c->discarding) {
            c->discarding = ch != '\n';
            continue;
        }
        if (ch == '\n') {
            if (client_line_done(dk, c) != 0)
                return MW_ETRANSPORT;
        } else if (c->line_len == MW_DK_MAX_LINE) {
            c->line_len = 0;
            c->discarding = true;
            if (client_send_line(c, "error line too long") != 0)
                return MW_ETRANSPORT;
        } else {
            c->line[c->line_len++] = ch;
        }
    }
    return 0;
}

static void client_read(struct devkafka *dk, struct ctl_client *c)
{
    char data[4096];
    ssize_t n = recv(c->fd, data, sizeof data, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0 || client_feed(dk, c, data, (size_t)n) != 0)
        client_close(c);
}

static void ctl_accept(struct devkafka *dk)
{
    int fd = accept4(dk->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
            MW_LOG_WARN(COMP, "accept failed", "errno=%d", errno);
            usleep(100 * 1000); /* EMFILE and the like: do not spin */
        }
        return;
    }
    struct timeval send_timeout = {.tv_sec = MW_DK_SEND_TIMEOUT_MS / 1000,
                                   .tv_usec = (MW_DK_SEND_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    for (int i = 0; i < MW_DK_MAX_CLIENTS; i++) {
        if (dk->clients[i].fd < 0) {
            dk->clients[i].fd = fd;
            return;
        }
    }
    struct ctl_client full = {.fd = fd};
    client_send_line(&full, "error too many control connections");
    close(fd);
}

/* Poll set: [0] wake pipe, [1] listener, then one entry per open client; slots[] maps the client
 * entries back to dk->clients. Returns the entry count. */
static nfds_t ctl_pollset(struct devkafka *dk, struct pollfd *pfds, int *slots)
{
    nfds_t n = 0;
    pfds[n++] = (struct pollfd){.fd = dk->wake_fds[0], .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = dk->listen_fd, .events = POLLIN};
    for (int i = 0; i < MW_DK_MAX_CLIENTS; i++) {
        if (dk->clients[i].fd < 0)
            continue;
        slots[n] = i;
        pfds[n++] = (struct pollfd){.fd = dk->clients[i].fd, .events = POLLIN};
    }
    return n;
}

static void *ctl_thread_main(void *arg)
{
    struct devkafka *dk = arg;
    struct pollfd pfds[2 + MW_DK_MAX_CLIENTS];
    int slots[2 + MW_DK_MAX_CLIENTS];
    for (;;) {
        nfds_t n = ctl_pollset(dk, pfds, slots);
        if (poll(pfds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            MW_LOG_ERROR(COMP, "control port stopped", "op=poll errno=%d", errno);
            break;
        }
        if (pfds[0].revents)
            break;
        if (pfds[1].revents)
            ctl_accept(dk);
        for (nfds_t i = 2; i < n; i++) {
            if (pfds[i].revents)
                client_read(dk, &dk->clients[slots[i]]);
        }
    }
    for (int i = 0; i < MW_DK_MAX_CLIENTS; i++)
        client_close(&dk->clients[i]);
    return NULL;
}

/* Bind 127.0.0.1 on an ephemeral port and listen. Returns 0 or MW_ESYS (logged). */
static int ctl_listen(struct devkafka *dk, int *port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    const char *op = "socket";
    dk->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (dk->listen_fd < 0)
        goto fail;
    op = "bind";
    if (bind(dk->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        goto fail;
    op = "listen";
    if (listen(dk->listen_fd, 16) != 0)
        goto fail;
    op = "getsockname";
    if (getsockname(dk->listen_fd, (struct sockaddr *)&addr, &addr_len) != 0)
        goto fail;
    *port = ntohs(addr.sin_port);
    return 0;
fail:
    MW_LOG_ERROR(COMP, "cannot open control port", "op=%s errno=%d", op, errno);
    return MW_ESYS;
}

/* Open the control port, start its thread and write the control file. Returns 0 or MW_ESYS. */
static int ctl_start(struct devkafka *dk)
{
    char address[64];
    int port = 0;
    if (pipe2(dk->wake_fds, O_CLOEXEC) != 0) {
        MW_LOG_ERROR(COMP, "cannot open control port", "op=pipe2 errno=%d", errno);
        return MW_ESYS;
    }
    if (ctl_listen(dk, &port) != 0)
        return MW_ESYS;
    int err = pthread_create(&dk->ctl_thread, NULL, ctl_thread_main, dk);
    if (err != 0) {
        MW_LOG_ERROR(COMP, "cannot open control port", "op=pthread_create errno=%d", err);
        return MW_ESYS;
    }
    dk->ctl_running = true;
    snprintf(address, sizeof address, "127.0.0.1:%d", port);
    if (write_file_atomic(dk->control_path, address) != 0)
        return MW_ESYS;
    dk->control_written = true;
    return 0;
}

static void ctl_stop(struct devkafka *dk)
{
    if (dk->ctl_running) {
        ssize_t ignored = write(dk->wake_fds[1], "x", 1);
        (void)ignored;
        pthread_join(dk->ctl_thread, NULL);
        dk->ctl_running = false;
    }
    if (dk->query_rk)
        rd_kafka_destroy_flags(dk->query_rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    dk->query_rk = NULL;
    for (int i = 0; i < 2; i++) {
        if (dk->wake_fds[i] >= 0)
            close(dk->wake_fds[i]);
        dk->wake_fds[i] = -1;
    }
    if (dk->listen_fd >= 0)
        close(dk->listen_fd);
    dk->listen_fd = -1;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static struct devkafka *devkafka_new(void)
{
    struct devkafka *dk = mw_calloc(1, sizeof *dk);
    if (!dk)
        return NULL;
    dk->listen_fd = -1;
    dk->wake_fds[0] = dk->wake_fds[1] = -1;
    for (int i = 0; i < MW_DK_MAX_CLIENTS; i++)
        dk->clients[i].fd = -1;
    return dk;
}

/* Stop everything devkafka_start() started, in reverse order, and free dk. Accepts NULL and a
 * partial start. */
static void devkafka_destroy(struct devkafka *dk)
{
    if (!dk)
        return;
    ctl_stop(dk);
    if (dk->bootstrap_written)
        unlink(dk->bootstrap_path);
    if (dk->control_written)
        unlink(dk->control_path);
    if (dk->mcluster)
        rd_kafka_mock_cluster_destroy(dk->mcluster);
    if (dk->owner_rk)
        rd_kafka_destroy(dk->owner_rk);
    mw_free(dk);
}

static void log_startup(const struct devkafka *dk)
{
    char topics[1024];
    size_t len = 0;
    topics[0] = '\0';
    for (int i = 0; i < dk->n_topics && len < sizeof topics; i++) {
        int n = snprintf(topics + len, sizeof topics - len, "%s%s:%d", i ? "," : "",
                         dk->topics[i].name, dk->topics[i].n_partitions);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    MW_LOG_INFO(COMP, "mock cluster up", "bootstrap=%s brokers=%d topics=%s control_file=%s",
                dk->bootstraps, dk->n_brokers, topics,
                dk->control_path ? dk->control_path : "none");
}

/* Bring the cluster up, then the control port, then publish the bootstrap file. Returns 0 or the
 * MW_E* code of the step that failed (logged there). */
static int devkafka_start(struct devkafka *dk)
{
    int rc;
    unlink(dk->bootstrap_path);
    if (dk->control_path)
        unlink(dk->control_path);
    rc = cluster_create(dk);
    if (rc == 0)
        rc = topics_create(dk);
    if (rc == 0 && dk->control_path)
        rc = ctl_start(dk);
    if (rc == 0) {
        log_startup(dk); /* before the file, so whoever waits for it also finds the line */
        rc = write_file_atomic(dk->bootstrap_path, dk->bootstraps);
    }
    if (rc == 0)
        dk->bootstrap_written = true;
    return rc;
}

/* Block SIGINT and SIGTERM in every thread (rdkafka's included, hence before any handle
 * exists) so that main can sigwait() for them; ignore SIGPIPE. */
static void signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    sigset_t signals;
    int signo = 0;
    struct devkafka *dk = devkafka_new();
    if (!dk) {
        MW_LOG_ERROR(COMP, "out of memory", "op=calloc bytes=%zu", sizeof(struct devkafka));
        return 1;
    }
    int exit_code = parse_args(dk, argc, argv);
    if (exit_code >= 0) {
        devkafka_destroy(dk);
        return exit_code;
    }
    signals_block(&signals);
    if (devkafka_start(dk) != 0) {
        devkafka_destroy(dk);
        return 1;
    }
    while (sigwait(&signals, &signo) != 0)
        ;
    MW_LOG_INFO(COMP, "shutting down", "signal=%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
    devkafka_destroy(dk);
    MW_LOG_INFO(COMP, "stopped", "exit_code=%d", 0);
    return 0;
}
