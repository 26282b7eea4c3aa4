/* Tariffs: time zones, price files (CSV, Octopus JSON), time-of-use periods with daylight
 * saving changes, every loading problem by file and line, and ctx.tariff in Lua. Fixture
 * files live in tests/fixtures/tariffs/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "fleet.h"
#include "log.h"
#include "strategy.h"
#include "tariff.h"
#include "tariff_load.h"
#include "timeutil.h"
#include "tz.h"

#define FIXTURES GP_TEST_SRCDIR "/tests/fixtures/tariffs"

static int64_t T(const char *iso) /* Unix ms */
{
    int64_t ms = 0;
    char err[200];
    if (gp_parse_time_ms(iso, &ms, err, sizeof err) != 0) fail_msg("%s", err);
    return ms;
}

static const char *fx(const char *name)
{
    static char buf[8][PATH_MAX];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", FIXTURES, name);
    return p;
}

static int has(const gp_diag *d, const char *a, const char *b)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->lines[i], a) && (!b || strstr(d->lines[i], b))) return 1;
    return 0;
}

static void dump(const gp_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "# diag: %s\n", d->lines[i]);
}

#define assert_has(d, a, b)                                                                        \
    do {                                                                                           \
        if (!has(d, a, b)) {                                                                       \
            dump(d);                                                                               \
            fail_msg("no diagnostic with '%s' and '%s'", a, b ? b : "");                           \
        }                                                                                          \
    } while (0)

static void assert_near(double got, double want)
{
    if (isnan(want) ? !isnan(got) : !(fabs(got - want) < 1e-9))
        fail_msg("got %.12g, want %.12g", got, want);
}

typedef struct src_args {
    const char *file, *export_file, *unit, *periods, *tz;
    double di, de;
} src_args;

/* Load through gp_tariff_load; the periods are JSON text. */
static gp_tariff *load_src(src_args a, gp_diag *d)
{
    cJSON *periods = a.periods ? cJSON_Parse(a.periods) : NULL;
    if (a.periods) assert_non_null(periods);
    gp_tariff_source src = {a.file, a.export_file, a.unit, periods, a.tz ? a.tz : "UTC",
                            a.di,   a.de};
    gp_tariff *t = gp_tariff_load(&src, d);
    cJSON_Delete(periods);
    return t;
}

/* Defaults first, then the test's own fields (which override them). */
#pragma GCC diagnostic ignored "-Woverride-init"
#define LOAD(d, ...) load_src((src_args){.di = NAN, .de = NAN, __VA_ARGS__}, d)

static gp_tariff *load_ok(src_args a)
{
    gp_diag d = {0};
    gp_tariff *t = load_src(a, &d);
    dump(&d);
    assert_int_equal(d.n, 0);
    assert_non_null(t);
    return t;
}

#define LOAD_OK(...) load_ok((src_args){.di = NAN, .de = NAN, __VA_ARGS__})

/* slots(from, to) must be exactly the given bounds (ISO times, n + 1 of them) and import
 * prices. */
static void expect_slots(const gp_tariff *t, const char *from, const char *to, size_t n,
                         const char *const *bounds, const double *import)
{
    size_t got = 0;
    gp_price_slot *s = gp_tariff_slots(t, T(from), T(to), &got);
    if (got != n) {
        for (size_t i = 0; i < got; i++) {
            char a[32], b[32];
            gp_format_time(s[i].start_ms, a, sizeof a);
            gp_format_time(s[i].stop_ms, b, sizeof b);
            fprintf(stderr, "# slot %zu: %s - %s %g\n", i, a, b, s[i].import);
        }
        fail_msg("%zu slots, want %zu", got, n);
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i].start_ms == T(bounds[i]));
        assert_true(s[i].stop_ms == T(bounds[i + 1]));
        assert_near(s[i].import, import[i]);
    }
    free(s);
}

/* ---- time zones -------------------------------------------------------------------------- */

static void tz_london(void **state)
{
    (void)state;
    char err[256];
    gp_tz *z = gp_tz_load("Europe/London", err, sizeof err);
    assert_non_null(z);
    assert_string_equal(gp_tz_name(z), "Europe/London");
    int64_t s = T("2026-03-29T01:00:00Z") / 1000;
    assert_int_equal(gp_tz_offset(z, s - 1), 0);
    assert_int_equal(gp_tz_offset(z, s), 3600);
    assert_true(gp_tz_next_change(z, s - 1) == s);
    s = T("2026-10-25T01:00:00Z") / 1000;
    assert_int_equal(gp_tz_offset(z, s - 1), 3600);
    assert_int_equal(gp_tz_offset(z, s), 0);
    /* Beyond the table (2037): the file's POSIX rule. */
    assert_int_equal(gp_tz_offset(z, T("2100-03-28T00:59:59Z") / 1000), 0);
    assert_int_equal(gp_tz_offset(z, T("2100-03-28T01:00:00Z") / 1000), 3600);
    assert_int_equal(gp_tz_offset(z, T("2200-10-26T00:59:59Z") / 1000), 3600);
    assert_int_equal(gp_tz_offset(z, T("2200-10-26T01:00:00Z") / 1000), 0);
    assert_true(gp_tz_next_change(z, T("2100-01-01T00:00:00Z") / 1000) ==
                T("2100-03-28T01:00:00Z") / 1000);

    /* Local to UTC: 2026-03-29 01:00-02:00 does not exist; 2026-10-25 01:00-02:00 twice. */
    int64_t day = T("2026-03-29T00:00:00Z") / 1000; /* also local midnight (GMT) */
    assert_true(gp_tz_to_utc(z, day + 1800) == T("2026-03-29T00:30:00Z") / 1000);
    assert_true(gp_tz_to_utc(z, day + 3600) == T("2026-03-29T01:00:00Z") / 1000);
    assert_true(gp_tz_to_utc(z, day + 5400) == T("2026-03-29T01:00:00Z") / 1000); /* gap */
    assert_true(gp_tz_to_utc(z, day + 7200) == T("2026-03-29T01:00:00Z") / 1000);
    assert_true(gp_tz_to_utc(z, day + 10800) == T("2026-03-29T02:00:00Z") / 1000);
    day = T("2026-10-25T00:00:00Z") / 1000; /* local 2026-10-25T00:00 as if it were UTC */
    assert_true(gp_tz_to_utc(z, day) == T("2026-10-24T23:00:00Z") / 1000);
    assert_true(gp_tz_to_utc(z, day + 3600) == T("2026-10-25T00:00:00Z") / 1000);
    assert_true(gp_tz_to_utc(z, day + 5400) == T("2026-10-25T00:30:00Z") / 1000); /* first */
    assert_true(gp_tz_to_utc(z, day + 7200) == T("2026-10-25T02:00:00Z") / 1000);
    gp_tz_free(z);
}

/* Offsets agree with the C library's for a spread of zones and years (TZ set in this test
 * process only), including half-hour and southern-hemisphere daylight saving. */
static void tz_matches_libc(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/London",
                                        "America/New_York",
                                        "Australia/Sydney",
                                        "Asia/Kolkata",
                                        "Australia/Lord_Howe",
                                        "America/Santiago",
                                        "UTC"};
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    for (size_t k = 0; k < sizeof zones / sizeof *zones; k++) {
        char err[256];
        gp_tz *z = gp_tz_load(zones[k], err, sizeof err);
        if (!z) fail_msg("%s", err);
        setenv("TZ", zones[k], 1);
        tzset();
        for (int64_t t = T("1975-01-01T00:00:00Z") / 1000; t < T("2065-01-01T00:00:00Z") / 1000;
             t += 3 * 3600 + 17) {
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (gp_tz_offset(z, t) != tm.tm_gmtoff)
                fail_msg("%s at %lld: %d, libc %ld", zones[k], (long long)t, gp_tz_offset(z, t),
                         tm.tm_gmtoff);
            /* And back: a local time that exists once maps to its instant. */
            int64_t local = t + tm.tm_gmtoff;
            int64_t back = gp_tz_to_utc(z, local);
            if (back != t && gp_tz_offset(z, back) + back != local)
                fail_msg("%s: local %lld maps to %lld", zones[k], (long long)local,
                         (long long)back);
        }
        gp_tz_free(z);
    }
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

static void tz_unknown(void **state)
{
    (void)state;
    char err[256];
    assert_null(gp_tz_load("Mars/Olympus", err, sizeof err));
    assert_non_null(strstr(err, "unknown time zone 'Mars/Olympus'"));
    assert_null(gp_tz_load("../../etc/passwd", err, sizeof err));
    assert_null(gp_tz_load("", err, sizeof err));
    assert_null(gp_tz_load("zone.tab", err, sizeof err));
    if (access("/usr/share/zoneinfo/leapseconds", R_OK) == 0) {
        assert_null(gp_tz_load("leapseconds", err, sizeof err)); /* a file, but no tzfile */
        assert_non_null(strstr(err, "not a time zone file"));
    }
    gp_tz *z = gp_tz_load("UTC", err, sizeof err);
    assert_int_equal(gp_tz_offset(z, 0), 0);
    assert_true(gp_tz_to_utc(z, 12345) == 12345);
    gp_tz_free(z);
}

/* ---- fixed ------------------------------------------------------------------------------- */

static void fixed_and_null(void **state)
{
    (void)state;
    assert_true(isnan(gp_tariff_import(NULL, 0)));
    size_t n = 7;
    assert_null(gp_tariff_slots(NULL, 0, 1000, &n));
    assert_int_equal(n, 0);
    int64_t a, b;
    assert_int_equal(gp_tariff_extent(NULL, &a, &b), -1);

    gp_tariff *t = gp_tariff_fixed(0.25, 0.05);
    assert_near(gp_tariff_import(t, 123), 0.25);
    assert_near(gp_tariff_export(t, -123), 0.05);
    gp_price_slot *s = gp_tariff_slots(t, 1000, 5000, &n);
    assert_int_equal(n, 1);
    assert_true(s[0].start_ms == 1000 && s[0].stop_ms == 5000);
    free(s);
    assert_null(gp_tariff_slots(t, 5000, 5000, &n));
    assert_int_equal(gp_tariff_extent(t, &a, &b), -1);
    gp_tariff_free(t);

    /* No key but a default: the fixed price. */
    t = LOAD_OK(.di = 0.3, .de = 0.1);
    assert_near(gp_tariff_import(t, 0), 0.3);
    assert_int_equal(gp_tariff_extent(t, &a, &b), -1);
    gp_tariff_free(t);
}

/* ---- CSV --------------------------------------------------------------------------------- */

static void csv_ok(void **state)
{
    (void)state;
    gp_tariff *t = LOAD_OK(.file = fx("ok.csv"));
    assert_near(gp_tariff_import(t, T("2026-01-01T00:00:00Z")), 0.20);
    assert_near(gp_tariff_export(t, T("2026-01-01T00:29:59Z")), 0.05);
    assert_near(gp_tariff_import(t, T("2026-01-01T00:30:00Z")), -0.03);
    assert_near(gp_tariff_export(t, T("2026-01-01T00:30:00Z")), NAN); /* empty: unknown */
    assert_near(gp_tariff_import(t, T("2026-01-01T01:59:59.999Z")), 0.15);
    assert_near(gp_tariff_import(t, T("2026-01-01T02:00:00Z")), NAN);
    assert_near(gp_tariff_import(t, T("2025-12-31T23:59:59Z")), NAN);
    int64_t a, b;
    assert_int_equal(gp_tariff_extent(t, &a, &b), 0);
    assert_true(a == T("2026-01-01T00:00:00Z") && b == T("2026-01-01T02:00:00Z"));
    /* Without a default nothing outside the file; clipped to the range. */
    expect_slots(t, "2025-12-31T00:00:00Z", "2026-01-01T01:30:00Z", 3,
                 (const char *[]){"2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z",
                                  "2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z"},
                 (const double[]){0.20, -0.03, 0.15});
    expect_slots(t, "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z", 1,
                 (const char *[]){"2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"},
                 (const double[]){0.20});
    size_t n = 9;
    assert_null(gp_tariff_slots(t, T("2026-01-02T00:00:00Z"), T("2026-01-03T00:00:00Z"), &n));
    assert_int_equal(n, 0);
    gp_tariff_free(t);

    /* With a default: it prices the times outside the file and the empty export. */
    t = LOAD_OK(.file = fx("ok.csv"), .di = 0.3, .de = 0.01);
    assert_near(gp_tariff_export(t, T("2026-01-01T00:30:00Z")), 0.01);
    assert_near(gp_tariff_import(t, T("2026-01-01T02:00:00Z")), 0.3);
    assert_near(gp_tariff_import(t, T("2025-06-01T00:00:00Z")), 0.3);
    expect_slots(t, "2025-12-31T23:00:00Z", "2026-01-01T03:00:00Z", 5,
                 (const char *[]){"2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z",
                                  "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z",
                                  "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"},
                 (const double[]){0.3, 0.20, -0.03, 0.15, 0.3});
    assert_int_equal(gp_tariff_extent(t, &a, &b), 0);
    assert_true(a == T("2026-01-01T00:00:00Z") && b == T("2026-01-01T02:00:00Z"));
    gp_tariff_free(t);

    /* A spreadsheet's export: byte order mark, CRLF, quoted fields; in pence. */
    t = LOAD_OK(.file = fx("excel.csv"), .unit = "pence");
    assert_near(gp_tariff_import(t, T("2026-01-01T00:00:00Z")), 0.125);
    assert_near(gp_tariff_export(t, T("2026-01-01T00:59:00Z")), 0.04);
    gp_tariff_free(t);
}

static void csv_errors(void **state)
{
    (void)state;
    gp_diag d = {0};
    const char *f = fx("bad_rows.csv");
    assert_null(LOAD(&d, .file = f));
    char prefix[PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "tariff.file: %s line ", f);
    assert_has(&d, prefix, "line 3: import: 'abc' is not a price");
    assert_has(&d, prefix,
               "line 5: start 2026-01-01T01:45:00Z leaves a gap after line 4, which stops at "
               "2026-01-01T01:30:00Z");
    assert_has(&d, prefix,
               "line 6: start 2026-01-01T01:50:00Z overlaps line 5, which stops at "
               "2026-01-01T02:00:00Z");
    assert_has(&d, prefix,
               "line 7: stop 2026-01-01T01:00:00Z is before start 2026-01-01T02:00:00Z");
    assert_has(&d, prefix, "line 8: stop 2026-01-01T03:00:00Z is the same as start");
    assert_has(&d, prefix, "line 9: start: 'yesterday' is not an ISO-8601 time");
    assert_has(&d, prefix, "line 10: stop: '2026-01-01T04:00:00' has no time zone");
    assert_has(&d, prefix, "line 11: expected 4 fields (start,stop,import,export), found 2");
    assert_has(&d, prefix, "line 12: export: 'x' is not a price");
    assert_has(&d, prefix, "line 13: import: missing");
    assert_int_equal(d.n, 10);
    gp_diag_clear(&d);

    assert_null(LOAD(&d, .file = fx("empty.csv")));
    assert_has(&d, "tariff.file: ", "empty.csv: the file is empty");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("no_header.csv")));
    assert_has(&d,
               "no_header.csv line 1: expected the header start,stop,import,export, found "
               "'2026-01-01T00:00:00Z,",
               NULL);
    assert_int_equal(d.n, 1);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("header_only.csv")));
    assert_has(&d, "header_only.csv: has no price rows", NULL);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("missing.csv")));
    assert_has(&d, "tariff.file: ", "missing.csv: cannot read: No such file");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = FIXTURES));
    assert_has(&d, "tariff.file: ", "cannot read: is a folder");
    gp_diag_clear(&d);
    /* A CSV has its own export column. */
    assert_null(LOAD(&d, .file = fx("ok.csv"), .export_file = fx("agile_export.json")));
    assert_has(&d, "tariff.export_file: goes with an Octopus JSON tariff.file", NULL);
    gp_diag_clear(&d);
}

/* At most 20 problems per file are listed, then a count. */
static void many_errors(void **state)
{
    (void)state;
    char path[] = "/tmp/gp-tariff-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs("start,stop,import,export\n", fp);
    for (int i = 0; i < 50; i++)
        fputs("x,y,1,2\n", fp);
    fclose(fp);
    gp_diag d = {0};
    assert_null(LOAD(&d, .file = path));
    assert_int_equal(d.n, 21);
    assert_has(&d, "and 80 more problems", NULL);
    gp_diag_clear(&d);

    /* Blank lines before the header still count; a NUL byte is refused. */
    fp = fopen(path, "w");
    fputs("\n  \nstart,stop,import,export\n2026-01-01T00:00:00Z,2026-01-01T00:00:00Z,1,\n", fp);
    fclose(fp);
    assert_null(LOAD(&d, .file = path));
    assert_has(&d, "line 4: stop 2026-01-01T00:00:00Z is the same as start", NULL);
    gp_diag_clear(&d);
    fp = fopen(path, "w");
    fwrite("start,stop,import,export\n\0x", 1, 27, fp);
    fclose(fp);
    assert_null(LOAD(&d, .file = path));
    assert_has(&d, "contains a NUL byte", NULL);
    gp_diag_clear(&d);
    unlink(path);
}

/* ---- Octopus JSON ------------------------------------------------------------------------ */

static void octopus_ok(void **state)
{
    (void)state;
    /* Newest first in the file; pence; export_results in the same document. */
    gp_tariff *t = LOAD_OK(.file = fx("octopus.json"));
    expect_slots(t, "2026-01-01T00:00:00Z", "2026-01-01T04:00:00Z", 5,
                 (const char *[]){"2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z",
                                  "2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z",
                                  "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z"},
                 (const double[]){0.105, -0.021, 0.147, 0.21, NAN});
    assert_near(gp_tariff_export(t, T("2026-01-01T00:45:00Z")), 0.05);
    assert_near(gp_tariff_export(t, T("2026-01-01T01:00:00Z")), 0.15);
    assert_near(gp_tariff_export(t, T("2026-01-01T02:59:59Z")), 0.15);
    assert_near(gp_tariff_export(t, T("2026-01-01T03:00:00Z")), NAN);
    int64_t a, b;
    assert_int_equal(gp_tariff_extent(t, &a, &b), 0);
    assert_true(a == T("2026-01-01T00:00:00Z") && b == T("2026-01-01T03:00:00Z"));
    gp_tariff_free(t);

    /* tariff.unit "currency" overrides the pence default; a default fills the gaps. */
    t = LOAD_OK(.file = fx("octopus.json"), .unit = "currency", .di = 0.2, .de = 0.01);
    assert_near(gp_tariff_import(t, T("2026-01-01T00:00:00Z")), 10.5);
    assert_near(gp_tariff_import(t, T("2026-01-01T02:00:00Z")), 0.2);
    assert_near(gp_tariff_export(t, T("2026-01-01T05:00:00Z")), 0.01);
    gp_tariff_free(t);

    /* Export prices from tariff.export_file, on a different grid. */
    t = LOAD_OK(.file = fx("agile_import.json"), .export_file = fx("agile_export.json"),
                .de = 0.02);
    expect_slots(t, "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z", 3,
                 (const char *[]){"2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z",
                                  "2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z"},
                 (const double[]){0.105, 0.21, 0.315});
    assert_near(gp_tariff_export(t, T("2026-01-01T00:00:00Z")), 0.04);
    assert_near(gp_tariff_export(t, T("2026-01-01T01:29:00Z")), 0.08);
    assert_near(gp_tariff_export(t, T("2026-01-01T01:30:00Z")), 0.02); /* default */
    gp_tariff_free(t);

    /* Without export prices the default export applies throughout. */
    t = LOAD_OK(.file = fx("agile_import.json"), .de = 0.03);
    assert_near(gp_tariff_export(t, T("2026-01-01T00:10:00Z")), 0.03);
    gp_tariff_free(t);

    /* A fixed Octopus tariff: one price per payment method, the newest until further
     * notice. */
    t = LOAD_OK(.file = fx("octopus_fixed.json"));
    assert_near(gp_tariff_import(t, T("2026-03-31T23:59:59Z")), 0.22);
    assert_near(gp_tariff_import(t, T("2026-04-01T00:00:00Z")), 0.245);
    assert_near(gp_tariff_import(t, T("2040-01-01T00:00:00Z")), 0.245);
    assert_int_equal(gp_tariff_extent(t, &a, &b), 0);
    assert_true(a == T("2026-01-01T00:00:00Z") && b == INT64_MAX);
    gp_tariff_free(t);
}

/* Load `file` with `unit` and return what was logged meanwhile (static buffer). */
static const char *logged_while_loading(const char *file, const char *unit)
{
    static char text[2048];
    char logf[] = "/tmp/gp-tariff-log-XXXXXX";
    int fd = mkstemp(logf);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    gp_tariff *t = LOAD_OK(.file = file, .unit = unit);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    gp_tariff_free(t);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(logf);
    return text;
}

/* Octopus JSON is read as pence; a file already in currency would be 100 times too cheap,
 * and loading it says so. */
static void octopus_in_currency_warns(void **state)
{
    (void)state;
    char path[] = "/tmp/gp-tariff-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs("{\"results\": [", fp);
    for (int i = 0; i < 6; i++)
        fprintf(fp,
                "%s{\"valid_from\": \"2026-01-01T0%d:00:00Z\", \"valid_to\": "
                "\"2026-01-01T0%d:00:00Z\", \"value_inc_vat\": 0.%d5}",
                i ? "," : "", i, i + 1, i + 1);
    fputs("]}", fp);
    fclose(fp);
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    const char *log = logged_while_loading(path, NULL);
    assert_non_null(strstr(log, "every import price is under 1"));
    assert_non_null(strstr(log, "set tariff.unit to \"currency\""));
    assert_null(strstr(logged_while_loading(path, "currency"), "under 1"));
    /* Real pence prices say nothing. */
    assert_null(strstr(logged_while_loading(fx("octopus.json"), NULL), "under 1"));
    unlink(path);
}

static void octopus_errors(void **state)
{
    (void)state;
    gp_diag d = {0};
    const char *f = fx("octopus_bad.json");
    assert_null(LOAD(&d, .file = f));
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "tariff.file: %s ", f);
    assert_has(&d, p,
               "results[0]: valid_from 2026-01-01T02:00:00Z leaves a gap after results[1], "
               "which is valid to 2026-01-01T01:30:00Z");
    assert_has(&d, p,
               "results[1]: valid_from 2026-01-01T01:00:00Z overlaps results[2] (valid from "
               "2026-01-01T00:30:00Z to 2026-01-01T01:15:00Z)");
    assert_has(&d, p, "results[3]: value_inc_vat: not a price");
    assert_has(&d, p, "results[4]: valid_from: 'soon' is not an ISO-8601 time");
    assert_has(&d, p,
               "results[5]: valid_to 2026-01-01T03:00:00Z is before valid_from "
               "2026-01-01T04:00:00Z");
    assert_has(&d, p, "results[6]: must be an object");
    assert_has(&d, p, "export_results[0]: valid_to: missing");
    assert_int_equal(d.n, 7);
    gp_diag_clear(&d);

    assert_null(LOAD(&d, .file = fx("octopus_syntax.json")));
    assert_has(&d, "octopus_syntax.json: line 2, column", "unexpected '}'");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("octopus_no_results.json")));
    assert_has(&d, "octopus_no_results.json: has no \"results\" array", NULL);
    gp_diag_clear(&d);
    /* export_file: its own key in messages; CSV refused; not with export_results. */
    assert_null(LOAD(&d, .file = fx("agile_import.json"), .export_file = fx("octopus_bad.json")));
    assert_has(&d, "tariff.export_file: ", "octopus_bad.json results[0]: valid_from");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("agile_import.json"), .export_file = fx("ok.csv")));
    assert_has(&d, "tariff.export_file: ", "ok.csv: must be Octopus JSON");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("octopus.json"), .export_file = fx("agile_export.json")));
    assert_has(&d, "tariff.export_file: ", "already has export_results");
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .export_file = fx("agile_export.json")));
    assert_has(&d, "tariff.export_file: needs tariff.file", NULL);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .file = fx("ok.csv"), .unit = "euro"));
    assert_has(&d, "tariff.unit: must be", NULL);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .unit = "pence", .di = 0.2));
    assert_has(&d, "tariff.unit: only applies to the prices of tariff.file", NULL);
    gp_diag_clear(&d);
}

/* ---- periods ----------------------------------------------------------------------------- */

#define PEAK "{\"from\": \"16:00\", \"to\": \"19:00\", \"import\": 0.35, \"export\": 0.15}"

static void periods_utc(void **state)
{
    (void)state;
    gp_tariff *t = LOAD_OK(.periods = "[" PEAK "]", .di = 0.25, .de = 0.05);
    expect_slots(t, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 3,
                 (const char *[]){"2026-01-01T00:00:00Z", "2026-01-01T16:00:00Z",
                                  "2026-01-01T19:00:00Z", "2026-01-02T00:00:00Z"},
                 (const double[]){0.25, 0.35, 0.25});
    assert_near(gp_tariff_import(t, T("2026-01-01T15:59:59.999Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-01-01T16:00:00Z")), 0.35);
    assert_near(gp_tariff_export(t, T("2026-01-01T18:59:59Z")), 0.15);
    assert_near(gp_tariff_export(t, T("2026-01-01T19:00:00Z")), 0.05);
    /* Default stretches run from one period to the next, across midnight. */
    expect_slots(t, "2026-01-01T12:00:00Z", "2026-01-03T00:00:00Z", 5,
                 (const char *[]){"2026-01-01T12:00:00Z", "2026-01-01T16:00:00Z",
                                  "2026-01-01T19:00:00Z", "2026-01-02T16:00:00Z",
                                  "2026-01-02T19:00:00Z", "2026-01-03T00:00:00Z"},
                 (const double[]){0.25, 0.35, 0.25, 0.35, 0.25});
    int64_t a, b;
    assert_int_equal(gp_tariff_extent(t, &a, &b), -1);
    gp_tariff_free(t);

    /* Without a default: only the periods have prices. */
    t = LOAD_OK(.periods = "[" PEAK "]");
    expect_slots(t, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 1,
                 (const char *[]){"2026-01-01T16:00:00Z", "2026-01-01T19:00:00Z"},
                 (const double[]){0.35});
    assert_near(gp_tariff_import(t, T("2026-01-01T10:00:00Z")), NAN);
    gp_tariff_free(t);
}

static void periods_midnight(void **state)
{
    (void)state;
    /* 22:00-06:00 wraps; no export given: the default's. */
    gp_tariff *t = LOAD_OK(.periods = "[{\"from\": \"22:00\", \"to\": \"06:00\", \"import\": 0.1},"
                                      " {\"from\": \"7:00\", \"to\": \"08:00\", \"import\": 0.4},"
                                      " {\"from\": \"20:00\", \"to\": \"22:00\", \"import\": 0.5}]",
                           .di = 0.3, .de = 0.05);
    expect_slots(t, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", 6,
                 (const char *[]){"2026-01-01T00:00:00Z", "2026-01-01T06:00:00Z",
                                  "2026-01-01T07:00:00Z", "2026-01-01T08:00:00Z",
                                  "2026-01-01T20:00:00Z", "2026-01-01T22:00:00Z",
                                  "2026-01-02T00:00:00Z"},
                 (const double[]){0.1, 0.3, 0.4, 0.3, 0.5, 0.1});
    /* One slot for the night, across midnight. */
    expect_slots(t, "2026-01-01T21:00:00Z", "2026-01-02T07:00:00Z", 3,
                 (const char *[]){"2026-01-01T21:00:00Z", "2026-01-01T22:00:00Z",
                                  "2026-01-02T06:00:00Z", "2026-01-02T07:00:00Z"},
                 (const double[]){0.5, 0.1, 0.3});
    assert_near(gp_tariff_import(t, T("2026-01-01T23:59:59Z")), 0.1);
    assert_near(gp_tariff_export(t, T("2026-01-02T00:00:00Z")), 0.05);
    assert_near(gp_tariff_import(t, T("2026-01-02T05:59:59Z")), 0.1);
    assert_near(gp_tariff_import(t, T("2026-01-02T06:00:00Z")), 0.3);
    gp_tariff_free(t);

    /* "24:00" is the midnight that ends the day. */
    t = LOAD_OK(.periods = "[{\"from\": \"19:00\", \"to\": \"24:00\", \"import\": 0.5}]",
                .di = 0.3);
    expect_slots(t, "2026-01-01T12:00:00Z", "2026-01-02T20:00:00Z", 4,
                 (const char *[]){"2026-01-01T12:00:00Z", "2026-01-01T19:00:00Z",
                                  "2026-01-02T00:00:00Z", "2026-01-02T19:00:00Z",
                                  "2026-01-02T20:00:00Z"},
                 (const double[]){0.3, 0.5, 0.3, 0.5});
    gp_tariff_free(t);
}

/* Europe/London: 2026-03-29 has 23 hours (01:00 GMT -> 02:00 BST), 2026-10-25 has 25
 * (02:00 BST -> 01:00 GMT). The 01:30-03:00 period starts in the skipped hour in spring
 * (so at the change, 01:00Z) and in the repeated hour in autumn (first occurrence). */
static void periods_dst(void **state)
{
    (void)state;
    const char *periods =
        "[" PEAK ", {\"from\": \"01:30\", \"to\": \"03:00\", \"import\": 0.1, \"export\": 0}]";
    gp_tariff *t = LOAD_OK(.periods = periods, .tz = "Europe/London", .di = 0.25, .de = 0.05);
    /* Spring forward: local midnight to local midnight is 00:00Z to 23:00Z. */
    expect_slots(t, "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 5,
                 (const char *[]){"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z",
                                  "2026-03-29T02:00:00Z", "2026-03-29T15:00:00Z",
                                  "2026-03-29T18:00:00Z", "2026-03-29T23:00:00Z"},
                 (const double[]){0.25, 0.1, 0.25, 0.35, 0.25});
    assert_near(gp_tariff_import(t, T("2026-03-29T00:59:59Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-03-29T01:00:00Z")), 0.1);
    assert_near(gp_tariff_import(t, T("2026-03-29T01:59:59Z")), 0.1);
    assert_near(gp_tariff_import(t, T("2026-03-29T02:00:00Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-03-29T14:59:59Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-03-29T15:00:00Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-03-29T17:59:59Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-03-29T18:00:00Z")), 0.25);
    /* The day before is still GMT, the day after BST. */
    assert_near(gp_tariff_import(t, T("2026-03-28T16:00:00Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-03-30T15:00:00Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-03-30T00:30:00Z")), 0.1); /* 01:30 BST */

    /* Fall back: 2026-10-24T23:00Z to 2026-10-26T00:00Z is the local day. */
    expect_slots(t, "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 5,
                 (const char *[]){"2026-10-24T23:00:00Z", "2026-10-25T00:30:00Z",
                                  "2026-10-25T03:00:00Z", "2026-10-25T16:00:00Z",
                                  "2026-10-25T19:00:00Z", "2026-10-26T00:00:00Z"},
                 (const double[]){0.25, 0.1, 0.25, 0.35, 0.25});
    assert_near(gp_tariff_import(t, T("2026-10-25T00:29:59Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-10-25T00:30:00Z")), 0.1);
    assert_near(gp_tariff_import(t, T("2026-10-25T01:15:00Z")), 0.1); /* 01:15 GMT, again */
    assert_near(gp_tariff_import(t, T("2026-10-25T02:59:59Z")), 0.1);
    assert_near(gp_tariff_import(t, T("2026-10-25T03:00:00Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-10-25T15:59:59Z")), 0.25);
    assert_near(gp_tariff_import(t, T("2026-10-25T16:00:00Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-10-25T18:59:59Z")), 0.35);
    assert_near(gp_tariff_import(t, T("2026-10-25T19:00:00Z")), 0.25);
    assert_near(gp_tariff_export(t, T("2026-10-25T02:00:00Z")), 0);
    gp_tariff_free(t);

    /* One period: three slots a day, of 15+3+5 h and 17+3+5 h. */
    t = LOAD_OK(.periods = "[" PEAK "]", .tz = "Europe/London", .di = 0.25, .de = 0.05);
    expect_slots(t, "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 3,
                 (const char *[]){"2026-03-29T00:00:00Z", "2026-03-29T15:00:00Z",
                                  "2026-03-29T18:00:00Z", "2026-03-29T23:00:00Z"},
                 (const double[]){0.25, 0.35, 0.25});
    expect_slots(t, "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 3,
                 (const char *[]){"2026-10-24T23:00:00Z", "2026-10-25T16:00:00Z",
                                  "2026-10-25T19:00:00Z", "2026-10-26T00:00:00Z"},
                 (const double[]){0.25, 0.35, 0.25});
    gp_tariff_free(t);

    /* A period inside the skipped hour does not happen that day. */
    t = LOAD_OK(.periods = "[{\"from\": \"01:15\", \"to\": \"01:45\", \"import\": 0.9}]",
                .tz = "Europe/London", .di = 0.25);
    expect_slots(t, "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 1,
                 (const char *[]){"2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z"},
                 (const double[]){0.25});
    assert_near(gp_tariff_import(t, T("2026-03-28T01:20:00Z")), 0.9);
    gp_tariff_free(t);
}

/* The price at an instant is the price of the slot that holds it, and slots tile the range
 * whatever range they are asked for. */
static void check_consistent(const gp_tariff *t, int64_t from, int64_t to, int64_t step)
{
    size_t n = 0;
    gp_price_slot *s = gp_tariff_slots(t, from, to, &n);
    assert_true(n > 0 && s[0].start_ms == from && s[n - 1].stop_ms == to);
    size_t i = 0;
    for (int64_t at = from; at < to; at += step) {
        while (s[i].stop_ms <= at)
            i++;
        assert_true(i == 0 || s[i].start_ms == s[i - 1].stop_ms);
        assert_near(gp_tariff_import(t, at), s[i].import);
        assert_near(gp_tariff_export(t, at), s[i].export_);
        size_t m = 0; /* a range starting here sees the same slot (unless the list was cut) */
        gp_price_slot *r = gp_tariff_slots(t, at, at + 3600000, &m);
        assert_true(m > 0 && r[0].start_ms == at);
        int64_t want = s[i].stop_ms < at + 3600000 ? s[i].stop_ms : at + 3600000;
        if (at + 3600000 <= to && r[0].stop_ms != want) {
            char a[32], b[32], c[32];
            gp_format_time(at, a, sizeof a);
            gp_format_time(r[0].stop_ms, b, sizeof b);
            gp_format_time(s[i].stop_ms, c, sizeof c);
            fail_msg("at %s: slot stops %s, in the long list %s", a, b, c);
        }
        free(r);
    }
    free(s);
}

static void periods_consistent(void **state)
{
    (void)state;
    const char *periods = "[{\"from\": \"23:30\", \"to\": \"00:30\", \"import\": 0.1},"
                          " {\"from\": \"00:30\", \"to\": \"01:30\", \"import\": 0.2},"
                          " {\"from\": \"02:00\", \"to\": \"03:00\", \"import\": 0.3},"
                          " {\"from\": \"16:00\", \"to\": \"19:00\", \"import\": 0.4}]";
    /* London changes at 01:00 UTC; Santiago at local midnight; Lord Howe by half an hour. */
    static const char *const zones[] = {"Europe/London", "America/Santiago", "Australia/Lord_Howe"};
    static const char *const ranges[][2] = {{"2026-03-27T00:00:00Z", "2026-04-01T00:00:00Z"},
                                            {"2026-10-23T00:00:00Z", "2026-10-28T00:00:00Z"},
                                            {"2026-04-03T00:00:00Z", "2026-04-07T00:00:00Z"},
                                            {"2026-09-04T00:00:00Z", "2026-09-08T00:00:00Z"}};
    for (size_t z = 0; z < 3; z++) {
        gp_tariff *t = LOAD_OK(.periods = periods, .tz = zones[z], .di = 0.25, .de = 0.05);
        for (size_t r = 0; r < 4; r++)
            check_consistent(t, T(ranges[r][0]), T(ranges[r][1]), 7 * 60000 + 13000);
        gp_tariff_free(t);
    }
}

static void periods_errors(void **state)
{
    (void)state;
    gp_diag d = {0};
    assert_null(LOAD(&d,
                     .periods = "[" PEAK ","
                                " {\"from\": \"18:00\", \"to\": \"20:00\", \"import\": 0.3},"
                                " {\"from\": \"7:60\", \"to\": \"08:00\", \"import\": 1},"
                                " {\"from\": \"09:00\", \"to\": \"09:00\", \"import\": 1},"
                                " {\"from\": \"10:00\", \"to\": \"11:00\"},"
                                " {\"from\": \"23:00\", \"to\": \"17:00\", \"import\": 1,"
                                "  \"colour\": \"red\"},"
                                " {\"from\": \"24:00\", \"to\": \"01:00\", \"import\": 1},"
                                " {\"from\": 5, \"to\": \"25:00\", \"import\": \"cheap\"},"
                                " 3]",
                     .di = 0.2));
    assert_has(&d, "tariff.periods[1]: 18:00-20:00 overlaps tariff.periods[0] (16:00-19:00)", NULL);
    assert_has(&d, "tariff.periods[2].from: '7:60' is not a time of day \"HH:MM\"", NULL);
    assert_has(&d, "tariff.periods[3].to: the same as from", NULL);
    assert_has(&d, "tariff.periods[4].import: missing", NULL);
    assert_has(&d, "tariff.periods[5].colour: unknown key", NULL);
    assert_has(&d, "tariff.periods[5]: 23:00-17:00 overlaps tariff.periods[0]", NULL);
    assert_has(&d, "tariff.periods[6].from: '24:00' is not a time of day", "00:00 to 23:59");
    assert_has(&d, "tariff.periods[7].from: is not a time of day", NULL);
    assert_has(&d, "tariff.periods[7].to: '25:00' is not a time of day", "00:00 to 24:00");
    assert_has(&d, "tariff.periods[7].import: must be a number", NULL);
    assert_has(&d, "tariff.periods[8]: must be an object", NULL);
    assert_int_equal(d.n, 11);
    gp_diag_clear(&d);

    assert_null(LOAD(&d, .periods = "{}"));
    assert_has(&d, "tariff.periods: must be an array", NULL);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .periods = "[]"));
    assert_has(&d, "tariff.periods: is empty", NULL);
    gp_diag_clear(&d);
    assert_null(LOAD(&d, .periods = "[" PEAK "]", .file = fx("ok.csv")));
    assert_has(&d, "tariff.periods: give either tariff.file or tariff.periods", NULL);
    gp_diag_clear(&d);
    /* A whole day in one period is fine: 00:00-24:00. */
    gp_tariff *t =
        LOAD_OK(.periods = "[{\"from\": \"00:00\", \"to\": \"24:00\", \"import\": 0.2}]");
    assert_near(gp_tariff_import(t, T("2026-05-05T13:00:00Z")), 0.2);
    gp_tariff_free(t);
}

/* ---- Lua --------------------------------------------------------------------------------- */

static void run_probe(const gp_tariff *t, const char *kind, int64_t now_ms)
{
    char err[2048] = "", params[64];
    snprintf(params, sizeof params, "{\"kind\": \"%s\"}", kind);
    gp_strategy_opts o = {fx("probe.lua"), params, 0, 0};
    gp_strategy *s = gp_strategy_load(&o, err, sizeof err);
    if (!s) fail_msg("load: %s", err);
    gp_fleet *f = gp_fleet_new();
    gp_tick_in in = {now_ms, 60, 1, f, t};
    gp_tick_out out;
    if (gp_strategy_tick(s, &in, &out, err, sizeof err) != 0) fail_msg("%s: %s", kind, err);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void lua_ctx_tariff(void **state)
{
    (void)state;
    gp_tariff *t = LOAD_OK(.file = fx("octopus.json"));
    run_probe(t, "file", T("2026-01-01T00:00:00Z"));
    gp_tariff_free(t);
    t = LOAD_OK(.periods = "[" PEAK "]", .tz = "Europe/London", .di = 0.25, .de = 0.05);
    run_probe(t, "periods", T("2026-03-29T00:00:00Z"));
    gp_tariff_free(t);
}

/* ---- big files --------------------------------------------------------------------------- */

/* A year of half-hourly prices (17,520 slots) as CSV and as Octopus JSON (newest first). */
static void big_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/gp-tariff-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char csv[64], json[64];
    snprintf(csv, sizeof csv, "%s/year.csv", dir);
    snprintf(json, sizeof json, "%s/year.json", dir);
    const int n = 17520;
    int64_t t0 = T("2026-01-01T00:00:00Z");
    FILE *fc = fopen(csv, "w"), *fj = fopen(json, "w");
    fputs("start,stop,import,export\n", fc);
    fputs("{\"count\": 17520, \"next\": null, \"previous\": null, \"results\": [\n", fj);
    for (int i = 0; i < n; i++) {
        char a[32], b[32];
        gp_format_time(t0 + (int64_t)i * 1800000, a, sizeof a);
        gp_format_time(t0 + (int64_t)(i + 1) * 1800000, b, sizeof b);
        fprintf(fc, "%s,%s,%.4f,%.4f\n", a, b, 0.1 + (i % 48) * 0.01, 0.05);
        int j = n - 1 - i; /* newest first */
        gp_format_time(t0 + (int64_t)j * 1800000, a, sizeof a);
        gp_format_time(t0 + (int64_t)(j + 1) * 1800000, b, sizeof b);
        fprintf(fj,
                "%s  {\"value_exc_vat\": %.3f, \"value_inc_vat\": %.3f, \"valid_from\": \"%s\", "
                "\"valid_to\": \"%s\", \"payment_method\": null}\n",
                i ? "," : "", (10 + j % 48) / 1.05, 10.0 + j % 48, a, b);
    }
    fputs("]}\n", fj);
    fclose(fc);
    fclose(fj);
    const char *files[] = {csv, json};
    for (int k = 0; k < 2; k++) {
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double s = gp_mono_s();
            gp_tariff *t = LOAD_OK(.file = files[k]);
            double e = gp_mono_s() - s;
            if (e < best) best = e;
            size_t got = 0;
            gp_price_slot *sl = gp_tariff_slots(t, INT64_MIN, INT64_MAX, &got);
            assert_int_equal(got, n);
            assert_near(sl[n - 1].import, 0.57);
            free(sl);
            assert_near(gp_tariff_import(t, t0 + 47 * 1800000LL + 1), 0.57);
            gp_tariff_free(t);
        }
        fprintf(stderr, "# %s: 17,520 slots loaded in %.1f ms (best of 5)\n",
                k ? "Octopus JSON" : "CSV", best * 1e3);
        assert_true(best < 1.0); /* generous for sanitizers and valgrind; ~10 ms normally */
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tz_london),
        cmocka_unit_test(tz_matches_libc),
        cmocka_unit_test(tz_unknown),
        cmocka_unit_test(fixed_and_null),
        cmocka_unit_test(csv_ok),
        cmocka_unit_test(csv_errors),
        cmocka_unit_test(many_errors),
        cmocka_unit_test(octopus_ok),
        cmocka_unit_test(octopus_errors),
        cmocka_unit_test(octopus_in_currency_warns),
        cmocka_unit_test(periods_utc),
        cmocka_unit_test(periods_midnight),
        cmocka_unit_test(periods_dst),
        cmocka_unit_test(periods_errors),
        cmocka_unit_test(periods_consistent),
        cmocka_unit_test(lua_ctx_tariff),
        cmocka_unit_test(big_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
