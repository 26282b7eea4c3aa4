/*
 * The example strategies in strategies/ keep their promises: each test runs
 * `gridpilot simulate` on the shipped example config (examples/sim_<strategy>.json) and
 * data (examples/data/) over a few weeks of the example year, and checks report.json and
 * timeseries.csv (site rows) for what the strategy's header comment says it does.
 * Full-year figures: examples/run_year.sh.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

/* ---- running an example ---------------------------------------------------------------- */

/* Simulate examples/sim_<name>.json from..to into t->dir/out with site rows; returns
 * report.json (cJSON_Delete it). The example's plugin_path points at ../build/plugins;
 * GRIDPILOT_PLUGIN_PATH puts this build's plugins first. *err_out (if not NULL) gets
 * stderr (free it). */
static cJSON *simulate(it_env *t, const char *name, const char *from, const char *to, int verbose,
                       char **err_out)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/examples/sim_%s.json", GP_IT_SRCDIR, name);
    setenv("GRIDPILOT_PLUGIN_PATH", GP_IT_PLUGINS, 1);
    char *out, *err;
    int rc = verbose ? it_run(t, 300, &out, &err, "simulate", "-c", cfg, "--from", from, "--to", to,
                              "--out", "out", "--series", "site", "-v", NULL)
                     : it_run(t, 300, &out, &err, "simulate", "-c", cfg, "--from", from, "--to", to,
                              "--out", "out", "--series", "site", NULL);
    if (rc != 0) fprintf(stderr, "simulate %s exited %d:\n%s", name, rc, err);
    assert_int_equal(rc, 0);
    free(out);
    cJSON *r = it_read_json(t, "out/report.json");
    if (err_out)
        *err_out = err;
    else
        free(err);
    return r;
}

static const cJSON *base(const cJSON *r)
{
    const cJSON *b = cJSON_GetObjectItem(r, "baseline");
    assert_non_null(b);
    return b;
}

/* ---- timeseries.csv -------------------------------------------------------------------- */

enum { C_TIME, C_SOC, C_BAT, C_PV, C_LOAD, C_GRID, C_EXPORT_WH, C_CHARGE_WH, C_EPRICE, C_N };
static const char *const col_names[C_N] = {"time",      "soc_pct",   "battery_w",
                                           "pv_w",      "load_w",    "grid_w",
                                           "export_wh", "charge_wh", "export_price"};

typedef struct row {
    time_t t;
    double v[C_N]; /* v[C_TIME] unused */
} row;

/* "2026-01-01T00:00:00Z" or with fractional seconds: Unix seconds. */
static time_t parse_time(const char *s)
{
    struct tm tm = {0};
    int n = sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    assert_int_equal(n, 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* The site rows of out/timeseries.csv (free the array). */
static row *site_rows(it_env *t, size_t *n_out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/out/timeseries.csv", t->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    assert_non_null(fgets(line, sizeof line, f));
    int idx[C_N];
    for (int c = 0; c < C_N; c++)
        idx[c] = -1;
    int k = 0;
    for (char *p = line, *tok; (tok = strsep(&p, ",\r\n")) != NULL; k++)
        for (int c = 0; c < C_N; c++)
            if (strcmp(tok, col_names[c]) == 0) idx[c] = k;
    for (int c = 0; c < C_N; c++)
        if (idx[c] < 0) fail_msg("timeseries.csv: no column %s", col_names[c]);
    size_t n = 0, cap = 1024;
    row *rows = malloc(cap * sizeof *rows);
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, ",site,")) continue;
        if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
        row *r = &rows[n++];
        char *fields[64];
        int k = 0;
        for (char *p = line, *tok; k < 64 && (tok = strsep(&p, ",\n")) != NULL;)
            fields[k++] = tok;
        for (int c = 0; c < C_N; c++) {
            assert_true(idx[c] < k);
            if (c == C_TIME)
                r->t = parse_time(fields[idx[c]]);
            else
                r->v[c] = *fields[idx[c]] ? strtod(fields[idx[c]], NULL) : NAN;
        }
    }
    fclose(f);
    *n_out = n;
    return rows;
}

/* ---- the strategies -------------------------------------------------------------------- */

/* Storing PV surplus and covering the load from the battery cuts grid import clearly. */
static void self_consumption_cuts_import(void **state)
{
    it_env *t = *state;
    cJSON *r = simulate(t, "self_consumption", "2026-06-01", "2026-06-08", 0, NULL);
    double imp = it_num(r, "energy", "import_wh"), bimp = it_num(base(r), "energy", "import_wh");
    fprintf(stderr, "# self_consumption: import %.1f kWh vs baseline %.1f kWh, savings %.2f\n",
            imp / 1000, bimp / 1000, it_num(r, "savings", NULL));
    assert_true(bimp > 100000);    /* a week of ten houses imports plenty when idle */
    assert_true(imp < 0.8 * bimp); /* more than 20 % less */
    assert_true(it_num(r, "import_reduction_wh", NULL) > 0.2 * bimp);
    assert_true(it_num(r, "savings", NULL) > 0);
    assert_true(it_num(r, "violations", NULL) == 0);
    /* The batteries charge from surplus: export falls too. */
    assert_true(it_num(r, "energy", "export_wh") < it_num(base(r), "energy", "export_wh"));
    cJSON_Delete(r);
}

/* Planning on the half-hourly prices saves money and never leaves the SoC bounds. */
static void tou_arbitrage_saves_money(void **state)
{
    it_env *t = *state;
    char *err;
    cJSON *r = simulate(t, "tou_arbitrage", "2026-01-05", "2026-01-19", 1, &err);
    fprintf(stderr, "# tou_arbitrage: net %.2f vs baseline %.2f, savings %.2f (%.1f %%)\n",
            it_num(r, "cost", "net"), it_num(base(r), "cost", "net"), it_num(r, "savings", NULL),
            it_num(r, "savings_pct", NULL));
    assert_true(it_num(r, "savings", NULL) > 0);
    assert_true(it_num(r, "savings_pct", NULL) > 5);
    assert_true(it_num(r, "violations", NULL) == 0);
    /* The example's batteries have bounds 5-100 % and 10-95 %: per-device bounds are what
     * violations counts; the extremes stay inside the widest. */
    assert_true(it_num(r, "soc", "min_pct") >= 5 - 0.01);
    assert_true(it_num(r, "soc", "max_pct") <= 100 + 0.01);
    assert_true(it_num(r, "energy", "charge_wh") > 0);
    assert_true(it_num(r, "unpriced_steps", NULL) == 0);
    /* It reports what its plans expect: every tick, and at the first tick of each day, whose
     * sum is what the plans promised for the fortnight. */
    const cJSON *m = cJSON_GetObjectItem(r, "metrics");
    assert_true(it_num(m, "plan_savings", "ticks") == it_num(r, "steps", NULL));
    assert_true(it_num(m, "day_plan_savings", "ticks") == 14);
    double promised = it_num(m, "day_plan_savings", "sum");
    fprintf(stderr, "# tou_arbitrage: the day-ahead plans promised %.2f, realised %.2f (%.0f %%)\n",
            promised, it_num(r, "savings", NULL), 100 * it_num(r, "savings", NULL) / promised);
    assert_true(promised > 0);
    /* The plans forecast PV and load from the previous day: realised savings differ, but
     * not by a factor of two either way. */
    assert_true(it_num(r, "savings", NULL) > 0.5 * promised);
    assert_true(it_num(r, "savings", NULL) < 2 * promised);
    assert_non_null(strstr(err, "metric day_plan_savings: "));
    free(err);
    cJSON_Delete(r);
}

/* Site import stays under the cap; the baseline peak is far above it. */
static void peak_shaving_keeps_the_cap(void **state)
{
    it_env *t = *state;
    const double cap = 10000; /* examples/sim_peak_shaving.json params.import_cap_w */
    cJSON *r = simulate(t, "peak_shaving", "2026-01-05", "2026-01-12", 0, NULL);
    double peak = it_num(r, "peak_import_w", NULL), bpeak = it_num(base(r), "peak_import_w", NULL);
    size_t n;
    row *rows = site_rows(t, &n);
    /* Ten homes of 2.6 kW and 10 % minimum SoC: the fleet can do no more when it discharges
     * all it can or is empty. Every step over the cap must be one of those. */
    const double fleet_max_w = 10 * 2600, soc_min = 10;
    size_t over = 0, over_with_room = 0, needed = 0;
    for (size_t i = 0; i < n; i++) {
        needed += rows[i].v[C_GRID] + rows[i].v[C_BAT] > cap; /* over with idle batteries */
        if (!(rows[i].v[C_GRID] > cap)) continue;
        over++;
        if (rows[i].v[C_BAT] < fleet_max_w - 50 && rows[i].v[C_SOC] > soc_min + 0.5) {
            over_with_room++;
            fprintf(stderr, "# over the cap with room: %.0f W import, %.0f W, SoC %.1f %%\n",
                    rows[i].v[C_GRID], rows[i].v[C_BAT], rows[i].v[C_SOC]);
        }
    }
    fprintf(stderr,
            "# peak_shaving: peak %.0f W vs baseline %.0f W (cap %.0f W); %zu of %zu steps "
            "needed the fleet, %zu ended over the cap, %zu of them with power to spare\n",
            peak, bpeak, cap, needed, n, over, over_with_room);
    assert_int_equal(n, 7 * 288);
    assert_true(bpeak > 2 * cap); /* the example is meaningful */
    assert_true(needed > 100);
    assert_true(peak < bpeak);
    assert_int_equal(over_with_room, 0);
    assert_true(it_num(r, "violations", NULL) == 0);
    free(rows);
    cJSON_Delete(r);
}

/* The target schedule, as the strategy reads it. */
typedef struct block {
    time_t start, stop;
    double w;
} block;

static block *read_schedule(size_t *n_out, double *amplitude)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples/data/fleet_target.csv", GP_IT_SRCDIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256], a[64], b[64];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "start,stop,target_w"));
    size_t n = 0;
    block *bl = calloc(1000, sizeof *bl);
    *amplitude = 0;
    while (n < 1000 && fgets(line, sizeof line, f)) {
        double w;
        if (sscanf(line, "%63[^,],%63[^,],%lf", a, b, &w) != 3) continue;
        bl[n] = (block){parse_time(a), parse_time(b), w};
        if (fabs(w) > *amplitude) *amplitude = fabs(w);
        n++;
    }
    fclose(f);
    *n_out = n;
    return bl;
}

/* The fleet's battery power follows the schedule. */
static void fleet_target_tracks(void **state)
{
    it_env *t = *state;
    size_t nb;
    double amp;
    block *bl = read_schedule(&nb, &amp);
    assert_int_equal(nb, 7 * 24);
    char *err;
    cJSON *r = simulate(t, "fleet_target", "2026-01-01", "2026-01-08", 0, &err);
    size_t n;
    row *rows = site_rows(t, &n);
    assert_int_equal(n, 7 * 288);
    double abs_err = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double want = 0;
        for (size_t k = 0; k < nb; k++)
            if (rows[i].t >= bl[k].start && rows[i].t < bl[k].stop) want = bl[k].w;
        double e = fabs(rows[i].v[C_BAT] - want);
        abs_err += e;
        if (e > worst) worst = e;
    }
    abs_err /= (double)n;
    fprintf(stderr,
            "# fleet_target: mean |battery_w - target_w| %.1f W (worst %.0f W) for targets up "
            "to %.0f W\n",
            abs_err, worst, amp);
    if (abs_err >= 0.01 * amp) fprintf(stderr, "%.2000s", err); /* the strategy's errors */
    free(err);
    assert_true(amp >= 10000);
    /* The example's week is within what the fleet can do: it tracks to within 1 %. */
    assert_true(abs_err < 0.01 * amp);
    /* And it says so itself: the error it reports under a non-zero target. */
    const cJSON *te = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metrics"), "tracking_error_w");
    fprintf(stderr, "# fleet_target reports mean |error| %.1f W, rms %.1f W over %.0f ticks\n",
            it_num(te, "mean_abs", NULL), it_num(te, "rms", NULL), it_num(te, "ticks", NULL));
    assert_true(it_num(te, "ticks", NULL) > n / 4);
    assert_true(it_num(te, "mean_abs", NULL) < 0.01 * amp);
    assert_true(it_num(r, "violations", NULL) == 0);
    free(rows);
    free(bl);
    cJSON_Delete(r);
}

/* While exporting would cost money the site exports nothing and the batteries charge. */
static void negative_prices_stop_export(void **state)
{
    it_env *t = *state;
    /* 2026-08-05..19 of the example prices has 49 slots of negative export price, by day
     * and by night. */
    cJSON *r = simulate(t, "negative_price_curtail", "2026-08-05", "2026-08-19", 0, NULL);
    size_t n;
    row *rows = site_rows(t, &n);
    size_t neg = 0, neg_day = 0;
    double exp_neg = 0, exp_other = 0, charge_neg = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].v[C_EPRICE] < 0) {
            neg++;
            exp_neg += rows[i].v[C_EXPORT_WH];
            charge_neg += rows[i].v[C_CHARGE_WH];
            struct tm tm;
            gmtime_r(&rows[i].t, &tm);
            neg_day += tm.tm_hour >= 8 && tm.tm_hour < 16;
        } else {
            exp_other += rows[i].v[C_EXPORT_WH];
        }
    }
    /* In the example only the PV-only roofs export, and they do the same in both runs
     * outside the negative slots: the baseline's export in those slots is the difference. */
    double bexp_neg = it_num(base(r), "energy", "export_wh") - exp_other;
    fprintf(stderr,
            "# negative_price_curtail: %zu negative steps (%zu by day): export %.1f kWh (idle "
            "fleet: %.1f kWh), charged %.1f kWh; savings %.2f\n",
            neg, neg_day, exp_neg / 1000, bexp_neg / 1000, charge_neg / 1000,
            it_num(r, "savings", NULL));
    assert_true(neg >= 20 && neg_day >= 5);
    assert_true(bexp_neg > 10000); /* without the strategy the roofs export at a loss */
    assert_true(exp_neg < 0.01 * bexp_neg);
    assert_true(charge_neg > 10000);
    assert_true(it_num(r, "energy", "export_wh") < it_num(base(r), "energy", "export_wh"));
    assert_true(it_num(r, "savings", NULL) > 0);
    assert_true(it_num(r, "violations", NULL) == 0);
    free(rows);
    cJSON_Delete(r);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, it_setup, it_teardown)
    const struct CMUnitTest tests[] = {
        T(self_consumption_cuts_import), T(tou_arbitrage_saves_money),
        T(peak_shaving_keeps_the_cap),   T(fleet_target_tracks),
        T(negative_prices_stop_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
