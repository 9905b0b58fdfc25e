/*
 * replay.c — runs a fuzz target over files, without libFuzzer.
 *
 * Usage: replay_<target> DIR...  Every regular file of every DIR (in name order) is read and
 * handed to LLVMFuzzerTestOneInput once. So the committed corpus and every input that once
 * crashed a decoder are replayed by each build's `meson test --suite fuzz`, sanitizers or not.
 * An empty or missing directory is a failure: a replay of nothing proves nothing.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return -1;
    }
    *size = (size_t)st.st_size;
    /* malloc(0) may return NULL; the target must also see a valid pointer for an empty file. */
    *data = malloc(*size ? *size : 1);
    if (!*data || fread(*data, 1, *size, f) != *size) {
        free(*data);
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replay every regular file of `dir`; returns the number replayed, or -1. */
static int replay_dir(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "%s: cannot list the directory\n", dir);
        return -1;
    }
    int replayed = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        uint8_t *data;
        size_t size;
        if (read_file(path, &data, &size) != 0) {
            fprintf(stderr, "%s: cannot read\n", path);
            replayed = -1;
            continue;
        }
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        if (replayed >= 0)
            replayed++;
    }
    free(names);
    return replayed;
}

int main(int argc, char **argv)
{
    int status = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int n = replay_dir(argv[i]);
        if (n <= 0) {
            fprintf(stderr, "%s: %s\n", argv[i], n == 0 ? "no input to replay" : "failed");
            status = 1;
            continue;
        }
        printf("%s: %d inputs replayed\n", argv[i], n);
    }
    return status;
}
