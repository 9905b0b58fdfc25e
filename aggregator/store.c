/* store.c — hiredis async connection with reconnection, driven by libuv. */
#include "store.h"

#include "schema.h"

#include "alloc.h"
#include "error.h"
#include "kafka_conf.h"
#include "log.h"
#include "redis_uv.h"

#include <errno.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RETRY_MIN_MS 100
#define MAX_SCRIPTS 4
/* How often one command is sent again after NOSCRIPT. Another client's SCRIPT FLUSH can land
 * between a reload and the command sent after it (or between two commands resent after one
 * reload), so once is not enough; a script that stays unloadable still ends the command. */
#define NOSCRIPT_RESENDS 8
#define CHECK_INTERVAL_MS 5000
/* How often the watchdog looks at replies awaited (at most; redis.command_timeout / 4). */
#define WATCHDOG_INTERVAL_MS 1000
/* The epoch key: every modelwatch key lives under mw:, and this one has no hash tag (it is read
 * alone). */
#define EPOCH_BYTES 33

struct script {
    const char *text;
    size_t len;
    char sha1[41];
};

struct mw_store {
    uv_loop_t *loop;
    const struct mw_aggregator_config *cfg;
    char *password;
    redisAsyncContext *ctx;
    bool connected;
    bool answering; /* Redis replied on this connection, and has not stopped */
    uv_timer_t watchdog_timer;
    uint64_t unanswered;        /* connections closed for replies awaited too long */
    uint64_t unanswered_in_row; /* for logging */
    bool closing;
    bool timer_closed; /* destroy: freed once the timers have closed and hiredis let go */
    uint64_t retry_ms;
    uint64_t failures; /* connection attempts failed in a row */
    uv_timer_t retry_timer;
    uint64_t commands_sent;
    struct script scripts[MAX_SCRIPTS];
    size_t n_scripts;
    uint64_t load_gen; /* SCRIPT LOADs queued so far */
    uint64_t script_reloads;
    /* Durability and the epoch (see store.h). */
    uv_timer_t check_timer;
    uint64_t conn_gen;        /* connections made so far */
    uint64_t logged_conn_gen; /* the connection the durability verdict was last logged on */
    bool check_in_flight;
    int durable;             /* 1, 0, -1 unknown */
    char problem[256];       /* why not durable, as last logged */
    char epoch[EPOCH_BYTES]; /* the epoch seen; "" before the first check */
    char new_epoch[EPOCH_BYTES];
    uint64_t data_lost;
    uint64_t lost_at_ms; /* loop time of the last loss found; 0 none */
    int timers_open;     /* while closing */
};

struct check_state {
    struct mw_store *store;
    uint64_t conn_gen;
    int pending;
    bool failed;
    char appendonly[16], appendfsync[16], policy[32];
    bool config_refused;
    bool created; /* SET NX created the epoch */
    char epoch[EPOCH_BYTES];
    bool epoch_seen;
};

struct exec_slot {
    struct exec_state *exec;
    size_t index;
};

struct exec_state {
    size_t pending;
    int rc;
    mw_store_each_fn each;
    mw_store_done_fn done;
    void *arg;
    struct exec_slot slots[]; /* one per command */
};

static void connect_now(struct mw_store *s);
static void run_checks(struct mw_store *s);
static void new_epoch(struct mw_store *s);
static void on_check_timer(uv_timer_t *t);

static void on_retry_timer(uv_timer_t *t)
{
    connect_now(t->data);
}

static void schedule_reconnect(struct mw_store *s)
{
    if (s->closing)
        return;
    s->retry_ms = s->retry_ms ? s->retry_ms * 2 : RETRY_MIN_MS;
    if (s->retry_ms > (uint64_t)s->cfg->redis.retry_max_ms)
        s->retry_ms = (uint64_t)s->cfg->redis.retry_max_ms;
    uv_timer_start(&s->retry_timer, on_retry_timer, s->retry_ms, 0);
}

static void on_auth_reply(redisAsyncContext *ctx, void *r, void *arg)
{
    redisReply *reply = r;
    (void)ctx;
    (void)arg;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        MW_LOG_ERROR("store", "Redis refused AUTH", "error=\"%s\"", reply->str);
}

/* Log a failed attempt on the 1st, 2nd, 4th, 8th... in a row, so a long outage is visible
 * without flooding the log. */
static bool worth_logging(uint64_t failures)
{
    return (failures & (failures - 1)) == 0;
}

static void on_connect(const redisAsyncContext *ctx, int status)
{
    struct mw_store *s = ctx->data;
    if (status != REDIS_OK) {
        s->ctx = NULL; /* hiredis frees the context after this callback */
        schedule_reconnect(s);
        if (worth_logging(++s->failures))
            MW_LOG_WARN("store", "cannot connect to Redis",
                        "host=%s port=%lld error=\"%s\" attempts=%llu retry_ms=%llu",
                        s->cfg->redis.host, (long long)s->cfg->redis.port, ctx->errstr,
                        (unsigned long long)s->failures, (unsigned long long)s->retry_ms);
        return;
    }
    s->connected = true;
    s->answering = false; /* until the PING queued first is answered */
    s->retry_ms = 0;
    s->failures = 0;
    s->conn_gen++;
    MW_LOG_INFO("store", "connected to Redis", "host=%s port=%lld", s->cfg->redis.host,
                (long long)s->cfg->redis.port);
    run_checks(s);
}

static void store_free(struct mw_store *s);

static void on_disconnect(const redisAsyncContext *ctx, int status)
{
    struct mw_store *s = ctx->data;
    s->connected = false;
    s->ctx = NULL;
    if (s->closing) {
        /* With replies pending, hiredis disconnects only once they are in: possibly after
         * the timer closed. Whichever comes last frees the store. */
        if (s->timer_closed)
            store_free(s);
        return;
    }
    MW_LOG_WARN("store", "Redis connection lost", "error=\"%s\"",
                status == REDIS_OK ? "closed" : ctx->errstr);
    schedule_reconnect(s);
}

static void on_ping_reply(redisAsyncContext *ctx, void *reply, void *arg)
{
    struct mw_store *s = ctx->data;
    (void)arg;
    if (!reply || !s || s->ctx != ctx)
        return;
    if (s->unanswered_in_row)
        MW_LOG_INFO("store", "Redis answers again", "host=%s port=%lld", s->cfg->redis.host,
                    (long long)s->cfg->redis.port);
    s->answering = true;
    s->unanswered_in_row = 0;
}

/* Replies awaited for redis.command_timeout with nothing read: Redis hangs (or the network
 * drops everything) with the connection still open, and would hold every apply and /readyz
 * at "up" for as long. Close the connection: hiredis fails what was pending (the callers retry,
 * and applying a batch twice is a no-op) and the store reconnects. */
static void on_watchdog_timer(uv_timer_t *t)
{
    struct mw_store *s = t->data;
    redisAsyncContext *ctx = s->ctx;
    if (!ctx || s->closing)
        return;
    uint64_t waited_ms = mw_redis_uv_waiting_ms(ctx, uv_now(s->loop));
    if (waited_ms < (uint64_t)s->cfg->redis.command_timeout_ms)
        return;
    s->unanswered++;
    if (worth_logging(++s->unanswered_in_row))
        MW_LOG_ERROR("store",
                     "Redis does not answer: closing the connection, retrying on a new one",
                     "host=%s port=%lld waited_ms=%llu times_in_a_row=%llu", s->cfg->redis.host,
                     (long long)s->cfg->redis.port, (unsigned long long)waited_ms,
                     (unsigned long long)s->unanswered_in_row);
    s->connected = false; /* callbacks failed below find the store down, as it is */
    s->answering = false;
    redisAsyncFree(ctx); /* calls on_disconnect when hiredis had connected */
    if (s->ctx == ctx) {
        s->ctx = NULL;
        schedule_reconnect(s);
    }
}

static void on_script_loaded(redisAsyncContext *ctx, void *r, void *arg)
{
    redisReply *reply = r;
    const struct script *sc = arg;
    (void)ctx;
    if (!reply)
        return; /* the connection dropped: loaded again on the next one */
    if (reply->type == REDIS_REPLY_ERROR)
        MW_LOG_ERROR("store", "Redis refused to load a script", "sha1=%s error=\"%.200s\"",
                     sc->sha1, reply->str);
    else if (reply->type != REDIS_REPLY_STRING || strcasecmp(reply->str, sc->sha1) != 0)
        MW_LOG_ERROR("store", "Redis names a loaded script by another digest", "sha1=%s got=%.64s",
                     sc->sha1, reply->type == REDIS_REPLY_STRING ? reply->str : "?");
}

/* Queue SCRIPT LOAD of `sc` on the current context. */
static void load_script(struct mw_store *s, const struct script *sc)
{
    const char *argv[] = {"SCRIPT", "LOAD", sc->text};
    size_t lens[] = {6, 4, sc->len};
    if (redisAsyncCommandArgv(s->ctx, on_script_loaded, (void *)sc, 3, argv, lens) == REDIS_OK)
        s->load_gen++;
}

static void connect_now(struct mw_store *s)
{
    redisAsyncContext *ctx = redisAsyncConnect(s->cfg->redis.host, (int)s->cfg->redis.port);
    if (!ctx || ctx->err) {
        MW_LOG_WARN("store", "cannot connect to Redis", "host=%s error=\"%s\"", s->cfg->redis.host,
                    ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisAsyncFree(ctx);
        schedule_reconnect(s);
        return;
    }
    ctx->data = s;
    if (mw_redis_uv_attach(ctx, s->loop) != 0) {
        redisAsyncFree(ctx);
        schedule_reconnect(s);
        return;
    }
    redisAsyncSetConnectCallback(ctx, on_connect);
    redisAsyncSetDisconnectCallback(ctx, on_disconnect);
    s->ctx = ctx;
    /* hiredis 0.14 learns that a non-blocking connect finished (or failed) only from a write
     * event, which it asks for when a command is queued; queue a PING so every connection
     * attempt completes one way or the other. */
    redisAsyncCommand(ctx, on_ping_reply, NULL, "PING");
    if (s->password) {
        /* Queued before any other command, so it runs first once connected. */
        const char *user = s->cfg->redis.username;
        if (user && *user)
            redisAsyncCommand(ctx, on_auth_reply, NULL, "AUTH %s %s", user, s->password);
        else
            redisAsyncCommand(ctx, on_auth_reply, NULL, "AUTH %s", s->password);
    }
    /* Then the scripts, before anything that runs them. */
    for (size_t i = 0; i < s->n_scripts; i++)
        load_script(s, &s->scripts[i]);
}

int mw_store_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg, struct mw_store **out)
{
    struct mw_store *s = mw_calloc(1, sizeof *s);
    if (!s)
        return MW_ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    if (cfg->redis.password_file && *cfg->redis.password_file) {
        s->password = mw_kafka_read_small_file(cfg->redis.password_file);
        if (!s->password) {
            MW_LOG_ERROR("store", "cannot read the Redis password file", "file=%s error=\"%s\"",
                         cfg->redis.password_file, strerror(errno));
            mw_free(s);
            return MW_EIO;
        }
    } else if (cfg->redis.password && *cfg->redis.password) {
        s->password = mw_strdup(cfg->redis.password);
        if (!s->password) {
            mw_free(s);
            return MW_ENOMEM;
        }
    }
    uv_timer_init(loop, &s->retry_timer);
    s->retry_timer.data = s;
    uv_timer_init(loop, &s->check_timer);
    s->check_timer.data = s;
    uv_timer_start(&s->check_timer, on_check_timer, CHECK_INTERVAL_MS, CHECK_INTERVAL_MS);
    uv_timer_init(loop, &s->watchdog_timer);
    s->watchdog_timer.data = s;
    uint64_t watchdog_ms = (uint64_t)cfg->redis.command_timeout_ms / 4;
    if (watchdog_ms > WATCHDOG_INTERVAL_MS)
        watchdog_ms = WATCHDOG_INTERVAL_MS;
    uv_timer_start(&s->watchdog_timer, on_watchdog_timer, watchdog_ms, watchdog_ms);
    s->durable = -1;
    new_epoch(s);
    connect_now(s);
    *out = s;
    return 0;
}

/* ---- durability and the epoch ----------------------------------------------------------- */

static bool refusing(const struct mw_store *s)
{
    return s->cfg->redis.durability == MW_REDIS_DURABILITY_REFUSE && s->durable != 1;
}

/* What the CONFIG values say, into s->problem ("" when durable). */
static int judge(const struct check_state *st, char *problem, size_t size)
{
    size_t at = 0;
    problem[0] = '\0';
    if (st->config_refused) {
        snprintf(problem, size, "CONFIG GET refused: durability cannot be checked");
        return -1;
    }
    if (strcasecmp(st->appendonly, "yes") != 0)
        at += (size_t)snprintf(problem + at, size - at, "appendonly=%s (no append-only file) ",
                               st->appendonly);
    else if (strcasecmp(st->appendfsync, "always") != 0 &&
             strcasecmp(st->appendfsync, "everysec") != 0 && at < size)
        at += (size_t)snprintf(problem + at, size - at,
                               "appendfsync=%s (the OS decides when writes reach disk) ",
                               st->appendfsync);
    if (strcasecmp(st->policy, "noeviction") != 0 && at < size)
        at += (size_t)snprintf(problem + at, size - at,
                               "maxmemory-policy=%s (evicts keys, dedup memory included) ",
                               st->policy);
    if (at && at < size)
        problem[at - 1] = '\0';
    return at ? 0 : 1;
}

static void new_epoch(struct mw_store *s)
{
    unsigned char raw[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(raw, 1, sizeof raw, f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof raw) {
        uint64_t t = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        memcpy(raw, &t, sizeof t);
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(s->new_epoch + 2 * i, 3, "%02x", raw[i]);
}

static void checks_done(struct check_state *st)
{
    struct mw_store *s = st->store;
    s->check_in_flight = false;
    if (s->closing || st->conn_gen != s->conn_gen || st->failed || !s->connected) {
        mw_free(st);
        return;
    }
    /* The epoch: gone or replaced since last seen means Redis lost modelwatch's data. */
    if (st->epoch_seen && s->epoch[0] && strcmp(st->epoch, s->epoch) != 0) {
        s->data_lost++;
        s->lost_at_ms = uv_now(s->loop) ? uv_now(s->loop) : 1;
        MW_LOG_ERROR("store",
                     "Redis lost modelwatch's data (its epoch key is gone or replaced: restarted "
                     "without persistence, or flushed): windows, profiles and dedup memory "
                     "applied before are gone",
                     "host=%s port=%lld epoch_was=%s epoch_now=%s losses=%llu", s->cfg->redis.host,
                     (long long)s->cfg->redis.port, s->epoch, st->epoch,
                     (unsigned long long)s->data_lost);
    } else if (st->epoch_seen && !s->epoch[0]) {
        MW_LOG_INFO("store", st->created ? "Redis epoch created" : "Redis epoch found", "epoch=%s",
                    st->epoch);
    }
    if (st->epoch_seen)
        memcpy(s->epoch, st->epoch, sizeof s->epoch);
    if (st->created)
        new_epoch(s); /* ours was taken: the next one created must differ */
    /* Durability. */
    if (s->cfg->redis.durability != MW_REDIS_DURABILITY_OFF) {
        char problem[sizeof s->problem];
        int durable = judge(st, problem, sizeof problem);
        bool changed = durable != s->durable || strcmp(problem, s->problem) != 0 ||
                       s->logged_conn_gen != s->conn_gen;
        bool was_refusing = refusing(s);
        s->durable = durable;
        memcpy(s->problem, problem, sizeof problem);
        if (changed && durable != 1) {
            if (s->cfg->redis.durability == MW_REDIS_DURABILITY_REFUSE)
                MW_LOG_ERROR("store",
                             "Redis would lose what is applied: refusing to apply anything until "
                             "it is fixed (redis.durability: refuse)",
                             "host=%s port=%lld problem=\"%s\"", s->cfg->redis.host,
                             (long long)s->cfg->redis.port, problem);
            else
                MW_LOG_ERROR("store",
                             "Redis would lose what is applied: a restart or eviction loses or "
                             "double-counts data (redis.durability: warn)",
                             "host=%s port=%lld problem=\"%s\"", s->cfg->redis.host,
                             (long long)s->cfg->redis.port, problem);
        } else if (changed && was_refusing) {
            MW_LOG_INFO("store", "Redis is durable now: applying again", "host=%s port=%lld",
                        s->cfg->redis.host, (long long)s->cfg->redis.port);
        }
        s->logged_conn_gen = s->conn_gen;
    }
    mw_free(st);
}

static void check_reply_done(struct check_state *st)
{
    if (--st->pending == 0)
        checks_done(st);
}

static void copy_config_value(const redisReply *r, char *out, size_t size, bool *refused)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        *refused = true;
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->str)
        snprintf(out, size, "%s", r->element[1]->str);
    else
        snprintf(out, size, "?");
}

static void on_config_reply(redisAsyncContext *ctx, void *r, void *arg)
{
    struct check_state *st = arg;
    redisReply *reply = r;
    (void)ctx;
    if (!reply)
        st->failed = true;
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->str &&
             strcasecmp(reply->element[0]->str, "appendonly") == 0)
        copy_config_value(reply, st->appendonly, sizeof st->appendonly, &st->config_refused);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->str &&
             strcasecmp(reply->element[0]->str, "appendfsync") == 0)
        copy_config_value(reply, st->appendfsync, sizeof st->appendfsync, &st->config_refused);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->str &&
             strcasecmp(reply->element[0]->str, "maxmemory-policy") == 0)
        copy_config_value(reply, st->policy, sizeof st->policy, &st->config_refused);
    else
        st->config_refused = true;
    check_reply_done(st);
}

static void on_epoch_set(redisAsyncContext *ctx, void *r, void *arg)
{
    struct check_state *st = arg;
    redisReply *reply = r;
    (void)ctx;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        st->failed = true;
    else
        st->created = reply->type == REDIS_REPLY_STATUS;
    check_reply_done(st);
}

static void on_epoch_get(redisAsyncContext *ctx, void *r, void *arg)
{
    struct check_state *st = arg;
    redisReply *reply = r;
    (void)ctx;
    if (!reply || reply->type != REDIS_REPLY_STRING)
        st->failed = true;
    else {
        snprintf(st->epoch, sizeof st->epoch, "%s", reply->str);
        st->epoch_seen = true;
    }
    check_reply_done(st);
}

/* Queue the checks on the current connection: CONFIG GET of the three settings, then the epoch
 * (SET NX with a fresh value, GET). Replies arrive in order; checks_done judges them all. */
static void run_checks(struct mw_store *s)
{
    if (!s->ctx || !s->connected || s->check_in_flight || s->closing)
        return;
    struct check_state *st = mw_calloc(1, sizeof *st);
    if (!st)
        return;
    st->store = s;
    st->conn_gen = s->conn_gen;
    snprintf(st->appendonly, sizeof st->appendonly, "?");
    snprintf(st->appendfsync, sizeof st->appendfsync, "?");
    snprintf(st->policy, sizeof st->policy, "?");
    static const char *const settings[] = {"appendonly", "appendfsync", "maxmemory-policy"};
    bool check_config = s->cfg->redis.durability != MW_REDIS_DURABILITY_OFF;
    st->pending = 1; /* released below, once everything is queued */
    for (size_t i = 0; check_config && i < 3; i++)
        if (redisAsyncCommand(s->ctx, on_config_reply, st, "CONFIG GET %s", settings[i]) ==
            REDIS_OK)
            st->pending++;
    if (redisAsyncCommand(s->ctx, on_epoch_set, st, "SET %s %s NX", MW_SCHEMA_EPOCH_KEY,
                          s->new_epoch) == REDIS_OK)
        st->pending++;
    if (redisAsyncCommand(s->ctx, on_epoch_get, st, "GET %s", MW_SCHEMA_EPOCH_KEY) == REDIS_OK)
        st->pending++;
    s->check_in_flight = true;
    check_reply_done(st);
}

static void on_check_timer(uv_timer_t *t)
{
    run_checks(t->data);
}

int mw_store_durable(const struct mw_store *s)
{
    return s->durable;
}

uint64_t mw_store_data_lost(const struct mw_store *s)
{
    return s->data_lost;
}

bool mw_store_ready(const struct mw_store *s, const char **why)
{
    const char *reason = NULL;
    uint64_t hold = (uint64_t)s->cfg->redis.data_loss_unready_ms;
    if (!s->connected)
        reason = "not connected to Redis";
    else if (!s->answering)
        reason = "Redis does not answer";
    else if (refusing(s))
        reason = "Redis would lose what is applied (redis.durability: refuse)";
    else if (s->lost_at_ms && (hold == 0 || uv_now(s->loop) - s->lost_at_ms < hold))
        reason = "Redis lost modelwatch's data";
    if (why)
        *why = reason;
    return reason == NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mw_store *s = h->data;
    if (--s->timers_open > 0)
        return;
    s->timer_closed = true;
    if (!s->ctx)
        store_free(s);
}

static void store_free(struct mw_store *s)
{
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    mw_free(s->password);
    mw_free(s);
}

void mw_store_destroy(struct mw_store *s)
{
    if (!s)
        return;
    s->closing = true;
    if (s->ctx)
        redisAsyncDisconnect(s->ctx);
    uv_timer_stop(&s->retry_timer);
    s->timers_open = 3;
    uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->check_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->watchdog_timer, on_timer_closed);
}

uint64_t mw_store_unanswered(const struct mw_store *s)
{
    return s->unanswered;
}

bool mw_store_connected(const struct mw_store *s)
{
    return s->connected && s->answering;
}

uint64_t mw_store_commands_sent(const struct mw_store *s)
{
    return s->commands_sent;
}

int mw_store_add_script(struct mw_store *s, const char *text, size_t len, const char *sha1)
{
    if (strlen(sha1) != 40 || strspn(sha1, "0123456789abcdef") != 40)
        return MW_EINVAL;
    for (size_t i = 0; i < s->n_scripts; i++)
        if (strcmp(s->scripts[i].sha1, sha1) == 0)
            return 0;
    if (s->n_scripts == MAX_SCRIPTS)
        return MW_EFULL;
    struct script *sc = &s->scripts[s->n_scripts++];
    sc->text = text;
    sc->len = len;
    memcpy(sc->sha1, sha1, 41);
    if (s->ctx)
        load_script(s, sc);
    return 0;
}

uint64_t mw_store_script_reloads(const struct mw_store *s)
{
    return s->script_reloads;
}

/* The registered script an EVALSHA command runs, or NULL. */
static const struct script *script_of(const struct mw_store *s, const struct mw_redis_cmd *cmd)
{
    if (cmd->argc < 2 || strcasecmp(cmd->argv[0], "EVALSHA") != 0)
        return NULL;
    for (size_t i = 0; i < s->n_scripts; i++)
        if (strcasecmp(s->scripts[i].sha1, cmd->argv[1]) == 0)
            return &s->scripts[i];
    return NULL;
}

struct command_state {
    mw_store_reply_fn cb;
    void *arg;
    struct mw_store *store;
    /* EVALSHA of a registered script: the command as sent, to send again after NOSCRIPT. */
    const struct script *script;
    char *formatted;
    size_t formatted_len;
    uint64_t load_gen; /* store->load_gen when the command was queued */
    unsigned resends;
};

static void free_command_state(struct command_state *st)
{
    if (st->formatted)
        redisFreeCommand(st->formatted);
    mw_free(st);
}

static bool is_noscript(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str &&
           strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

static void on_command_reply(redisAsyncContext *ctx, void *r, void *arg);

/* After NOSCRIPT: load the script again (unless a load was queued since the command was) and
 * queue the same command after it. Returns true when the command is on its way again. */
static bool resend_after_noscript(redisAsyncContext *ctx, struct command_state *st)
{
    struct mw_store *s = st->store;
    if (st->resends == NOSCRIPT_RESENDS || !st->script || s->ctx != ctx || !s->connected)
        return false;
    st->resends++;
    if (s->load_gen == st->load_gen) {
        s->script_reloads++;
        MW_LOG_WARN("store", "Redis lost a script (restarted or flushed): loading it again",
                    "sha1=%s", st->script->sha1);
        load_script(s, st->script);
    }
    st->load_gen = s->load_gen;
    if (redisAsyncFormattedCommand(ctx, on_command_reply, st, st->formatted, st->formatted_len) !=
        REDIS_OK)
        return false;
    s->commands_sent++;
    return true;
}

static void on_command_reply(redisAsyncContext *ctx, void *r, void *arg)
{
    struct command_state *st = arg;
    redisReply *reply = r;
    if (is_noscript(reply) && resend_after_noscript(ctx, st))
        return;
    st->cb(reply, st->arg);
    free_command_state(st);
}

int mw_store_command(struct mw_store *s, const struct mw_redis_cmd *cmd, mw_store_reply_fn cb,
                     void *arg)
{
    if (!s->connected || !s->ctx || refusing(s))
        return MW_EREDIS;
    struct command_state *st = mw_calloc(1, sizeof *st);
    if (!st)
        return MW_ENOMEM;
    st->cb = cb;
    st->arg = arg;
    st->store = s;
    st->script = script_of(s, cmd);
    st->load_gen = s->load_gen;
    int sent;
    if (st->script) {
        int len = redisFormatCommandArgv(&st->formatted, (int)cmd->argc, (const char **)cmd->argv,
                                         cmd->argvlen);
        if (len < 0) {
            mw_free(st);
            return MW_ENOMEM;
        }
        st->formatted_len = (size_t)len;
        sent = redisAsyncFormattedCommand(s->ctx, on_command_reply, st, st->formatted,
                                          st->formatted_len);
    } else {
        sent = redisAsyncCommandArgv(s->ctx, on_command_reply, st, (int)cmd->argc,
                                     (const char **)cmd->argv, cmd->argvlen);
    }
    if (sent != REDIS_OK) {
        free_command_state(st);
        return MW_EREDIS;
    }
    s->commands_sent++;
    return 0;
}

int mw_store_commandv(struct mw_store *s, mw_store_reply_fn cb, void *arg, size_t argc,
                      const char *const *argv)
{
    struct mw_redis_cmd cmd;
    mw_redis_cmd_init(&cmd);
    int rc = 0;
    for (size_t i = 0; !rc && i < argc; i++)
        rc = mw_redis_cmd_add(&cmd, argv[i]);
    rc = rc ? rc : mw_store_command(s, &cmd, cb, arg);
    mw_redis_cmd_free(&cmd);
    return rc;
}

static void exec_reply(struct exec_state *st, redisReply *reply)
{
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        if (reply && st->rc == 0)
            MW_LOG_ERROR("store", "Redis command failed", "error=\"%.200s\"", reply->str);
        st->rc = MW_EREDIS;
    }
    if (--st->pending == 0) {
        st->done(st->rc, st->arg);
        mw_free(st);
    }
}

static void on_exec_reply(redisReply *reply, void *arg)
{
    struct exec_slot *slot = arg;
    struct exec_state *st = slot->exec;
    if (st->each)
        st->each(slot->index, reply, st->arg);
    exec_reply(st, reply);
}

int mw_store_exec_each(struct mw_store *s, const struct mw_redis_cmd *cmds, size_t n,
                       mw_store_each_fn each, mw_store_done_fn done, void *arg)
{
    if (!s->connected || !s->ctx || refusing(s))
        return MW_EREDIS;
    struct exec_state *st = mw_calloc(1, sizeof *st + n * sizeof st->slots[0]);
    if (!st)
        return MW_ENOMEM;
    st->pending = n + 1; /* +1 guards against completion before every command is queued */
    st->each = each;
    st->done = done;
    st->arg = arg;
    for (size_t i = 0; i < n; i++) {
        st->slots[i] = (struct exec_slot){.exec = st, .index = i};
        if (mw_store_command(s, &cmds[i], on_exec_reply, &st->slots[i]) != 0) {
            if (each)
                each(i, NULL, arg);
            st->rc = MW_EREDIS;
            st->pending--;
        }
    }
    exec_reply(st, &(redisReply){.type = REDIS_REPLY_STATUS});
    return 0;
}

int mw_store_exec(struct mw_store *s, const struct mw_redis_cmd *cmds, size_t n,
                  mw_store_done_fn done, void *arg)
{
    return mw_store_exec_each(s, cmds, n, NULL, done, arg);
}
