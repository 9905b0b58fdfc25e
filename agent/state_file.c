/* state_file.c — a shared mapping that outlives the process to account for unsealed events. */
#include "state_file.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STATE_MAGIC 0x6d7773746174653bULL /* "mwstate;" */

int mw_state_file_open(struct mw_state_file *sf, const char *path, uint64_t *lost_before)
{
    *lost_before = 0;
    sf->counts = NULL;
    sf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (sf->fd < 0 || ftruncate(sf->fd, sizeof(struct mw_state_counts)) != 0) {
        MW_LOG_WARN("agent", "cannot open the state file; unsealed losses will not be counted",
                    "file=%s error=\"%s\"", path, strerror(errno));
        if (sf->fd >= 0)
            close(sf->fd);
        sf->fd = -1;
        return MW_EIO;
    }
    void *map =
        mmap(NULL, sizeof(struct mw_state_counts), PROT_READ | PROT_WRITE, MAP_SHARED, sf->fd, 0);
    if (map == MAP_FAILED) {
        MW_LOG_WARN("agent", "cannot map the state file", "file=%s error=\"%s\"", path,
                    strerror(errno));
        close(sf->fd);
        sf->fd = -1;
        return MW_EIO;
    }
    sf->counts = map;
    if (sf->counts->magic == STATE_MAGIC && sf->counts->accepted >= sf->counts->sealed)
        *lost_before = sf->counts->accepted - sf->counts->sealed;
    sf->counts->magic = STATE_MAGIC;
    sf->counts->accepted = 0;
    sf->counts->sealed = 0;
    return 0;
}

void mw_state_file_close(struct mw_state_file *sf)
{
    if (!sf || !sf->counts)
        return;
    munmap(sf->counts, sizeof(struct mw_state_counts));
    close(sf->fd);
    sf->counts = NULL;
    sf->fd = -1;
}
