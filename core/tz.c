/*
 * Time zones, read from the system's tzfiles (RFC 8536) by this file itself.
 *
 * Why not setenv("TZ") around mktime()/localtime_r(): TZ is process-wide state and these
 * conversions must be right whatever it holds: `check` and `simulate` never set it, a SIGHUP
 * may bring a different `timezone`, the tests use several zones in one process, and glibc's
 * localtime_r() does not even re-read TZ after the first call. mktime() also leaves local
 * times that are skipped or repeated by a clock change to the C library (glibc decides from a
 * tm_isdst guess), while tariffs need one documented rule. A tzfile is simple: a sorted table
 * of transitions and, for instants after the table, a POSIX TZ rule such as
 * "GMT0BST,M3.5.0/1,M10.5.0" (a "slim" tzfile has only the rule for recent years). Both are
 * read here; a zone is loaded once (per configuration load) and every lookup after that is a
 * binary search or a little date arithmetic, with no global state.
 */
#include "tz.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "str.h"
#include "timeutil.h"

#define ZONEINFO "/usr/share/zoneinfo"

typedef struct rule_date {
    char kind;    /* 'J' (1..365, Feb 29 never counted), 'D' (0..365), 'M' (month.week.day) */
    int a, b, c;  /* J/D: the day in a; M: month, week (5 = last), weekday (0 = Sunday) */
    int32_t time; /* seconds after local midnight; may be negative or past 24 h */
} rule_date;

struct gp_tz {
    char *name;
    int64_t *at; /* transitions (Unix s), ascending; each one changes the offset */
    int32_t *off;
    size_t n;
    int32_t off0; /* in force before at[0] */
    int has_rule; /* the POSIX rule applies from rule_from on */
    int64_t rule_from;
    int rule_dst; /* the rule has daylight saving time */
    int32_t std_off, dst_off;
    rule_date start, end;
};

/* ---- calendar ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 back to a year (Howard Hinnant; gp_days_from_civil goes forth). */
static int64_t year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return yoe + era * 400 + (m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* ---- the POSIX TZ rule ------------------------------------------------------------------- */

static int64_t rule_day(int64_t y, const rule_date *r)
{
    int64_t jan1 = gp_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60);
    if (r->kind == 'D') return jan1 + r->a;
    int64_t first = gp_days_from_civil(y, r->a, 1);
    int wd = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int day = (r->c - wd + 7) % 7 + (r->b - 1) * 7;
    while (day >= month_days(y, r->a))
        day -= 7;
    return first + day;
}

/* The instant of the rule's change in year y; off is the offset in force before it. */
static int64_t rule_change(int64_t y, const rule_date *r, int32_t off)
{
    return rule_day(y, r) * 86400 + r->time - off;
}

static int32_t rule_offset(const gp_tz *z, int64_t t)
{
    if (!z->rule_dst) return z->std_off;
    int64_t y = year_of_days(floor_div(t + z->std_off, 86400));
    int64_t s = rule_change(y, &z->start, z->std_off), e = rule_change(y, &z->end, z->dst_off);
    if (s < e) return t >= s && t < e ? z->dst_off : z->std_off;
    return t >= e && t < s ? z->std_off : z->dst_off; /* southern hemisphere */
}

static const char *parse_name(const char *p)
{
    if (*p == '<') {
        while (*p && *p != '>')
            p++;
        return *p == '>' ? p + 1 : NULL;
    }
    const char *s = p;
    while (isalpha((unsigned char)*p))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *parse_num(const char *p, int *out, int max)
{
    if (!isdigit((unsigned char)*p)) return NULL;
    int v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p++ - '0');
        if (v > max) return NULL;
    }
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]] in seconds. */
static const char *parse_hms(const char *p, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!(p = parse_num(p, &h, 167))) return NULL;
    if (*p == ':' && !(p = parse_num(p + 1, &m, 59))) return NULL;
    if (p && *p == ':' && !(p = parse_num(p + 1, &s, 59))) return NULL;
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *parse_date(const char *p, rule_date *r)
{
    r->time = 7200;
    if (*p == 'M') {
        r->kind = 'M';
        if (!(p = parse_num(p + 1, &r->a, 12)) || *p != '.' || !(p = parse_num(p + 1, &r->b, 5)) ||
            *p != '.' || !(p = parse_num(p + 1, &r->c, 6)))
            return NULL;
        if (r->a < 1 || r->b < 1) return NULL;
    } else if (*p == 'J') {
        r->kind = 'J';
        if (!(p = parse_num(p + 1, &r->a, 365)) || r->a < 1) return NULL;
    } else {
        r->kind = 'D';
        if (!(p = parse_num(p, &r->a, 365))) return NULL;
    }
    if (*p == '/' && !(p = parse_hms(p + 1, &r->time))) return NULL;
    return p;
}

/* "GMT0BST,M3.5.0/1,M10.5.0": 0 on success. Offsets in the string count west of UTC. */
static int parse_rule(gp_tz *z, const char *p)
{
    int32_t v;
    if (!(p = parse_name(p)) || !(p = parse_hms(p, &v))) return -1;
    z->std_off = z->dst_off = -v;
    if (!*p) return 0;
    if (!(p = parse_name(p))) return -1;
    z->rule_dst = 1;
    z->dst_off = z->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = parse_hms(p, &v))) return -1;
        z->dst_off = -v;
    }
    if (!*p) /* no dates: POSIX leaves them to the implementation; glibc uses the US rule */
        p = ",M3.2.0,M11.1.0";
    if (*p != ',' || !(p = parse_date(p + 1, &z->start)) || *p != ',' ||
        !(p = parse_date(p + 1, &z->end)) || *p)
        return -1;
    return 0;
}

/* ---- the tzfile -------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int parse_tzif(gp_tz *z, const unsigned char *b, size_t len)
{
    if (len < 44 || memcmp(b, "TZif", 4) != 0) return -1;
    int version = b[4];
    size_t p = 0, tsize = 4;
    size_t isut, isstd, leap, timecnt, typecnt, charcnt;
    for (;;) {
        if (len - p < 44 || memcmp(b + p, "TZif", 4) != 0) return -1;
        isut = be32(b + p + 20), isstd = be32(b + p + 24), leap = be32(b + p + 28);
        timecnt = be32(b + p + 32), typecnt = be32(b + p + 36), charcnt = be32(b + p + 40);
        p += 44;
        if (typecnt < 1 || typecnt > 256 || timecnt > (1u << 20) || leap > (1u << 16) ||
            charcnt > (1u << 16) || isut > 256 || isstd > 256)
            return -1;
        size_t data =
            timecnt * (tsize + 1) + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (len - p < data) return -1;
        if (version < '2' || tsize == 8) break;
        p += data; /* skip the 32-bit block: the 64-bit one follows */
        tsize = 8;
    }
    const unsigned char *times = b + p, *idx = times + timecnt * tsize, *types = idx + timecnt;
    for (size_t i = 0; i < timecnt; i++)
        if (idx[i] >= typecnt) return -1;
    z->off0 = (int32_t)be32(types);
    z->at = gp_xmalloc((timecnt + 1) * sizeof *z->at);
    z->off = gp_xmalloc((timecnt + 1) * sizeof *z->off);
    int32_t prev = z->off0;
    int64_t last = INT64_MIN;
    for (size_t i = 0; i < timecnt; i++) {
        int64_t t = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        int32_t o = (int32_t)be32(types + 6 * idx[i]);
        if (t <= last) return -1; /* must ascend */
        last = t;
        if (o == prev) continue;
        z->at[z->n] = t;
        z->off[z->n++] = o;
        prev = o;
    }
    z->rule_from = last;
    /* Version 2+: the footer "\n<POSIX TZ>\n" covers the times after the table. */
    size_t end =
        p + timecnt * (tsize + 1) + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
    if (version >= '2' && end < len && b[end] == '\n') {
        const char *rule = (const char *)b + end + 1;
        const char *nl = memchr(rule, '\n', len - end - 1);
        if (!nl) return -1;
        if (nl > rule) {
            char buf[128];
            size_t n = (size_t)(nl - rule);
            if (n >= sizeof buf) return -1;
            memcpy(buf, rule, n);
            buf[n] = '\0';
            if (parse_rule(z, buf) != 0) return -1;
            z->has_rule = 1;
        }
    }
    return 0;
}

static int valid_name(const char *s)
{
    if (!*s || *s == '/' || strstr(s, "..")) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("/_+-", *s)) return 0;
    return 1;
}

gp_tz *gp_tz_load(const char *name, char *err, size_t errlen)
{
    gp_tz *z = gp_xcalloc(1, sizeof *z);
    z->name = gp_xstrdup(name ? name : "");
    z->rule_from = INT64_MIN;
    if (strcmp(z->name, "UTC") == 0) return z;
    char path[512];
    size_t len = 0;
    char *data = NULL;
    if (valid_name(z->name) && strlen(z->name) < 256) {
        snprintf(path, sizeof path, ZONEINFO "/%s", z->name);
        data = gp_read_file(path, &len);
    }
    if (!data) {
        snprintf(err, errlen, "unknown time zone '%s' (use e.g. Europe/London or UTC)", z->name);
        gp_tz_free(z);
        return NULL;
    }
    int rc = parse_tzif(z, (const unsigned char *)data, len);
    free(data);
    if (rc != 0) {
        snprintf(err, errlen, "'%s': %s is not a time zone file", z->name, path);
        gp_tz_free(z);
        return NULL;
    }
    return z;
}

void gp_tz_free(gp_tz *z)
{
    if (!z) return;
    free(z->name);
    free(z->at);
    free(z->off);
    free(z);
}

const char *gp_tz_name(const gp_tz *z)
{
    return z->name;
}

/* Index of the last table transition at or before t, or -1. */
static ptrdiff_t last_at(const gp_tz *z, int64_t t)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

int32_t gp_tz_offset(const gp_tz *z, int64_t t)
{
    if (z->has_rule && t >= z->rule_from) return rule_offset(z, t);
    ptrdiff_t i = last_at(z, t);
    return i < 0 ? z->off0 : z->off[i];
}

int64_t gp_tz_next_change(const gp_tz *z, int64_t t)
{
    int64_t best = INT64_MAX;
    size_t i = (size_t)(last_at(z, t) + 1);
    if (i < z->n) best = z->at[i];
    if (!z->has_rule) return best;
    if (z->rule_from > t && z->rule_from < best) best = z->rule_from;
    if (!z->rule_dst) return best;
    int64_t from = t > z->rule_from ? t : z->rule_from;
    int64_t y = year_of_days(floor_div(from, 86400));
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t c[2] = {rule_change(yy, &z->start, z->std_off),
                        rule_change(yy, &z->end, z->dst_off)};
        for (int k = 0; k < 2; k++)
            if (c[k] > t && c[k] >= z->rule_from && c[k] < best) best = c[k];
    }
    return best;
}

int64_t gp_tz_to_utc(const gp_tz *z, int64_t local)
{
    /* Walk the stretches of constant offset forwards from two days before: the first one
     * whose local times contain `local` gives its first occurrence; if `local` falls before
     * the local start of a stretch, it was skipped, and that stretch's start is the answer. */
    int64_t s = local - 2 * 86400;
    for (int k = 0; k < 64; k++) {
        int32_t o = gp_tz_offset(z, s);
        int64_t e = gp_tz_next_change(z, s);
        int64_t t = local - o;
        if (t < s) return s;
        if (t < e) return t;
        s = e;
    }
    return local - gp_tz_offset(z, local); /* not reached with real zones */
}
