/* clock.c — monotonic and wall clocks, RFC 3339 formatting, window alignment. */
#include "clock.h"

#include <stdio.h>
#include <time.h>

uint64_t mw_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mw_clock_mono_ms(void)
{
    return mw_clock_mono_ns() / 1000000u;
}

int64_t mw_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *mw_clock_format_rfc3339(int64_t wall_ms, char *buf, size_t size)
{
    time_t secs = (time_t)(wall_ms / 1000);
    int ms = (int)(wall_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    return buf;
}

int64_t mw_clock_window_start(int64_t t_ms, int64_t width_ms)
{
    int64_t rem = t_ms % width_ms;
    if (rem < 0)
        rem += width_ms;
    return t_ms - rem;
}
