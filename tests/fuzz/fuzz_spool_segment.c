/*
 * fuzz_spool_segment.c — a spool segment file as the agent finds it after a restart.
 *
 * The input becomes the one segment file of a spool directory; the spool is opened (every
 * entry validated, corrupt regions skipped, a torn tail truncated), each entry is handed out
 * and acknowledged as a delivery would, and the spool closed. The reader works on files by
 * design (pread, one entry in memory at a time), so its input here is a real file, in a
 * private directory on a memory file system when there is one.
 */
#include "error.h"
#include "fuzz.h"
#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEGMENT_NAME "000000000001.seg"
#define MAX_ENTRIES 100000 /* more than a segment of this size can hold */

static char dir_path[256];

/* Leave the directory empty for the next input. */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        abort();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_dir(void)
{
    empty_dir(dir_path);
    rmdir(dir_path);
}

static const char *spool_dir(void)
{
    if (!dir_path[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir_path, sizeof dir_path, "%s/mw-fuzz-spool-XXXXXX", base);
        if (!mkdtemp(dir_path))
            abort();
        atexit(remove_dir);
    }
    return dir_path;
}

static void write_segment(const char *dir, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/" SEGMENT_NAME, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    const char *dir = spool_dir();
    write_segment(dir, data, size);
    struct mw_spool_options o = {
        .dir = dir, .max_bytes = 64u << 20, .segment_bytes = 16u << 20, .fsync = false};
    struct mw_spool *s = NULL;
    if (mw_spool_open(&o, &s) != 0)
        abort(); /* a corrupt segment is skipped or truncated, never fatal */
    struct mw_spool_entry e;
    uint64_t entries = mw_spool_stats(s)->entries, handed_out = 0;
    while (mw_spool_next(s, &e) == 0) {
        if (e.key_len > MW_SPOOL_MAX_KEY_BYTES || e.payload_len > MW_SPOOL_MAX_PAYLOAD_BYTES ||
            ++handed_out > MAX_ENTRIES)
            abort();
        if (mw_spool_ack(s, e.id) != 0)
            abort(); /* nothing changed the file since it was validated */
    }
    if (handed_out != entries || !mw_spool_empty(s))
        abort(); /* every validated entry is handed out once */
    mw_spool_close(s);
    empty_dir(dir);
    return 0;
}
