/* client_sampling.c — follow the agent's published sampling rules (see client_sampling.h). */
#include "client_sampling.h"

#include "alloc.h"
#include "error.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* How often the sender looks at the file: a reload or an agent restart reaches clients within
 * about this long (the agent copes with events encoded under the old rules meanwhile). */
#define CHECK_NS (1000u * 1000 * 1000)

struct retired_rules {
    struct retired_rules *next;
    struct mw_sampling_rules *rules;
};

/* Make `fresh` (may be NULL) current; the previous rules are kept until free. */
static void publish(struct mw_client_sampling *s, struct mw_sampling_rules *fresh)
{
    struct mw_sampling_rules *old = atomic_load_explicit(&s->current, memory_order_relaxed);
    if (old) {
        struct retired_rules *r = mw_calloc(1, sizeof *r);
        if (!r) {
            mw_free(fresh); /* keep the old rules rather than free what a caller may be reading */
            return;
        }
        r->rules = old;
        r->next = s->retired;
        s->retired = r;
    }
    atomic_store_explicit(&s->current, fresh, memory_order_release);
}

static bool same_file(const struct mw_client_sampling *s, const struct stat *st)
{
    return s->seen && s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
           s->mtime.tv_sec == st->st_mtim.tv_sec && s->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static bool older(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Look at the file now: read it when it changed, drop the rules when it is gone. A file that
 * does not parse counts as no file: every event goes whole, which an agent of any version
 * takes. So does a file older than the socket: an agent writes its rules after it binds the
 * socket, so such a file was left by an agent killed before it could remove it, and the agent
 * now listening may be one that predates the file (and would ship a payload-less event its
 * own rate selects). */
static void look(struct mw_client_sampling *s)
{
    struct stat st, sock;
    if (stat(s->path, &st) != 0 ||
        (stat(s->socket_path, &sock) == 0 && older(&st.st_mtim, &sock.st_mtim))) {
        if (s->seen || atomic_load_explicit(&s->current, memory_order_relaxed))
            publish(s, NULL);
        s->seen = false;
        return;
    }
    if (same_file(s, &st))
        return;
    char err[256];
    struct mw_sampling_rules *fresh = mw_sampling_rules_read(s->path, err, sizeof err);
    s->seen = true;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    publish(s, fresh);
}

int mw_client_sampling_init(struct mw_client_sampling *s, const char *ipc_path)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->current, NULL);
    if (!ipc_path)
        return 0;
    size_t n = strlen(ipc_path) + sizeof MW_SAMPLING_RULES_SUFFIX;
    s->path = mw_malloc(n);
    s->socket_path = mw_strdup(ipc_path);
    if (!s->path || !s->socket_path) {
        mw_free(s->path);
        mw_free(s->socket_path);
        s->path = s->socket_path = NULL;
        return MW_ENOMEM;
    }
    memcpy(s->path, ipc_path, n - sizeof MW_SAMPLING_RULES_SUFFIX);
    memcpy(s->path + n - sizeof MW_SAMPLING_RULES_SUFFIX, MW_SAMPLING_RULES_SUFFIX,
           sizeof MW_SAMPLING_RULES_SUFFIX);
    look(s);
    return 0;
}

void mw_client_sampling_refresh(struct mw_client_sampling *s, uint64_t now_ns)
{
    if (!s->path || now_ns - s->checked_ns < CHECK_NS)
        return;
    s->checked_ns = now_ns;
    look(s);
}

bool mw_client_sampling_decide(const struct mw_client_sampling *s, const struct mw_event *ev,
                               int64_t *count_bucket_ms)
{
    const struct mw_sampling_rules *rules =
        atomic_load_explicit(&s->current, memory_order_acquire);
    *count_bucket_ms = 0;
    if (!rules)
        return false;
    if (!mw_sampling_rule_omits(mw_sampling_rules_find(rules, ev->model), ev->prediction_id,
                                ev->status == MW_STATUS_ERROR, ev->latency_us))
        return false;
    *count_bucket_ms = rules->count_bucket_ms;
    return true;
}

bool mw_client_sampling_omits(const struct mw_client_sampling *s, const struct mw_event *ev)
{
    int64_t count_bucket_ms;
    return mw_client_sampling_decide(s, ev, &count_bucket_ms);
}

void mw_client_sampling_free(struct mw_client_sampling *s)
{
    mw_free(atomic_load_explicit(&s->current, memory_order_relaxed));
    atomic_store_explicit(&s->current, NULL, memory_order_relaxed);
    for (struct retired_rules *r = s->retired, *next; r; r = next) {
        next = r->next;
        mw_free(r->rules);
        mw_free(r);
    }
    s->retired = NULL;
    mw_free(s->path);
    mw_free(s->socket_path);
    s->path = s->socket_path = NULL;
}
