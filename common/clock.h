/*
 * clock.h — time helpers. Monotonic time measures durations and schedules (never goes back);
 * wall time stamps events and windows (Unix epoch).
 */
#ifndef MW_COMMON_CLOCK_H
#define MW_COMMON_CLOCK_H

#include <stdint.h>
#include <stddef.h>

uint64_t mw_clock_mono_ns(void);
uint64_t mw_clock_mono_ms(void);
int64_t mw_clock_wall_ms(void);
/* Format a Unix epoch time in ms as RFC 3339 UTC with milliseconds ("2026-11-26T18:25:54.123Z")
 * into buf (at least 25 bytes). Returns buf. */
char *mw_clock_format_rfc3339(int64_t wall_ms, char *buf, size_t size);
/*
 * Parse a point in time given by a person or a query string into Unix epoch ms. Accepted:
 *   RFC 3339 with a zone: "2026-12-01T17:00:00Z", "2026-12-01T18:00:00.250+01:00" (a fraction
 *     beyond milliseconds is truncated);
 *   a non-negative decimal number, read by magnitude: below 1e11 it counts Unix seconds and may
 *     have a fraction ("1764608400", "1764608400.25"); from 1e11 up it counts Unix milliseconds
 *     and must be an integer ("1764608400250"). 1e11 ms is March 1973 and 1e11 s the year 5138,
 *     so every time between 1973 and 5138 reads one way only.
 * Times after 9999-12-31 are refused. Returns 0 or MW_EINVAL (*out_ms untouched).
 */
int mw_clock_parse_time(const char *text, int64_t *out_ms);
#define MW_CLOCK_SECONDS_BELOW 100000000000LL /* 1e11: the seconds/milliseconds boundary */

/* Start of the tumbling window of width `width_ms` that holds `t_ms` (floor, also for t < 0). */
int64_t mw_clock_window_start(int64_t t_ms, int64_t width_ms);

#endif
