/*
 * `gridpilot simulate` (see simulate.h). The runtime is the one `run` uses (loader, sim
 * plugin through the ABI, fleet, strategy sandbox, dispatch, journal), driven on the virtual
 * clock: at each step the strategy decides at t, the clock moves to the step's end, every
 * device is read, and the step is booked. The baseline is the same config run the same way
 * with the strategy left out: the devices stay in their own mode (sim: `own_mode`).
 *
 * Each run keeps its journal in OUT/journal/<run>/, started empty: a simulation never
 * resumes an earlier one, and never touches the config's state_dir.
 */
#include "simulate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "diag.h"
#include "log.h"
#include "path.h"
#include "sim_account.h"
#include "sim_metrics.h"
#include "sim_plot.h"
#include "str.h"
#include "tariff.h"
#include "timer.h"
#include "timeutil.h"

#define DAY_MS    86400000LL
#define MAX_STEPS 10000000 /* 19 years of minutes: beyond it, a mistake in --from/--to */
#define MAX_PLOT  1000000  /* plot points: longer runs plot every k-th step */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct span {
    int64_t from, to, step;
} span;

typedef struct run_result {
    gp_sim_totals tot;
    double balance_err;
    size_t devices;
    uint64_t strategy_failures;
    double wall_s;
    int done;                /* the run reached `to` */
    gp_metric_sums *metrics; /* gp.metric figures; owned (strategy run only) */
} run_result;

/* ---- progress ------------------------------------------------------------------------- */

typedef struct progress {
    int on;
    const char *what;
    double started, shown;
} progress;

static void progress_show(progress *p, const span *s, int64_t t, uint64_t steps, int last)
{
    if (!p->on) return;
    double now = gp_mono_s();
    if (!last && now - p->shown < 0.5) return;
    p->shown = now;
    char when[40];
    gp_format_time(t, when, sizeof when);
    when[16] = '\0'; /* to the minute */
    double pct = 100.0 * (double)(t - s->from) / (double)(s->to - s->from);
    double rate = now > p->started ? (double)steps / (now - p->started) : 0;
    fprintf(stderr, "\r%-8s %s %5.1f%%  %8.0f steps/s%s", p->what, when, pct, rate,
            last ? "\n" : "");
    fflush(stderr);
}

/* ---- one run -------------------------------------------------------------------------- */

/* Delete an earlier run's journal so this one starts from nothing. */
static int fresh_dir(const char *dir, char *err, size_t len)
{
    if (gp_path_mkdirs(dir, 0750) != 0) {
        snprintf(err, len, "%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    static const char *const files[] = {"journal.db", "journal.db-wal", "journal.db-shm"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *p = gp_path_resolve(dir, files[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            snprintf(err, len, "%s: cannot remove: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        free(p);
    }
    return 0;
}

/* Run the config over the span; book every step into a new accounting (returned in *acct,
 * owned by the caller). Returns 0, 1 runtime failure, 2 config error. */
static int run_once(const gp_sim_opts *o, const span *s, const char *state_dir, int baseline,
                    FILE *csv, run_result *res, gp_sim_acct **acct)
{
    *acct = NULL;
    char err[512];
    if (fresh_dir(state_dir, err, sizeof err) != 0) {
        gp_err("simulate", "%s", err);
        return 1;
    }
    gp_config *cfg = gp_config_load_reported(o->config);
    if (!cfg) return 2;
    double imp = cfg->site_import_w, exp_ = cfg->site_export_w;
    gp_clock_set_virtual(s->from);
    gp_run_opts ro = {
        .config = o->config, .state_dir = state_dir, .no_strategy = baseline, .step_ms = s->step};
    int code = 0;
    struct gp_rt *rt = gp_rt_open_virtual(cfg, &ro, &code);
    if (!rt) return code;
    /* Every command of a year would be an info line: keep warnings, and -v shows all. */
    int level = gp_log_level();
    if (level == GP_LOG_INFO) gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    double t_wall = gp_mono_s();
    if (gp_rt_start_virtual(rt) != 0) {
        gp_log_setup(GP_LOGFMT_TEXT, level);
        gp_err("simulate", "the sim adapters did not become ready (see above)");
        gp_rt_close(rt);
        return 1;
    }
    gp_fleet *fleet = gp_rt_fleet_of(rt);
    int64_t steps = (s->to - s->from + s->step - 1) / s->step;
    size_t every = !baseline && o->plot ? (size_t)((steps + MAX_PLOT - 1) / MAX_PLOT) : 0;
    gp_sim_acct *a = gp_sim_acct_new(fleet, csv, o->series == GP_SERIES_DEVICES, every, imp, exp_,
                                     err, sizeof err);
    if (!a) {
        gp_log_setup(GP_LOGFMT_TEXT, level);
        gp_err("simulate", "%s", err);
        gp_rt_close(rt);
        return 2;
    }
    progress p = {isatty(STDERR_FILENO), baseline ? "baseline" : "strategy", gp_mono_s(), 0};
    int rc = 0;
    int64_t t = s->from;
    while (t < s->to && !interrupted) {
        if (gp_rt_step_tick(rt, t) != 0) {
            rc = 1;
            break;
        }
        if (res->metrics) {
            size_t nm;
            const gp_metric *m = gp_rt_metrics(rt, &nm);
            gp_metric_sums_add(res->metrics, m, nm);
        }
        int64_t next = t + s->step < s->to ? t + s->step : s->to;
        gp_clock_advance(next);
        gp_rt_step_read(rt);
        if (gp_sim_acct_step(a, gp_rt_tariff(rt), t, next, err, sizeof err) != 0) {
            gp_err("simulate", "%s", err);
            rc = 1;
            break;
        }
        t = next;
        progress_show(&p, s, t, gp_sim_acct_totals(a)->steps, 0);
    }
    progress_show(&p, s, t, gp_sim_acct_totals(a)->steps, 1);
    res->tot = *gp_sim_acct_totals(a);
    res->balance_err = gp_sim_acct_balance_error(a);
    res->devices = gp_fleet_count(fleet);
    res->done = t >= s->to;
    res->strategy_failures = gp_rt_strategy_failures(rt);
    gp_rt_close(rt);
    gp_log_setup(GP_LOGFMT_TEXT, level);
    res->wall_s = gp_mono_s() - t_wall;
    *acct = a;
    return rc;
}

/* ---- the report ----------------------------------------------------------------------- */

static void add_num(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* Round for the report: Wh to 0.1, money to 1e-4. */
static double r(double v, double unit)
{
    return isfinite(v) ? round(v / unit) * unit : v;
}

static cJSON *totals_json(const gp_sim_totals *t, cJSON *o)
{
    cJSON *e = cJSON_AddObjectToObject(o, "energy");
    for (int k = 0; k < GP_E_N; k++)
        add_num(e, gp_energy_names[k], r(t->wh[k], 0.1));
    cJSON *c = cJSON_AddObjectToObject(o, "cost");
    add_num(c, "import", r(t->cost_import, 1e-4));
    add_num(c, "export", r(t->cost_export, 1e-4));
    add_num(c, "net", r(t->cost_import - t->cost_export, 1e-4));
    add_num(o, "peak_import_w", r(t->peak_import_w, 0.1));
    return o;
}

static int write_report(const char *path, const gp_sim_opts *o, const span *s,
                        const run_result *base, const run_result *strat, const char *strategy,
                        const gp_sim_acct *a)
{
    cJSON *root = cJSON_CreateObject();
    char from[40], to[40];
    gp_format_time(s->from, from, sizeof from);
    gp_format_time(s->to, to, sizeof to);
    cJSON_AddStringToObject(root, "config", o->config);
    if (strategy)
        cJSON_AddStringToObject(root, "strategy", strategy);
    else
        cJSON_AddNullToObject(root, "strategy");
    cJSON_AddStringToObject(root, "from", from);
    cJSON_AddStringToObject(root, "to", to);
    cJSON_AddNumberToObject(root, "step_s", (double)s->step / 1000.0);
    cJSON_AddNumberToObject(root, "steps", (double)strat->tot.steps);
    cJSON_AddNumberToObject(root, "devices", (double)strat->devices);
    cJSON_AddBoolToObject(root, "complete", strat->done && base->done);
    totals_json(&strat->tot, root);
    totals_json(&base->tot, cJSON_AddObjectToObject(root, "baseline"));
    double net = strat->tot.cost_import - strat->tot.cost_export;
    double bnet = base->tot.cost_import - base->tot.cost_export;
    add_num(root, "savings", r(bnet - net, 1e-4));
    add_num(root, "savings_pct",
            fabs(bnet) > 1e-9 ? r(100.0 * (bnet - net) / fabs(bnet), 0.01) : NAN);
    add_num(root, "import_reduction_wh",
            r(base->tot.wh[GP_E_IMPORT] - strat->tot.wh[GP_E_IMPORT], 0.1));
    cJSON_AddNumberToObject(root, "strategy_errors", (double)strat->strategy_failures);
    cJSON_AddNumberToObject(root, "violations", (double)strat->tot.violations);
    size_t n_ex = 0;
    const char *const *ex = gp_sim_acct_examples(a, &n_ex);
    cJSON *arr = cJSON_AddArrayToObject(root, "violation_examples");
    for (size_t i = 0; i < n_ex; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(ex[i]));
    cJSON *soc = cJSON_AddObjectToObject(root, "soc");
    add_num(soc, "min_pct", r(strat->tot.soc_min_pct, 0.01));
    add_num(soc, "max_pct", r(strat->tot.soc_max_pct, 0.01));
    cJSON_AddNumberToObject(root, "unpriced_steps", (double)strat->tot.unpriced_steps);
    add_num(root, "balance_error_wh", strat->balance_err);
    cJSON *perf = cJSON_AddObjectToObject(root, "performance");
    add_num(perf, "wall_s", r(strat->wall_s, 0.001));
    add_num(perf, "steps_per_s",
            strat->wall_s > 0 ? r((double)strat->tot.steps / strat->wall_s, 0.1) : NAN);
    add_num(perf, "baseline_wall_s", r(base->wall_s, 0.001));
    cJSON_AddItemToObject(root, "metrics", gp_metric_sums_json(strat->metrics));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok) gp_err("simulate", "%s: cannot write: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

/* ---- options -------------------------------------------------------------------------- */

/* A step is priced at its start: say so when the tariff changes price inside steps. */
static void warn_misaligned(const gp_tariff *t, const span *s)
{
    size_t n = 0;
    int64_t to = s->from + 7 * DAY_MS < s->to ? s->from + 7 * DAY_MS : s->to;
    gp_price_slot *slots = gp_tariff_slots(t, s->from, to, &n);
    for (size_t i = 1; i < n; i++) {
        if ((slots[i].start_ms - s->from) % s->step == 0) continue;
        char when[40], step[32];
        gp_format_time(slots[i].start_ms, when, sizeof when);
        gp_format_duration(s->step, step, sizeof step);
        gp_warn("simulate",
                "the tariff changes price inside a step (first at %s, steps of %s from --from): "
                "each step is priced at its start; a step that divides the tariff's slots "
                "prices exactly",
                when, step);
        break;
    }
    free(slots);
}

static int resolve_span(const gp_sim_opts *o, const gp_config *cfg, span *s)
{
    char err[200];
    s->step = cfg->tick_ms;
    if (o->step && gp_parse_duration_ms(o->step, &s->step, err, sizeof err) != 0) {
        fprintf(stderr, "gridpilot simulate: --step: %s\n", err);
        return 2;
    }
    if (s->step < 1000) {
        fprintf(stderr, "gridpilot simulate: %s must be at least 1s\n",
                o->step ? "--step" : "the config's tick (the default step; or give --step)");
        return 2;
    }
    int64_t tf = 0, tt = 0;
    int bounded = cfg->tariff && gp_tariff_extent(cfg->tariff, &tf, &tt) == 0;
    if (o->from) {
        if (gp_parse_time_ms(o->from, &s->from, err, sizeof err) != 0) {
            fprintf(stderr, "gridpilot simulate: --from: %s\n", err);
            return 2;
        }
    } else if (bounded) {
        s->from = tf;
    } else {
        s->from = gp_wall_ms() / DAY_MS * DAY_MS;
    }
    if (o->to) {
        if (gp_parse_time_ms(o->to, &s->to, err, sizeof err) != 0) {
            fprintf(stderr, "gridpilot simulate: --to: %s\n", err);
            return 2;
        }
    } else {
        /* An open-ended file (Octopus' newest price "until further notice") has no end. */
        s->to = bounded && tt > s->from && tt != INT64_MAX ? tt : s->from + DAY_MS;
    }
    if (s->to <= s->from) {
        fprintf(stderr, "gridpilot simulate: --to must be after --from\n");
        return 2;
    }
    if ((s->to - s->from) / s->step > MAX_STEPS) {
        fprintf(stderr,
                "gridpilot simulate: %lld steps (--from .. --to in steps of --step) is more than "
                "%d: use a longer --step or a shorter period\n",
                (long long)((s->to - s->from) / s->step), MAX_STEPS);
        return 2;
    }
    if (bounded && (s->from < tf || s->to > tt))
        gp_warn("simulate",
                "the tariff file covers only part of the period: steps without a price cost 0 "
                "(counted in unpriced_steps)");
    warn_misaligned(cfg->tariff, s);
    return 0;
}

/* Only sim adapters: a simulation must never reach a real vendor. */
static int only_sim(const gp_config *cfg)
{
    int bad = 0;
    for (size_t i = 0; i < cfg->n_adapters; i++) {
        const gp_adapter_cfg *ac = &cfg->adapters[i];
        if (ac->plugin && strcmp(ac->plugin, "sim") == 0) continue;
        fprintf(stderr,
                "%s: adapters[%zu].plugin: simulate runs sim adapters only, not '%s' (it "
                "would reach a real vendor); put the fleet on the sim plugin\n",
                cfg->path, i, ac->plugin ? ac->plugin : "?");
        bad = 1;
    }
    return bad ? 2 : 0;
}

int gp_simulate(const gp_sim_opts *o)
{
    gp_config *cfg = gp_config_load_reported(o->config);
    if (!cfg) return 2;
    span s;
    int rc = resolve_span(o, cfg, &s);
    if (!rc) rc = only_sim(cfg);
    char *strategy = cfg->has_strategy ? gp_xstrdup(cfg->strategy_file) : NULL;
    gp_config_free(cfg);
    if (rc) {
        free(strategy);
        return rc;
    }
    if (o->plot && !gp_sim_plot_available()) {
        fprintf(stderr, "gridpilot simulate: --plot: this gridpilot was built without PLplot "
                        "(install libplplot-dev and plplot-driver-cairo, then rebuild)\n");
        free(strategy);
        return 2;
    }
    const char *out = o->out ? o->out : "simulate-out";
    if (gp_path_mkdirs(out, 0755) != 0) {
        fprintf(stderr, "gridpilot simulate: --out %s: cannot create: %s\n", out, strerror(errno));
        free(strategy);
        return 1;
    }
    char *csv_path = gp_path_resolve(out, "timeseries.csv");
    char *report_path = gp_path_resolve(out, "report.json");
    char *plot_path = gp_path_resolve(out, "plot.png");
    char *base_dir = gp_path_resolve(out, "journal/baseline");
    char *strat_dir = gp_path_resolve(out, "journal/strategy");
    char from[40], to[40], step[32];
    gp_format_time(s.from, from, sizeof from);
    gp_format_time(s.to, to, sizeof to);
    gp_format_duration(s.step, step, sizeof step);
    gp_info("simulate", "%s .. %s in steps of %s (%lld steps), strategy %s, out %s", from, to, step,
            (long long)((s.to - s.from + s.step - 1) / s.step), strategy ? strategy : "none", out);

    interrupted = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    run_result base = {0}, strat = {.metrics = gp_metric_sums_new()};
    gp_sim_acct *base_acct = NULL, *strat_acct = NULL;
    FILE *csv = NULL;
    rc = run_once(o, &s, base_dir, 1, NULL, &base, &base_acct);
    if (!rc && !interrupted && o->series != GP_SERIES_NONE && !(csv = fopen(csv_path, "w"))) {
        gp_err("simulate", "%s: cannot write: %s", csv_path, strerror(errno));
        rc = 1;
    }
    if (!rc && !interrupted) rc = run_once(o, &s, strat_dir, 0, csv, &strat, &strat_acct);
    if (csv && fclose(csv) != 0) {
        gp_err("simulate", "%s: cannot write: %s", csv_path, strerror(errno));
        if (!rc) rc = 1;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    if (!rc && strat_acct) {
        if (write_report(report_path, o, &s, &base, &strat, strategy, strat_acct) != 0) rc = 1;
        if (!rc && o->plot) {
            size_t n = 0;
            const gp_sim_point *pts = gp_sim_acct_series(strat_acct, &n);
            char perr[256];
            if (gp_sim_plot(plot_path, pts, n, perr, sizeof perr) != 0) {
                gp_err("simulate", "--plot: %s", perr);
                rc = 1;
            }
        }
        if (!rc) {
            const gp_sim_totals *t = &strat.tot, *b = &base.tot;
            double net = t->cost_import - t->cost_export, bnet = b->cost_import - b->cost_export;
            gp_info("simulate",
                    "cost %.2f vs baseline %.2f: savings %.2f; import %.1f kWh (baseline %.1f), "
                    "peak import %.1f kW, %llu violation(s); %llu steps in %.1f s (%.0f "
                    "steps/s); wrote %s%s%s",
                    net, bnet, bnet - net, t->wh[GP_E_IMPORT] / 1000, b->wh[GP_E_IMPORT] / 1000,
                    t->peak_import_w / 1000, (unsigned long long)t->violations,
                    (unsigned long long)t->steps, strat.wall_s,
                    strat.wall_s > 0 ? (double)t->steps / strat.wall_s : 0, report_path,
                    csv_path && o->series != GP_SERIES_NONE ? ", timeseries.csv" : "",
                    o->plot ? ", plot.png" : "");
            gp_metric_sums_log(strat.metrics, "simulate");
        }
    }
    if (interrupted) {
        gp_warn("simulate", "interrupted: no report written");
        rc = 1;
    }
    if (!rc && strat.strategy_failures) {
        gp_err("simulate",
               "the strategy failed on %llu of %llu ticks (nothing was dispatched on those; see "
               "the first errors above): the figures do not show what it would do",
               (unsigned long long)strat.strategy_failures, (unsigned long long)strat.tot.steps);
        rc = 1;
    }
    gp_sim_acct_free(base_acct);
    gp_sim_acct_free(strat_acct);
    gp_metric_sums_free(strat.metrics);
    free(csv_path);
    free(report_path);
    free(plot_path);
    free(base_dir);
    free(strat_dir);
    free(strategy);
    return rc;
}
