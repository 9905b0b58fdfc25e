/* grid.c — regions and slots of a sorted grid of cut points (see grid.h). */
#include "grid.h"

#include <math.h>

size_t mw_grid_region(const double *cuts, size_t n_cuts, double x)
{
    if (isnan(x) || (!cuts && n_cuts > 0))
        return MW_GRID_NONE;
    /* Upper bound: the first cut > x; everything before it is <= x. */
    size_t lo = 0, hi = n_cuts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cuts[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t mw_grid_slot(const double *cuts, size_t n_cuts, double ref_min, double ref_max, double x)
{
    if (isnan(x) || (!cuts && n_cuts > 0))
        return MW_GRID_NONE;
    if (x < ref_min)
        return 0;
    if (x > ref_max)
        return n_cuts + 2;
    return 1 + mw_grid_region(cuts, n_cuts, x);
}
