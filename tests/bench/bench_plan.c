/*
 * gp_plan benchmark: plan D devices (default 1,000) over S slots (default 96: 48 h of 30-min
 * slots) at a given SoC resolution (default 1 %), seeded random-ish prices and forecasts,
 * with each DP method. Prints total ms and us per device; asserts nothing, except that the
 * methods agree on every optimal cost (exit 1 otherwise: a benchmark of a wrong answer is
 * worthless). Then the same fleet planned from Lua, gp.plan per device inside one decide(),
 * to show what the binding (reading the slots, building the result tables) adds.
 *
 *   build/tests/bench/bench_plan [devices] [slots] [soc_step_pct]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fleet.h"
#include "log.h"
#include "plan.h"
#include "strategy.h"
#include "timeutil.h"

static uint64_t rng = 42;

static double rnd(void) /* [0, 1) */
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}

typedef struct device {
    gp_plan_in in;
    gp_plan_slot *slots;
} device;

/* Prices: a day shape (cheap night, dear evening) plus noise; export a third of import, so
 * every slot is convex (the usual case). With spiky = 1, one slot in ten exports above
 * import and some prices go negative: the non-convex path. */
static void make_slots(gp_plan_slot *s, size_t n, int spiky)
{
    for (size_t t = 0; t < n; t++) {
        double hour = fmod((double)t * 0.5, 24.0);
        double shape = 0.18 + 0.12 * sin((hour - 10.0) / 24.0 * 2 * M_PI);
        s[t].hours = 0.5;
        s[t].import = shape + 0.06 * (rnd() - 0.5);
        s[t].export_ = s[t].import / 3;
        if (spiky && t % 10 == 3) s[t].export_ = s[t].import * 1.5;
        if (spiky && t % 17 == 5) s[t].import = -0.05;
        double sun = hour > 6 && hour < 20 ? sin((hour - 6) / 14 * M_PI) : 0;
        s[t].pv_w = 4000 * sun * (0.6 + 0.4 * rnd());
        s[t].load_w = 300 + 900 * rnd();
    }
}

static device *make_devices(size_t nd, size_t ns, double step, int spiky)
{
    device *d = calloc(nd, sizeof *d);
    for (size_t i = 0; i < nd; i++) {
        d[i].slots = calloc(ns, sizeof *d[i].slots);
        make_slots(d[i].slots, ns, spiky);
        double cap = 5000 + 10000 * rnd();
        d[i].in = (gp_plan_in){.slots = d[i].slots,
                               .n_slots = ns,
                               .soc_pct = 10 + 80 * rnd(),
                               .capacity_wh = cap,
                               .max_charge_w = cap * (0.3 + 0.3 * rnd()),
                               .max_discharge_w = cap * (0.3 + 0.3 * rnd()),
                               .soc_min_pct = 5,
                               .soc_max_pct = 100,
                               .efficiency = 0.95,
                               .soc_step_pct = step,
                               .final_soc_pct = NAN,
                               .terminal_price = 0.1};
    }
    return d;
}

/* Plan every device with one method; returns total ms, costs in cost[]. */
static double run(device *d, size_t nd, gp_plan_method m, double *cost, size_t *states)
{
    size_t ws = 0;
    for (size_t i = 0; i < nd; i++) {
        size_t w = gp_plan_work_size(&d[i].in);
        if (w > ws) ws = w;
    }
    size_t ns = d[0].in.n_slots;
    double *work = malloc(ws), *sp = malloc(ns * sizeof *sp), *soc = malloc(ns * sizeof *soc);
    char err[128];
    double t0 = gp_mono_s();
    for (size_t i = 0; i < nd; i++) {
        d[i].in.method = m;
        gp_plan_out out = {.setpoint_w = sp, .soc_pct = soc};
        if (gp_plan(&d[i].in, work, ws, &out, err, sizeof err) != 0) {
            fprintf(stderr, "gp_plan: %s\n", err);
            exit(1);
        }
        cost[i] = out.cost -
                  d[i].in.terminal_price * out.final_soc_pct / 100 * d[i].in.capacity_wh / 1000;
        *states = out.states;
    }
    double ms = (gp_mono_s() - t0) * 1000.0;
    free(work);
    free(sp);
    free(soc);
    return ms;
}

static int compare(const double *a, const double *b, size_t n, const char *what)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    if (worst > 1e-6) {
        fprintf(stderr, "%s: optimal costs differ by up to %g\n", what, worst);
        return 1;
    }
    return 0;
}

/* c_us (may be NULL): the auto method's us per device. */
static int bench(size_t nd, size_t ns, double step, int spiky, size_t full_n, double *c_us)
{
    device *d = make_devices(nd, ns, step, spiky);
    double *c_auto = calloc(nd, sizeof(double)), *c_bnd = calloc(nd, sizeof(double));
    double *c_full = calloc(nd, sizeof(double));
    size_t states = 0;
    double t_auto = run(d, nd, GP_PLAN_AUTO, c_auto, &states);
    if (c_us) *c_us = t_auto * 1000 / (double)nd;
    double t_bnd = run(d, nd, GP_PLAN_BOUNDED, c_bnd, &states);
    /* The naive DP is slow: time it on the first full_n devices and scale. */
    size_t nf = full_n < nd ? full_n : nd;
    double t_full = run(d, nf, GP_PLAN_FULL, c_full, &states);
    printf("%s prices (%s):\n", spiky ? "spiky" : "normal",
           spiky ? "some export > import, some negative" : "export <= import: all convex");
    printf("  %-40s %9.1f ms %9.2f us/device\n", "auto (merge if convex, else windows)", t_auto,
           t_auto * 1000 / (double)nd);
    printf("  %-40s %9.1f ms %9.2f us/device  (%.1fx auto)\n", "bounded (power-limited moves)",
           t_bnd, t_bnd * 1000 / (double)nd, t_bnd / t_auto);
    printf("  %-40s %9.1f ms %9.2f us/device  (%.1fx auto, %zu devices timed)\n",
           "full (all N x N transitions)", t_full * (double)nd / (double)nf,
           t_full * 1000 / (double)nf, t_full / (double)nf / (t_auto / (double)nd), nf);
    int bad = compare(c_auto, c_bnd, nd, "auto vs bounded") | compare(c_bnd, c_full, nf, "full");
    for (size_t i = 0; i < nd; i++)
        free(d[i].slots);
    free(d);
    free(c_auto);
    free(c_bnd);
    free(c_full);
    (void)states;
    return bad;
}

/* One decide() that plans every device over `slots` cached slots (the pattern docs/lua-api.md
 * recommends: fetch the slots once per tick, hand gp.plan a table that returns them). */
static const char lua_plan[] =
    "return { decide = function(ctx)\n"
    "  local slots = {}\n"
    "  for i = 1, ctx.params.slots do\n"
    "    local h = ((i - 1) * 0.5) % 24\n"
    "    local imp = 0.18 + 0.12 * math.sin((h - 10) / 24 * 2 * math.pi)\n"
    "    slots[i] = { start = ctx.now + (i - 1) * 1800, stop = ctx.now + i * 1800,\n"
    "                 import = imp, export = imp / 3 }\n"
    "  end\n"
    "  local t = { slots = function() return slots end }\n"
    "  local opts = { soc_step_pct = ctx.params.step, terminal_price = 0.1, load_w = 500 }\n"
    "  local cmds = {}\n"
    "  for i, d in ipairs(ctx.devices) do\n"
    "    local p = assert(gp.plan(d, t, ctx.now, nil, opts))\n"
    "    cmds[i] = { device = d.id, setpoint_w = p.setpoints[1] }\n"
    "  end\n"
    "  return cmds\n"
    "end }\n";

static void bench_lua(size_t nd, size_t ns, double step, double c_us)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "sim", 0);
    char err[4096], vendor[32];
    for (size_t i = 0; i < nd; i++) {
        snprintf(vendor, sizeof vendor, "b%06zu", i);
        double cap = 5000 + 10000 * rnd();
        gp_device_info d = {.size = sizeof d,
                            .vendor_id = vendor,
                            .caps = GP_CAP_READ | GP_CAP_SETPOINT,
                            .capacity_wh = cap,
                            .max_charge_w = cap * 0.4,
                            .max_discharge_w = cap * 0.4,
                            .soc_min_pct = 5,
                            .soc_max_pct = 100};
        gp_fleet_add(f, 0, &d, NULL, err, sizeof err);
        gp_reading r = gp_reading_unknown(1767225600000LL);
        r.soc_pct = 10 + 80 * rnd();
        gp_fleet_reading(f, i, &r, 1767225600000LL);
    }
    char dir[] = "/tmp/gp-bench-plan-XXXXXX", path[64], params[96];
    if (!mkdtemp(dir)) exit(1);
    snprintf(path, sizeof path, "%s/plan.lua", dir);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(lua_plan, fp) < 0) exit(1);
    fclose(fp);
    snprintf(params, sizeof params, "{\"slots\": %zu, \"step\": %g}", ns, step);
    gp_strategy_opts o = {path, params, 60000, 1024u << 20};
    gp_strategy *s = gp_strategy_load(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    double best = INFINITY;
    for (int tick = 0; tick < 3; tick++) {
        gp_tick_in in = {1767225600000LL + tick * 60000, 60, 0, f, NULL};
        gp_tick_out out;
        double t0 = gp_mono_s();
        if (gp_strategy_tick(s, &in, &out, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        best = fmin(best, (gp_mono_s() - t0) * 1000.0);
    }
    printf("gp.plan from Lua, every device in one decide() (best of 3 ticks):\n");
    printf("  %-40s %9.1f ms %9.2f us/device  (the C planner alone: %.2f us above)\n",
           "ctx + slots + plan + result tables", best, best * 1000 / (double)nd, c_us);
    gp_strategy_free(s);
    gp_fleet_free(f);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    size_t nd = argc > 1 ? (size_t)atol(argv[1]) : 1000;
    size_t ns = argc > 2 ? (size_t)atol(argv[2]) : 96;
    double step = argc > 3 ? atof(argv[3]) : 1.0;
    if (nd < 1 || ns < 1 || !(step >= 0.1 && step <= 50)) {
        fprintf(stderr, "usage: bench_plan [devices] [slots] [soc_step_pct]\n");
        return 2;
    }
    printf("gp_plan benchmark: %zu devices x %zu slots, %.3g %% SoC steps (%d grid points at "
           "most)\n\n",
           nd, ns, step, (int)floor(100 / step + 1e-9) + 1);
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    double c_us = 0;
    int bad = bench(nd, ns, step, 0, 100, &c_us);
    bad |= bench(nd, ns, step, 1, 100, NULL);
    printf("\n");
    bench_lua(nd, ns, step, c_us);
    return bad;
}
