/* Durations, ISO-8601 and clocks. */
#include "timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gp_parse_duration_ms(const char *text, int64_t *out_ms, char *err, size_t errlen)
{
    if (!text || !*text) {
        snprintf(err, errlen, "empty duration (use e.g. 500ms, 30s, 5m, 1h, 1d)");
        return -1;
    }
    /* Plain decimals only: strtod would also take "0x10", "1e3" and "inf". */
    const char *p = text;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.' && isdigit((unsigned char)p[1]))
        for (p++; isdigit((unsigned char)*p);)
            p++;
    char *end = NULL;
    double v = strtod(text, &end);
    if (end != p) end = (char *)text; /* strtod read past the plain decimal: refuse */
    if (end == text || v < 0 || !isdigit((unsigned char)text[0])) {
        snprintf(err, errlen, "'%s' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1d)", text);
        return -1;
    }
    double mult;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60e3;
    else if (strcmp(end, "h") == 0)
        mult = 3600e3;
    else if (strcmp(end, "d") == 0)
        mult = 86400e3;
    else {
        snprintf(err, errlen, "'%s' has no unit or an unknown one (use ms, s, m, h or d)", text);
        return -1;
    }
    double ms = v * mult;
    if (ms > 9.2e15) {
        snprintf(err, errlen, "'%s' is too long", text);
        return -1;
    }
    *out_ms = (int64_t)(ms + 0.5);
    return 0;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int64_t gp_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int gp_parse_time_ms(const char *text, int64_t *out_ms, char *err, size_t errlen)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
    if (!p || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        goto bad;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) goto bad;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &s)) goto bad;
            if (*p == '.') {
                p++;
                int scale = 100;
                if (!isdigit((unsigned char)*p)) goto bad;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (digits(&p, 2, &oh)) goto bad;
            if (*p == ':') p++;
            if (*p && digits(&p, 2, &om)) goto bad;
            offset_s = sign * (oh * 3600 + om * 60);
        } else if (*p) {
            goto bad;
        } else {
            snprintf(err, errlen, "'%s' has no time zone (end it with Z or +hh:mm)", text);
            return -1;
        }
    }
    if (*p) goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) goto bad;
    /* 2026-02-31 is a mistake, not 3 March: the day must exist in its month. */
    int64_t month_days = gp_days_from_civil(mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1, 1) -
                         gp_days_from_civil(y, mo, 1);
    if (d > month_days) goto bad;
    int64_t days = gp_days_from_civil(y, mo, d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + s) - offset_s) * 1000 + ms;
    return 0;
bad:
    snprintf(err, errlen, "'%s' is not an ISO-8601 time (e.g. 2026-01-01T00:00:00Z) or date",
             text ? text : "");
    return -1;
}

void gp_format_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)t * 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void gp_format_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 1000 || ms % 1000)
        snprintf(buf, len, "%lldms", (long long)ms);
    else if (ms % 60000)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else if (ms % 3600000)
        snprintf(buf, len, "%lldm", (long long)(ms / 60000));
    else if (ms % 86400000)
        snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
    else
        snprintf(buf, len, "%lldd", (long long)(ms / 86400000));
}

int64_t gp_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double gp_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
