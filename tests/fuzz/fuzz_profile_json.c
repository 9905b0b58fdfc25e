/*
 * fuzz_profile_json.c — a reference profile document as the aggregator reads it from Redis
 * (pushed by modelwatch-ctl or by anyone with write access): parsed and validated, then looked
 * up as drift binning does, by feature and by category.
 */
#include "fuzz.h"
#include "profile.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    struct mw_profile *p = NULL;
    char err[256] = "";
    if (mw_profile_parse((const char *)data, size, &p, err, sizeof err) != 0) {
        if (p || !err[0])
            abort(); /* refused: nothing to free, and a reason */
        return 0;
    }
    for (size_t i = 0; i < p->n_features; i++) {
        const struct mw_profile_feature *f = &p->features[i];
        if (mw_profile_find(p, f->name) != f)
            abort(); /* features are sorted by name and unique */
        for (size_t j = 0; j < f->n_categories; j++)
            if (mw_profile_category(f, f->categories[j]) != (long)j)
                abort();
    }
    mw_profile_find(p, "no such feature");
    mw_profile_free(p);
    return 0;
}
