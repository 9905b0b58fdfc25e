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
/* Start of the tumbling window of width `width_ms` that holds `t_ms` (floor, also for t < 0). */
int64_t mw_clock_window_start(int64_t t_ms, int64_t width_ms);

#endif
