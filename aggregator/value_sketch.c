/* value_sketch.c — logarithmic buckets of a numeric feature's values (see value_sketch.h). */
#include "value_sketch.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double log_gamma(void)
{
    static double cached;
    if (cached == 0)
        cached = log((1 + MW_SKETCH_ALPHA) / (1 - MW_SKETCH_ALPHA));
    return cached;
}

struct mw_sketch_bucket mw_sketch_bucket_of(double x)
{
    struct mw_sketch_bucket b = {0, 0};
    double m = fabs(x);
    if (!(m >= MW_SKETCH_ZERO))
        return b; /* zero bucket (NaN never reaches here: callers pass finite values) */
    b.sign = x > 0 ? 1 : -1;
    double i = ceil(log(m) / log_gamma());
    /* |log(DBL_MAX)| / log_gamma is about 35,000: an int holds every index. */
    b.index = (int)i;
    return b;
}

void mw_sketch_bucket_name(struct mw_sketch_bucket b, char *out, size_t size)
{
    /* Without printf: it is called once per numeric value on the ingest path. */
    char text[16];
    size_t n = 0;
    text[n++] = 'k';
    if (b.sign == 0) {
        text[n++] = 'z';
    } else {
        text[n++] = b.sign > 0 ? 'p' : 'n';
        unsigned magnitude = b.index < 0 ? 0u - (unsigned)b.index : (unsigned)b.index;
        if (b.index < 0)
            text[n++] = '-';
        char digits[12];
        size_t d = 0;
        do {
            digits[d++] = (char)('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude);
        while (d)
            text[n++] = digits[--d];
    }
    if (n >= size)
        n = size ? size - 1 : 0;
    memcpy(out, text, n);
    if (size)
        out[n] = '\0';
}

bool mw_sketch_bucket_parse(const char *suffix, struct mw_sketch_bucket *out)
{
    if (suffix[0] != 'k')
        return false;
    if (suffix[1] == 'z' && suffix[2] == '\0') {
        *out = (struct mw_sketch_bucket){0, 0};
        return true;
    }
    if (suffix[1] != 'p' && suffix[1] != 'n')
        return false;
    char *end;
    long i = strtol(suffix + 2, &end, 10);
    if (end == suffix + 2 || *end != '\0' || i < -100000 || i > 100000)
        return false;
    *out = (struct mw_sketch_bucket){suffix[1] == 'p' ? 1 : -1, (int)i};
    return true;
}

void mw_sketch_bucket_bounds(struct mw_sketch_bucket b, double *lo, double *hi, double *value)
{
    if (b.sign == 0) {
        *lo = -MW_SKETCH_ZERO;
        *hi = MW_SKETCH_ZERO;
        *value = 0;
        return;
    }
    double gamma = exp(log_gamma());
    double upper = exp(b.index * log_gamma()), lower = upper / gamma;
    double rep = 2 * upper / (gamma + 1);
    if (b.sign > 0) {
        *lo = lower;
        *hi = upper;
        *value = rep;
    } else {
        *lo = -upper;
        *hi = -lower;
        *value = -rep;
    }
}
