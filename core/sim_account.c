/* Simulation bookkeeping (see sim_account.h). */
#include "sim_account.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "str.h"
#include "timeutil.h"

#define MAX_EXAMPLES 20
#define TOLERANCE_W  1.0  /* power limits: rounding of energy over a step */
#define TOLERANCE_PC 0.01 /* SoC bounds, percentage points */

const char *const gp_energy_names[GP_E_N] = {
    "import_wh", "export_wh", "pv_wh", "load_wh", "charge_wh", "discharge_wh", "loss_wh",
};

struct gp_sim_acct {
    gp_fleet *fleet;
    FILE *csv;
    int per_device;
    size_t series_every; /* keep every k-th step of the site series; 0: none */
    double site_import_w, site_export_w;
    size_t n;
    double *prev;  /* n * GP_E_N counters at the previous step's end */
    double *delta; /* scratch: n * GP_E_N */
    gp_sim_totals tot;
    gp_sim_point *series;
    size_t n_series, cap_series;
    char *examples[MAX_EXAMPLES];
    size_t n_examples;
    double balance_err;
};

/* The number after "name": in a flat JSON object's text (the host prints extras compactly
 * and the counters are top-level numbers), or NAN. A full parse of every device's extras at
 * every step was a tenth of a simulation's time. */
static double field(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strchr(text, '"'); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, name, n) != 0 || p[n + 1] != '"') continue;
        const char *v = p + n + 2;
        while (*v == ' ' || *v == ':')
            v++;
        char *end;
        double x = strtod(v, &end);
        return end > v ? x : NAN;
    }
    return NAN;
}

/* The counters of device i from its reading extras; -1 when one is missing. */
static int counters(const gp_fleet *f, size_t i, double out[GP_E_N])
{
    const char *text = gp_fleet_extra(f, i);
    if (!text) return -1;
    for (int k = 0; k < GP_E_N; k++) {
        out[k] = field(text, gp_energy_names[k]);
        if (!isfinite(out[k])) return -1;
    }
    return 0;
}

gp_sim_acct *gp_sim_acct_new(gp_fleet *fleet, FILE *csv, int per_device, size_t series_every,
                             double site_import_w, double site_export_w, char *err, size_t errlen)
{
    gp_sim_acct *a = gp_xcalloc(1, sizeof *a);
    a->fleet = fleet;
    a->csv = csv;
    a->per_device = per_device;
    a->series_every = series_every;
    a->site_import_w = site_import_w;
    a->site_export_w = site_export_w;
    a->n = gp_fleet_count(fleet);
    a->prev = gp_xcalloc(a->n ? a->n * GP_E_N : 1, sizeof(double));
    a->delta = gp_xcalloc(a->n ? a->n * GP_E_N : 1, sizeof(double));
    a->tot.soc_min_pct = a->tot.soc_max_pct = NAN;
    for (size_t i = 0; i < a->n; i++) {
        if (counters(fleet, i, &a->prev[i * GP_E_N]) != 0) {
            snprintf(err, errlen,
                     "%s: no energy counters in its readings (simulate needs sim devices)",
                     gp_fleet_id(fleet, i));
            gp_sim_acct_free(a);
            return NULL;
        }
    }
    if (csv) {
        fprintf(csv, "time,device,soc_pct,battery_w,pv_w,load_w,grid_w");
        for (int k = 0; k < GP_E_N; k++)
            fprintf(csv, ",%s", gp_energy_names[k]);
        fprintf(csv, ",import_price,export_price,cost,setpoint_w\n");
    }
    return a;
}

void gp_sim_acct_free(gp_sim_acct *a)
{
    if (!a) return;
    free(a->prev);
    free(a->delta);
    free(a->series);
    for (size_t i = 0; i < a->n_examples; i++)
        free(a->examples[i]);
    free(a);
}

static void violation(gp_sim_acct *a, int64_t t, const char *who, const char *fmt, double x,
                      double lim)
{
    a->tot.violations++;
    if (a->n_examples == MAX_EXAMPLES) return;
    char when[40], what[160];
    gp_format_time(t, when, sizeof when);
    snprintf(what, sizeof what, fmt, x, lim);
    gp_str s = {0};
    gp_str_printf(&s, "%s %s: %s", when, who, what);
    a->examples[a->n_examples++] = gp_xstrdup(gp_str_cstr(&s));
    gp_str_clear(&s);
}

static double setpoint_in_force(const gp_device *d)
{
    const gp_slot *s = &d->slot[GP_SLOT_DISPATCH];
    if (s->cmd.kind != GP_CMD_SETPOINT) return NAN;
    return s->state == GP_JS_SENT || s->state == GP_JS_ACCEPTED || s->state == GP_JS_PENDING
               ? s->cmd.value
               : NAN;
}

static void csv_num(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputc(',', f);
}

static void csv_row(gp_sim_acct *a, const char *when, const char *who, double soc, const double *wh,
                    double h, double ip, double ep, double cost, double set)
{
    FILE *f = a->csv;
    fprintf(f, "%s,%s", when, who);
    csv_num(f, ",%.3f", soc);
    csv_num(f, ",%.1f", (wh[GP_E_DISCHARGE] - wh[GP_E_CHARGE]) / h);
    csv_num(f, ",%.1f", wh[GP_E_PV] / h);
    csv_num(f, ",%.1f", wh[GP_E_LOAD] / h);
    csv_num(f, ",%.1f", (wh[GP_E_IMPORT] - wh[GP_E_EXPORT]) / h);
    for (int k = 0; k < GP_E_N; k++)
        fprintf(f, ",%.4f", wh[k]);
    csv_num(f, ",%.6g", ip);
    csv_num(f, ",%.6g", ep);
    csv_num(f, ",%.6f", cost);
    csv_num(f, ",%.0f", set);
    fputc('\n', f);
}

static double money(const double *wh, double ip, double ep)
{
    double c = 0;
    if (isfinite(ip)) c += wh[GP_E_IMPORT] / 1000.0 * ip;
    if (isfinite(ep)) c -= wh[GP_E_EXPORT] / 1000.0 * ep;
    return c;
}

int gp_sim_acct_step(gp_sim_acct *a, const gp_tariff *tariff, int64_t t0, int64_t t1, char *err,
                     size_t errlen)
{
    double h = (double)(t1 - t0) / 3600000.0;
    if (!(h > 0)) return 0;
    double ip = gp_tariff_import(tariff, t0), ep = gp_tariff_export(tariff, t0);
    double site[GP_E_N] = {0};
    double cap = 0, stored = 0;
    char when[40];
    gp_format_time(t0, when, sizeof when);
    for (size_t i = 0; i < a->n; i++) {
        double now[GP_E_N];
        if (counters(a->fleet, i, now) != 0) {
            snprintf(err, errlen, "%s: energy counters missing from its reading at %s",
                     gp_fleet_id(a->fleet, i), when);
            return -1;
        }
        double *prev = &a->prev[i * GP_E_N], *wh = &a->delta[i * GP_E_N];
        for (int k = 0; k < GP_E_N; k++) {
            wh[k] = now[k] - prev[k];
            prev[k] = now[k];
            site[k] += wh[k];
        }
        double imbalance =
            fabs((wh[GP_E_IMPORT] - wh[GP_E_EXPORT]) -
                 (wh[GP_E_LOAD] - wh[GP_E_PV] + wh[GP_E_CHARGE] - wh[GP_E_DISCHARGE]));
        if (imbalance > a->balance_err) a->balance_err = imbalance;

        const gp_device *d = gp_fleet_cdev(a->fleet, i);
        const char *id = gp_fleet_id(a->fleet, i);
        if (isfinite(d->soc_pct) && d->capacity_wh > 0) {
            cap += d->capacity_wh;
            stored += d->capacity_wh * d->soc_pct / 100.0;
            if (isnan(a->tot.soc_min_pct) || d->soc_pct < a->tot.soc_min_pct)
                a->tot.soc_min_pct = d->soc_pct;
            if (isnan(a->tot.soc_max_pct) || d->soc_pct > a->tot.soc_max_pct)
                a->tot.soc_max_pct = d->soc_pct;
            if (isfinite(d->soc_min_pct) && d->soc_pct < d->soc_min_pct - TOLERANCE_PC)
                violation(a, t1, id, "SoC %.2f %% below its minimum %.2f %%", d->soc_pct,
                          d->soc_min_pct);
            if (isfinite(d->soc_max_pct) && d->soc_pct > d->soc_max_pct + TOLERANCE_PC)
                violation(a, t1, id, "SoC %.2f %% above its maximum %.2f %%", d->soc_pct,
                          d->soc_max_pct);
        }
        if (isfinite(d->max_charge_w) && wh[GP_E_CHARGE] / h > d->max_charge_w + TOLERANCE_W)
            violation(a, t0, id, "charged at %.0f W, over its limit %.0f W", wh[GP_E_CHARGE] / h,
                      d->max_charge_w);
        if (isfinite(d->max_discharge_w) &&
            wh[GP_E_DISCHARGE] / h > d->max_discharge_w + TOLERANCE_W)
            violation(a, t0, id, "discharged at %.0f W, over its limit %.0f W",
                      wh[GP_E_DISCHARGE] / h, d->max_discharge_w);
        if (a->csv && a->per_device)
            csv_row(a, when, id, d->soc_pct, wh, h, ip, ep, money(wh, ip, ep),
                    setpoint_in_force(d));
    }
    double net_w = (site[GP_E_IMPORT] - site[GP_E_EXPORT]) / h;
    if (isfinite(a->site_import_w) && net_w > a->site_import_w + TOLERANCE_W)
        violation(a, t0, "site", "imported %.0f W, over limits.site_import_w %.0f W", net_w,
                  a->site_import_w);
    if (isfinite(a->site_export_w) && -net_w > a->site_export_w + TOLERANCE_W)
        violation(a, t0, "site", "exported %.0f W, over limits.site_export_w %.0f W", -net_w,
                  a->site_export_w);
    if (net_w > a->tot.peak_import_w) a->tot.peak_import_w = net_w;
    for (int k = 0; k < GP_E_N; k++)
        a->tot.wh[k] += site[k];
    if (isfinite(ip))
        a->tot.cost_import += site[GP_E_IMPORT] / 1000.0 * ip;
    else
        a->tot.unpriced_steps++;
    if (isfinite(ep)) a->tot.cost_export += site[GP_E_EXPORT] / 1000.0 * ep;
    a->tot.steps++;
    double soc = cap > 0 ? 100.0 * stored / cap : NAN;
    if (a->csv && !a->per_device)
        csv_row(a, when, "site", soc, site, h, ip, ep, money(site, ip, ep), NAN);
    if (a->series_every && (a->tot.steps - 1) % a->series_every == 0) {
        if (a->n_series == a->cap_series) {
            a->cap_series = a->cap_series ? 2 * a->cap_series : 1024;
            a->series = gp_xrealloc(a->series, a->cap_series * sizeof *a->series);
        }
        a->series[a->n_series++] = (gp_sim_point){
            .t_ms = t0,
            .import_price = ip,
            .export_price = ep,
            .soc_pct = soc,
            .pv_w = site[GP_E_PV] / h,
            .load_w = site[GP_E_LOAD] / h,
            .battery_w = (site[GP_E_DISCHARGE] - site[GP_E_CHARGE]) / h,
            .grid_w = net_w,
        };
    }
    return 0;
}

const gp_sim_totals *gp_sim_acct_totals(const gp_sim_acct *a)
{
    return &a->tot;
}

const gp_sim_point *gp_sim_acct_series(const gp_sim_acct *a, size_t *n)
{
    *n = a->n_series;
    return a->series;
}

const char *const *gp_sim_acct_examples(const gp_sim_acct *a, size_t *n)
{
    *n = a->n_examples;
    return (const char *const *)a->examples;
}

double gp_sim_acct_balance_error(const gp_sim_acct *a)
{
    return a->balance_err;
}
