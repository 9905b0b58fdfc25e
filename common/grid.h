/*
 * grid.h — where a value falls on a sorted grid of cut points: the one definition that
 * `modelwatch-ctl profile build` counts reference values by and the aggregator bins window
 * values by, so the two can never disagree.
 *
 * Regions of cuts c_1 < ... < c_k: region i holds the values with exactly i cuts <= x, so
 * region 0 is (-inf, c_1), region i is [c_i, c_{i+1}), region k is [c_k, +inf).
 * Slots of a profile's range [min, max] with its cuts inside (aggregator/drift.h):
 * slot 0 below min, slot 1 + region inside, slot k + 2 above max.
 */
#ifndef MW_COMMON_GRID_H
#define MW_COMMON_GRID_H

#include <stddef.h>
#include <stdint.h>

/* The answer for a value that belongs to no region or slot (NaN, or NULL cuts). */
#define MW_GRID_NONE SIZE_MAX

/* Region of x: the number of cuts <= x (binary search). -inf is in region 0, +inf in region
 * n_cuts. `cuts` must be strictly increasing (not checked: this is the hot path); n_cuts = 0
 * means one region, 0. MW_GRID_NONE for NaN x, or NULL cuts with n_cuts > 0. */
size_t mw_grid_region(const double *cuts, size_t n_cuts, double x);

/* Slot of x, in 0..n_cuts + 2: 0 below ref_min, n_cuts + 2 above ref_max, else 1 + its region.
 * `cuts` must lie strictly inside (ref_min, ref_max). MW_GRID_NONE as above. */
size_t mw_grid_slot(const double *cuts, size_t n_cuts, double ref_min, double ref_max, double x);

#endif
