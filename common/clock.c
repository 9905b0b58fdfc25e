/* clock.c — monotonic and wall clocks, RFC 3339 formatting, time parsing, window alignment. */
#include "clock.h"

#include "error.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
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

#define MAX_TIME_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* `n` decimal digits at *p into *out; advances *p. False unless all n are digits. */
static bool take_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Up to three digits of a fraction as milliseconds; further digits are read and dropped. */
static int take_fraction_ms(const char **p)
{
    int ms = 0, scale = 100;
    for (; isdigit((unsigned char)**p); (*p)++, scale /= 10)
        ms += scale > 0 ? (**p - '0') * scale : 0;
    return ms;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int parse_rfc3339(const char *p, int64_t *out_ms)
{
    static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year, mon, day, hour, min, sec, ms = 0, off_h = 0, off_m = 0, sign = 0;
    if (!take_digits(&p, 4, &year) || *p++ != '-' || !take_digits(&p, 2, &mon) || *p++ != '-' ||
        !take_digits(&p, 2, &day) || (*p != 'T' && *p != 't'))
        return MW_EINVAL;
    p++;
    if (!take_digits(&p, 2, &hour) || *p++ != ':' || !take_digits(&p, 2, &min) || *p++ != ':' ||
        !take_digits(&p, 2, &sec))
        return MW_EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return MW_EINVAL;
        ms = take_fraction_ms(&p);
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!take_digits(&p, 2, &off_h) || *p++ != ':' || !take_digits(&p, 2, &off_m) ||
            off_h > 23 || off_m > 59)
            return MW_EINVAL;
    } else {
        return MW_EINVAL; /* a time without a zone means different things in different places */
    }
    if (*p || mon < 1 || mon > 12 || day < 1 ||
        day > days_in_month[mon - 1] + (mon == 2 && leap_year(year)) || hour > 23 || min > 59 ||
        sec > 59)
        return MW_EINVAL;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm) - sign * (off_h * 3600 + off_m * 60);
    int64_t t = secs * 1000 + ms;
    if (t < 0 || t > MAX_TIME_MS)
        return MW_EINVAL;
    *out_ms = t;
    return 0;
}

static int parse_epoch_number(const char *p, int64_t *out_ms)
{
    int64_t whole = 0;
    const char *start = p;
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > MAX_TIME_MS / 10)
            return MW_EINVAL;
        whole = whole * 10 + (*p - '0');
    }
    if (p == start)
        return MW_EINVAL;
    int ms = 0;
    bool fraction = *p == '.';
    if (fraction) {
        p++;
        if (!isdigit((unsigned char)*p))
            return MW_EINVAL;
        ms = take_fraction_ms(&p);
    }
    if (*p)
        return MW_EINVAL;
    int64_t t;
    if (whole < MW_CLOCK_SECONDS_BELOW)
        t = whole * 1000 + ms;
    else if (fraction)
        return MW_EINVAL; /* milliseconds are whole */
    else
        t = whole;
    if (t > MAX_TIME_MS)
        return MW_EINVAL;
    *out_ms = t;
    return 0;
}

int mw_clock_parse_time(const char *text, int64_t *out_ms)
{
    if (!text || !*text)
        return MW_EINVAL;
    /* A date starts with four digits and a dash; a number never has a dash. */
    if (strchr(text, '-') || strchr(text, 'T') || strchr(text, 't'))
        return parse_rfc3339(text, out_ms);
    return parse_epoch_number(text, out_ms);
}
