/*
 * fuzz_profile_csv.c — a CSV file given to `modelwatch-ctl profile build`: read (two or three
 * passes), profiled, encoded as the JSON document the aggregator stores, and that document
 * parsed back by the aggregator's reader, which must accept whatever the builder made.
 *
 * The builder reads a regular file several times, so the input goes into an in-memory file
 * (memfd) handed to mw_profile_build_fd. Small sample and category limits make the bounded
 * paths (sampling, the category sketch) reachable with small inputs.
 */
#include "fuzz.h"
#include "profile.h"
#include "profile_build.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int input_fd(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("profile.csv", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    return fd;
}

/* The document the builder made must be one the aggregator takes. */
static void check_document(const struct mw_built_profile *p)
{
    json_t *doc = mw_built_profile_to_json(p);
    if (!doc)
        abort();
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        abort();
    struct mw_profile *parsed = NULL;
    char err[256];
    if (mw_profile_parse(text, strlen(text), &parsed, err, sizeof err) != 0 ||
        parsed->n_features != p->n_features)
        abort();
    mw_profile_free(parsed);
    free(text);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    int fd = input_fd(data, size);
    struct mw_profile_build_options o;
    mw_profile_build_options_init(&o);
    o.model = "churn";
    o.version = "v1";
    o.created_ms = 1767225600000;
    o.sample_cap = 64;
    o.exact_categories = 16;
    o.max_categories = 8;
    struct mw_built_profile *p = NULL;
    char err[256];
    if (mw_profile_build_fd(fd, "profile.csv", &o, &p, err, sizeof err) != 0) {
        if (p || !err[0])
            abort(); /* refused: nothing built, and a reason */
        return 0;
    }
    check_document(p);
    mw_built_profile_destroy(p);
    return 0;
}
