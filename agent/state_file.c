/* state_file.c — a shared mapping that outlives the process to account for unsealed events and
 * for how far each client's stream was received. */
#include "state_file.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC 0x6d7773746174653bULL /* "mwstate;" */

/* Stores to the mapping must reach it in program order: a kill stops the process between two
 * instructions, and the journal is only sound if the compiler did not reorder around it. */
static void store_order(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

/* Finish an update a killed process had journaled but maybe not completed. */
static void redo_journal(struct mw_state_counts *c)
{
    struct mw_state_journal *j = &c->journal;
    if (!j->armed || j->slot >= MW_STATE_MAX_CLIENTS) {
        j->armed = 0;
        return;
    }
    struct mw_state_client *cl = &c->clients[j->slot];
    cl->client_id = j->client_id;
    cl->messages = j->messages;
    cl->events = j->events;
    c->accepted = j->accepted;
    store_order();
    j->armed = 0;
}

/* Map the file at `path`; on success sf->counts and sf->fd are set, and *full_size says
 * whether the file already had room for the client table. */
static int map_file(struct mw_state_file *sf, const char *path, bool *full_size)
{
    const char *op = "open";
    struct stat st;
    sf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (sf->fd < 0)
        goto fail;
    op = "stat";
    if (fstat(sf->fd, &st) != 0)
        goto fail;
    op = "resize"; /* a new file, or one from an agent before the client table */
    *full_size = st.st_size >= (off_t)sizeof(struct mw_state_counts);
    if (!*full_size && ftruncate(sf->fd, sizeof(struct mw_state_counts)) != 0)
        goto fail;
    op = "map";
    void *map =
        mmap(NULL, sizeof(struct mw_state_counts), PROT_READ | PROT_WRITE, MAP_SHARED, sf->fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    sf->counts = map;
    return 0;
fail:
    MW_LOG_WARN("agent", "cannot use the state file; losses across a restart will not be counted",
                "file=%s op=%s error=\"%s\"", path, op, strerror(errno));
    if (sf->fd >= 0)
        close(sf->fd);
    sf->fd = -1;
    return MW_EIO;
}

int mw_state_file_open(struct mw_state_file *sf, const char *path, uint64_t *lost_before)
{
    *lost_before = 0;
    sf->counts = NULL;
    sf->has_history = false;
    bool full_size = false;
    int rc = map_file(sf, path, &full_size);
    if (rc) {
        void *map = mmap(NULL, sizeof(struct mw_state_counts), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED)
            return MW_ENOMEM;
        sf->counts = map;
    }
    struct mw_state_counts *c = sf->counts;
    if (c->magic == STATE_MAGIC) {
        sf->has_history = full_size;
        redo_journal(c);
        if (c->accepted >= c->sealed)
            *lost_before = c->accepted - c->sealed;
    } else {
        memset(c, 0, sizeof *c);
    }
    c->magic = STATE_MAGIC;
    c->accepted = 0;
    c->sealed = 0;
    return rc;
}

void mw_state_file_close(struct mw_state_file *sf)
{
    if (!sf || !sf->counts)
        return;
    munmap(sf->counts, sizeof(struct mw_state_counts));
    if (sf->fd >= 0)
        close(sf->fd);
    sf->counts = NULL;
    sf->fd = -1;
}

int mw_state_file_find_client(const struct mw_state_file *sf, uint64_t client_id, bool *known,
                              uint64_t *evicted_id)
{
    *known = false;
    *evicted_id = 0;
    if (!sf->counts)
        return -1;
    const struct mw_state_client *cl = sf->counts->clients;
    int free_slot = -1, oldest = 0;
    for (int i = 0; i < MW_STATE_MAX_CLIENTS; i++) {
        if (cl[i].client_id == client_id) {
            *known = true;
            return i;
        }
        if (cl[i].client_id == 0 && free_slot < 0)
            free_slot = i;
        if (cl[i].last_seen_ms < cl[oldest].last_seen_ms)
            oldest = i;
    }
    if (free_slot >= 0)
        return free_slot;
    *evicted_id = cl[oldest].client_id;
    return oldest;
}

struct mw_state_client mw_state_file_client(const struct mw_state_file *sf, int slot,
                                            uint64_t client_id)
{
    if (!sf->counts || slot < 0 || slot >= MW_STATE_MAX_CLIENTS ||
        sf->counts->clients[slot].client_id != client_id)
        return (struct mw_state_client){.client_id = client_id};
    return sf->counts->clients[slot];
}

void mw_state_file_progress(struct mw_state_file *sf, int slot, uint64_t client_id,
                            uint64_t messages, uint64_t events, uint64_t accepted)
{
    struct mw_state_counts *c = sf->counts;
    if (!c || slot < 0 || slot >= MW_STATE_MAX_CLIENTS)
        return;
    struct mw_state_journal *j = &c->journal;
    j->slot = (uint64_t)slot;
    j->client_id = client_id;
    j->messages = messages;
    j->events = events;
    j->accepted = c->accepted + accepted;
    store_order();
    j->armed = 1; /* from here on the update happened, whatever follows */
    store_order();
    redo_journal(c);
}

void mw_state_file_seen(struct mw_state_file *sf, int slot, uint64_t now_ms)
{
    if (sf->counts && slot >= 0 && slot < MW_STATE_MAX_CLIENTS)
        sf->counts->clients[slot].last_seen_ms = now_ms;
}
