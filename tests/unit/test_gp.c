/* The gp library: gp.allocate, gp.cheapest/gp.dearest, gp.plan (core/plan.c and its Lua
 * binding). Lua cases run as strategies written to a temporary file; their commands come
 * back as intents, and Lua-side checks use assert (a failed one fails the tick). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "log.h"
#include "plan.h"
#include "strategy.h"
#include "tariff.h"

#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00Z */

static char dir[] = "/tmp/gp-test-gp-XXXXXX";
static char file[sizeof dir + 32];
static gp_strategy *cur; /* the strategy of the last run; its intents live until the next */
static gp_tick_out out;

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir)) return -1;
    snprintf(file, sizeof file, "%s/gp_test.lua", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (cur) gp_strategy_free(cur);
    unlink(file);
    rmdir(dir);
    return 0;
}

/* Lua helpers every case may use: dev(id, fields) makes a usable device table. */
static const char prelude[] =
    "local function dev(id, t)\n"
    "  t = t or {}\n"
    "  t.id = id\n"
    "  if t.online == nil then t.online = true end\n"
    "  t.caps = t.caps or { setpoint = true }\n"
    "  t.soc_pct = t.soc_pct or 50\n"
    "  t.max_charge_w = t.max_charge_w or 1000\n"
    "  t.max_discharge_w = t.max_discharge_w or 1000\n"
    "  return t\n"
    "end\n"
    "local function raises(want, f, ...)\n"
    "  local ok, e = pcall(f, ...)\n"
    "  assert(not ok, 'expected an error: ' .. want)\n"
    "  assert(tostring(e):find(want, 1, true), 'got: ' .. tostring(e))\n"
    "end\n"
    "local function tariff_of(prices)\n"
    "  return { slots = function(from, to)\n"
    "    local s = {}\n"
    "    for i, p in ipairs(prices) do\n"
    "      local imp, exp = p[1], p[2]\n"
    "      if imp == false then imp = nil end\n"
    "      s[i] = { start = from + (i - 1) * 3600, stop = from + i * 3600, import = imp,\n"
    "               export = exp }\n"
    "    end\n"
    "    return s\n"
    "  end }\n"
    "end\n";

/* Run `body` as the body of decide(ctx); returns 0 with the commands in `out`, or -1 with
 * the error in err. */
static int run_full(const char *body, gp_fleet *f, const gp_tariff *t, int64_t timeout_ms,
                    char *err, size_t errlen)
{
    if (cur) gp_strategy_free(cur);
    cur = NULL;
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\nreturn { decide = function(ctx)\n%s\nend }\n", prelude, body);
    fclose(fp);
    gp_strategy_opts o = {file, NULL, timeout_ms, 0};
    cur = gp_strategy_load(&o, err, errlen);
    if (!cur) fail_msg("load: %s", err);
    gp_fleet *own = f ? NULL : gp_fleet_new();
    gp_tick_in in = {NOW_MS, 30, 0, f ? f : own, t};
    int rc = gp_strategy_tick(cur, &in, &out, err, errlen);
    if (own) gp_fleet_free(own);
    return rc;
}

static const gp_tick_out *run(const char *body)
{
    char err[4096] = "";
    if (run_full(body, NULL, NULL, 0, err, sizeof err) != 0) fail_msg("tick failed: %s", err);
    for (size_t i = 0; i < out.n; i++)
        if (out.intents[i].error) fail_msg("command %zu: %s", i + 1, out.intents[i].error);
    return &out;
}

static const gp_intent *find(const gp_tick_out *o, const char *device)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->intents[i].device && strcmp(o->intents[i].device, device) == 0)
            return &o->intents[i];
    return NULL;
}

static double setpoint(const gp_tick_out *o, const char *device)
{
    const gp_intent *in = find(o, device);
    if (!in) fail_msg("no command for %s", device);
    if (!(in->fields & GP_IF_SETPOINT)) fail_msg("%s: not a setpoint", device);
    return in->setpoint_w;
}

/* ---- gp.allocate ------------------------------------------------------------------- */

static void test_allocate_proportional(void **state)
{
    (void)state;
    const gp_tick_out *o =
        run("local devs = {\n"
            "  dev('b', { max_discharge_w = 1000 }),\n"
            "  dev('a', { max_discharge_w = 3000 }),\n"
            "  dev('c', { online = false, command = { kind = 'setpoint' } }),\n"
            "  dev('d', { caps = { setpoint = false }, command = { kind = 'setpoint' } }),\n"
            "  dev('e', { command = { kind = 'setpoint' } }),\n"
            "  dev('f', { command = { kind = 'release' } , online = false}),\n"
            "}\n"
            "devs[5].soc_pct = nil\n"
            "local cmds, total = gp.allocate(devs, 2000)\n"
            "assert(total == 2000, total)\n"
            "assert(#cmds == 5, #cmds)\n"
            "local order = {}\n"
            "for i, c in ipairs(cmds) do order[i] = c.device end\n"
            "assert(table.concat(order, ',') == 'a,b,c,d,e', table.concat(order, ','))\n"
            "assert(math.type(cmds[1].setpoint_w) == 'integer')\n"
            "assert(cmds[1].duration_s == nil)\n"
            "return cmds\n");
    assert_true(setpoint(o, "a") == 1500);
    assert_true(setpoint(o, "b") == 500);
    for (const char *const *id = (const char *const[]){"c", "d", "e", NULL}; *id; id++)
        assert_true(find(o, *id)->release);
    assert_null(find(o, "f"));
}

static void test_allocate_limits(void **state)
{
    (void)state;
    /* More than the fleet can give: everyone at its limit, total = what was allocated. */
    const gp_tick_out *o = run("local cmds, total = gp.allocate({\n"
                               "  dev('a', { max_discharge_w = 3000 }),\n"
                               "  dev('b', { max_discharge_w = 1234 }),\n"
                               "}, 10000, { duration_s = 900 })\n"
                               "assert(total == 4230, total)\n"
                               "return cmds\n");
    assert_true(setpoint(o, "a") == 3000);
    assert_true(setpoint(o, "b") == 1230); /* never above 1234: rounded down */
    assert_true(find(o, "a")->duration_s == 900);
    /* Charging: max_charge_w, the sign, and SoC bounds with their margin. */
    o = run("local cmds, total = gp.allocate({\n"
            "  dev('full', { soc_pct = 100, command = { kind = 'setpoint' } }),\n"
            "  dev('near', { soc_pct = 94.5, soc_max_pct = 95, max_charge_w = 2000 }),\n"
            "  dev('low', { soc_pct = 20, max_charge_w = 2000 }),\n"
            "  dev('over', { soc_pct = 96, soc_max_pct = 95 }),\n"
            "}, -100000)\n"
            "assert(total == -3000, total)\n"
            "return cmds\n");
    assert_true(find(o, "full")->release);
    assert_true(setpoint(o, "near") == -1000); /* half way through the 1 % margin: half */
    assert_true(setpoint(o, "low") == -2000);
    assert_null(find(o, "over"));
    /* Discharging near soc_min; the horizon caps power by the energy left. */
    o = run("local cmds = gp.allocate({\n"
            "  dev('empty', { soc_pct = 5, soc_min_pct = 5 }),\n"
            "  dev('edge', { soc_pct = 5.25, soc_min_pct = 5, max_discharge_w = 4000 }),\n"
            "  dev('hz', { soc_pct = 15, soc_min_pct = 5, capacity_wh = 10000,\n"
            "              max_discharge_w = 8000 }),\n"
            "  dev('nocap', { soc_pct = 15, max_discharge_w = 700 }),\n"
            "}, 100000, { horizon_s = 3600, soc_margin_pct = 0.5 })\n"
            "return cmds\n");
    assert_null(find(o, "empty"));
    assert_true(setpoint(o, "edge") == 2000); /* 0.25 of a 0.5 % margin */
    assert_true(setpoint(o, "hz") == 1000);   /* 1000 Wh left, emptied in 3600 s */
    assert_true(setpoint(o, "nocap") == 700); /* no capacity: no horizon limit */
}

static void test_allocate_rounding(void **state)
{
    (void)state;
    const gp_tick_out *o = run("local d = { dev('x3'), dev('x1'), dev('x2') }\n"
                               "local cmds, total = gp.allocate(d, 1000)\n"
                               "assert(total == 1000, total)\n"
                               "local again = gp.allocate(d, 1000)\n"
                               "for i = 1, 3 do\n"
                               "  assert(again[i].device == cmds[i].device)\n"
                               "  assert(again[i].setpoint_w == cmds[i].setpoint_w)\n"
                               "end\n"
                               "return cmds\n");
    /* 333.3 W each: 330 + the leftover step to the first id. */
    assert_true(setpoint(o, "x1") == 340);
    assert_true(setpoint(o, "x2") == 330);
    assert_true(setpoint(o, "x3") == 330);
    o = run("return (gp.allocate({ dev('a'), dev('b') }, 1000, { step_w = 1 }))\n");
    assert_true(setpoint(o, "a") == 500 && setpoint(o, "b") == 500);
    o = run("return (gp.allocate({ dev('a'), dev('b') }, 15, { step_w = 0.5 }))\n");
    assert_true(setpoint(o, "a") == 7.5 && setpoint(o, "b") == 7.5);
}

static void test_allocate_stable(void **state)
{
    (void)state;
    /* Small input changes move every device by less than the change plus one step, and the
     * whole schedule never jumps between devices. */
    run("local function fleet(soc_shift)\n"
        "  local d = {}\n"
        "  for i = 1, 50 do\n"
        "    d[i] = dev(string.format('d%02d', i), { soc_pct = 10 + i + soc_shift,\n"
        "      max_discharge_w = 1000 + 37 * i, soc_min_pct = 10 })\n"
        "  end\n"
        "  return d\n"
        "end\n"
        "local function map(cmds)\n"
        "  local m = {}\n"
        "  for _, c in ipairs(cmds) do m[c.device] = c.setpoint_w end\n"
        "  return m\n"
        "end\n"
        "local base = map(gp.allocate(fleet(0), 20000))\n"
        "for _, v in ipairs({ { 0, 20010 }, { 0.01, 20000 }, { 0, 19990 } }) do\n"
        "  local m = map(gp.allocate(fleet(v[1]), v[2]))\n"
        "  for id, w in pairs(base) do\n"
        "    assert(math.abs(m[id] - w) <= 30, id .. ': ' .. w .. ' -> ' .. m[id])\n"
        "  end\n"
        "end\n"
        /* SoC crossing into the margin: power fades, it does not drop. */
        "local prev\n"
        "for soc = 12, 10, -0.05 do\n"
        "  local c = gp.allocate({ dev('a', { soc_pct = soc, soc_min_pct = 10 }) }, 5000,\n"
        "                        { soc_margin_pct = 2, step_w = 1 })\n"
        "  local w = c[1] and c[1].setpoint_w or 0\n"
        "  if prev then assert(math.abs(w - prev) <= 30, soc .. ': ' .. prev .. ' -> ' .. w) end\n"
        "  prev = w\n"
        "end\n"
        "return {}\n");
}

static void test_allocate_zero_and_release(void **state)
{
    (void)state;
    const gp_tick_out *o = run("local cmds, total = gp.allocate({\n"
                               "  dev('a', { command = { kind = 'setpoint' } }),\n"
                               "  dev('b'),\n"
                               "  dev('c', { online = false, command = { kind = 'setpoint' } }),\n"
                               "}, 0)\n"
                               "assert(total == 0)\n"
                               "return cmds\n");
    assert_int_equal(o->n, 2); /* nothing asked: devices with a setpoint are released */
    assert_true(find(o, "a")->release);
    assert_null(find(o, "b"));
    assert_true(find(o, "c")->release);
    o = run("local cmds = gp.allocate({\n"
            "  dev('a', { soc_pct = 0, command = { kind = 'setpoint' } }),\n"
            "  dev('b'),\n"
            "}, 500, { release = false })\n"
            "return cmds\n");
    assert_int_equal(o->n, 1);
    assert_true(setpoint(o, "b") == 500);
}

static void test_allocate_errors(void **state)
{
    (void)state;
    run("raises('gp.allocate: devices must be an array of device tables', gp.allocate, 5, 1)\n"
        "raises('gp.allocate: devices must be an array of device tables (devices[2] is a "
        "number)', gp.allocate, { dev('a'), 7 }, 1)\n"
        "raises('gp.allocate: total_w must be a finite number', gp.allocate, {}, 'x')\n"
        "raises('gp.allocate: total_w must be a finite number', gp.allocate, {}, 0/0)\n"
        "raises('gp.allocate: opts must be a table', gp.allocate, {}, 1, 3)\n"
        "raises('gp.allocate: opts.step_w must be a number > 0', gp.allocate, {}, 1, "
        "{ step_w = 0 })\n"
        "raises('gp.allocate: opts.release must be a boolean', gp.allocate, {}, 1, "
        "{ release = 1 })\n"
        "raises('gp.allocate: devices[1].id must be a string', gp.allocate, { { } }, 1)\n"
        "raises('gp.allocate: devices[1].soc_pct must be a number (got string)', gp.allocate, "
        "{ dev('a', { soc_pct = '5' }) }, 1)\n"
        "local c, t = gp.allocate({}, 1000)\n"
        "assert(#c == 0 and t == 0)\n"
        /* A table whose border is 2^61: sizes computed from its length would wrap. */
        "local huge = {}\n"
        "for k = 0, 61 do huge[1 << k] = dev('a') end\n"
        "huge[3], huge[5], huge[9] = dev('a'), dev('a'), dev('a')\n"
        "local tar = { slots = function() return huge end }\n"
        "raises('gp.allocate: devices has', gp.allocate, huge, 1)\n"
        "raises(\"gp.cheapest: tariff.slots' answer has\", gp.cheapest, tar, 1, 0, 10)\n"
        "raises(\"gp.plan: tariff.slots' answer has\", gp.plan, dev('a'), tar, 0, 10)\n"
        "return {}\n");
}

/* ---- gp.cheapest / gp.dearest -------------------------------------------------------- */

static void test_cheapest_dearest(void **state)
{
    (void)state;
    run("local t = tariff_of({ {0.30}, {0.10}, {false}, {0.20}, {0.10}, {0.40}, {0.40} })\n"
        "local function starts(slots, from)\n"
        "  local s = {}\n"
        "  for i, x in ipairs(slots) do s[i] = tostring((x.start - from) // 3600) end\n"
        "  return table.concat(s, ',')\n"
        "end\n"
        "local from = 1000\n"
        "local c = gp.cheapest(t, 3, from, from + 7 * 3600)\n"
        "assert(starts(c, from) == '1,3,4', starts(c, from))\n"
        "assert(c[1].import == 0.10)\n"
        /* ties: the earlier slot */
        "assert(starts(gp.cheapest(t, 1, from), from) == '1')\n"
        "assert(starts(gp.dearest(t, 1, from), from) == '5')\n"
        "assert(starts(gp.dearest(t, 3, from), from) == '0,5,6')\n"
        "assert(#gp.cheapest(t, 0, from) == 0)\n"
        "assert(starts(gp.cheapest(t, 100, from), from) == '0,1,3,4,5,6')\n"
        "raises('gp.cheapest: n must be a non-negative integer', gp.cheapest, t, -1, from)\n"
        "raises('gp.cheapest: n must be a non-negative integer', gp.cheapest, t, 1.5, from)\n"
        "raises('gp.dearest: from must be a number', gp.dearest, t, 1)\n"
        "raises('gp.dearest: tariff must be a table with a slots function', gp.dearest, 1, 1, "
        "2)\n"
        "raises('gp.dearest: tariff.slots must be a function', gp.dearest, {}, 1, 2)\n"
        "raises('gp.cheapest: tariff.slots returned nil', gp.cheapest, { slots = function() "
        "end }, 1, 2)\n"
        "raises('gp.cheapest: slot 1 has no start', gp.cheapest, { slots = function() return "
        "{ { import = 1 } } end }, 1, 2)\n"
        "return {}\n");
}

/* Through ctx: the engine's tariff, devices and the plan of a live device. */
static void test_through_ctx(void **state)
{
    (void)state;
    char err[4096] = "";
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "sim", 0);
    for (int i = 0; i < 3; i++) {
        char vendor[8];
        snprintf(vendor, sizeof vendor, "b%d", i);
        gp_device_info d = {.size = sizeof d,
                            .vendor_id = vendor,
                            .caps = GP_CAP_READ | GP_CAP_SETPOINT,
                            .capacity_wh = 10000,
                            .max_charge_w = 5000,
                            .max_discharge_w = 1000 * (i + 1),
                            .soc_min_pct = 5,
                            .soc_max_pct = 100};
        assert_true(gp_fleet_add(f, 0, &d, NULL, err, sizeof err) >= 0);
        gp_reading r = gp_reading_unknown(NOW_MS - 1000);
        r.soc_pct = 50;
        gp_fleet_reading(f, (size_t)i, &r, NOW_MS);
    }
    gp_tariff *t = gp_tariff_fixed(0.25, 0.05);
    int rc = run_full("local cmds = gp.allocate(ctx.devices, 3000, { duration_s = 60 })\n"
                      "local s = gp.cheapest(ctx.tariff, 2, ctx.now, ctx.now + 3 * 3600)\n"
                      "assert(#s >= 1 and s[1].import == 0.25)\n"
                      "local p = assert(gp.plan(ctx.devices[1], ctx.tariff, ctx.now,\n"
                      "                         ctx.now + 3 * 3600, { export = false }))\n"
                      "assert(#p.setpoints == #p.slots and #p.slots >= 1)\n"
                      /* flat prices: cycling only loses; no load and no export earnings:
                       * the stored energy has no use and stays put */
                      "for _, w in ipairs(p.setpoints) do assert(w == 0, w) end\n"
                      "assert(p.cost == 0 and p.baseline_cost == 0 and p.soc_pct == 50)\n"
                      "return cmds\n",
                      f, t, 0, err, sizeof err);
    if (rc != 0) fail_msg("%s", err);
    assert_true(setpoint(&out, "sim/b0") == 500);
    assert_true(setpoint(&out, "sim/b1") == 1000);
    assert_true(setpoint(&out, "sim/b2") == 1500);
    assert_true(find(&out, "sim/b2")->duration_s == 60);
    gp_tariff_free(t);
    gp_fleet_free(f);
}

/* ---- gp_plan (C) ------------------------------------------------------------------- */

static uint64_t rng_state = 7;

static double rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

typedef struct plan_case {
    gp_plan_in in;
    gp_plan_slot slots[128];
    double sp[128], soc[128];
    gp_plan_out out;
} plan_case;

static plan_case *new_case(size_t n, double soc, double cap, double ch, double dis)
{
    plan_case *c = calloc(1, sizeof *c);
    assert_true(n <= 128);
    c->in = (gp_plan_in){.slots = c->slots,
                         .n_slots = n,
                         .soc_pct = soc,
                         .capacity_wh = cap,
                         .max_charge_w = ch,
                         .max_discharge_w = dis,
                         .soc_min_pct = NAN,
                         .soc_max_pct = NAN,
                         .efficiency = 0.95,
                         .soc_step_pct = 1,
                         .final_soc_pct = NAN};
    for (size_t i = 0; i < n; i++)
        c->slots[i] = (gp_plan_slot){1, 0.2, 0.05, 0, 0};
    c->out.setpoint_w = c->sp;
    c->out.soc_pct = c->soc;
    return c;
}

static void plan_ok(plan_case *c)
{
    char err[128] = "";
    size_t need = gp_plan_work_size(&c->in);
    assert_true(need > 0);
    void *w = malloc(need);
    if (gp_plan(&c->in, w, need, &c->out, err, sizeof err) != 0) fail_msg("gp_plan: %s", err);
    free(w);
}

/* The objective gp_plan minimises. */
static double objective(const plan_case *c)
{
    return c->out.cost -
           c->in.terminal_price * c->out.final_soc_pct / 100 * c->in.capacity_wh / 1000;
}

/* Independent model for the brute force: cost of moving the store by de_wh in slot s, or
 * INFINITY when the power limits forbid it. */
static double move_cost(const gp_plan_in *in, const gp_plan_slot *s, double de_wh)
{
    int active = s->hours > 0 && !isnan(s->import);
    if (!active) return de_wh == 0 ? 0 : INFINITY;
    double b =
        de_wh > 0 ? -de_wh / (in->efficiency * s->hours) : -de_wh * in->efficiency / s->hours;
    if (b > in->max_discharge_w * (1 + 1e-9) || -b > in->max_charge_w * (1 + 1e-9)) return INFINITY;
    double g = (isnan(s->load_w) ? 0 : s->load_w) - (isnan(s->pv_w) ? 0 : s->pv_w) - b;
    double exp = isnan(s->export_) ? 0 : s->export_;
    return g * s->hours / 1000 * (g > 0 ? s->import : exp);
}

/* Every sequence of grid states (the grid anchored at the start, within the bounds). */
static double brute_force(const gp_plan_in *in)
{
    double smin = isnan(in->soc_min_pct) ? 0 : in->soc_min_pct;
    double smax = isnan(in->soc_max_pct) ? 100 : in->soc_max_pct;
    int below = (int)floor((in->soc_pct - fmin(smin, in->soc_pct)) / in->soc_step_pct + 1e-9);
    int above = (int)floor((fmax(smax, in->soc_pct) - in->soc_pct) / in->soc_step_pct + 1e-9);
    double de = in->soc_step_pct / 100 * in->capacity_wh;
    size_t T = in->n_slots;
    int states[16];
    double best = INFINITY;
    for (size_t t = 0; t < T; t++)
        states[t] = -below;
    for (;;) {
        double cost = 0;
        int prev = 0;
        /* A start outside the bounds comes back at full power and stays in: the allowed
         * range narrows from the start by the most each slot can move (steps from start). */
        int lo = -below, hi = above;
        int band_lo = (int)ceil((smin - in->soc_pct) / in->soc_step_pct - 1e-9);
        int band_hi = (int)floor((smax - in->soc_pct) / in->soc_step_pct + 1e-9);
        if (band_lo < -below) band_lo = -below;
        if (band_hi > above) band_hi = above;
        for (size_t t = 0; t < T && isfinite(cost); t++) {
            const gp_plan_slot *s = &in->slots[t];
            int active = s->hours > 0 && !isnan(s->import);
            int up =
                active ? (int)floor(in->max_charge_w * in->efficiency * s->hours / de + 1e-9) : 0;
            int down =
                active ? (int)floor(in->max_discharge_w * s->hours / (in->efficiency * de) + 1e-9)
                       : 0;
            lo = lo + up < band_lo ? lo + up : band_lo;
            hi = hi - down > band_hi ? hi - down : band_hi;
            if (in->soc_pct >= smin && in->soc_pct <= smax) lo = -below, hi = above; /* inside */
            if (states[t] < lo || states[t] > hi) cost = INFINITY;
            cost += move_cost(in, &in->slots[t], (states[t] - prev) * de);
            prev = states[t];
        }
        double soc_end = in->soc_pct + prev * in->soc_step_pct;
        int final_ok = isnan(in->final_soc_pct) || soc_end >= in->final_soc_pct - 1e-9;
        if (final_ok && isfinite(cost)) {
            cost -= in->terminal_price * soc_end / 100 * in->capacity_wh / 1000;
            if (cost < best) best = cost;
        }
        size_t t = 0;
        while (t < T && states[t] == above)
            states[t++] = -below;
        if (t == T) break;
        states[t]++;
    }
    return best;
}

static void random_slots(plan_case *c, int spiky)
{
    for (size_t t = 0; t < c->in.n_slots; t++) {
        gp_plan_slot *s = &c->slots[t];
        s->hours = 0.5 + (t % 2) * 0.5;
        s->import = 0.05 + 0.4 * rnd();
        s->export_ = s->import * rnd();
        if (spiky && rnd() < 0.3) s->export_ = s->import * (1 + rnd());
        if (spiky && rnd() < 0.2) s->import = -0.1 * rnd();
        if (rnd() < 0.1) s->export_ = NAN;
        s->pv_w = rnd() < 0.5 ? 3000 * rnd() : 0;
        s->load_w = rnd() < 0.1 ? s->pv_w : 1500 * rnd(); /* sometimes exactly balanced */
    }
}

static void test_plan_brute_force(void **state)
{
    (void)state;
    static const gp_plan_method methods[] = {GP_PLAN_AUTO, GP_PLAN_BOUNDED, GP_PLAN_FULL};
    for (int trial = 0; trial < 40; trial++) {
        plan_case *c = new_case(4, 5 * floor(rnd() * 21), 4000 + 8000 * rnd(), 500 + 4000 * rnd(),
                                500 + 4000 * rnd());
        c->in.soc_step_pct = 5;
        c->in.efficiency = 0.8 + 0.2 * rnd();
        c->in.soc_min_pct = trial % 3 ? 10 : NAN;
        c->in.soc_max_pct = trial % 4 ? 90 : NAN;
        c->in.terminal_price = trial % 2 ? 0.15 * rnd() : 0;
        if (trial % 5 == 0) c->in.final_soc_pct = 60;
        if (trial % 7 == 0) c->in.soc_pct = 3; /* below soc_min: kept reachable */
        random_slots(c, trial % 2);
        if (trial % 6 == 0) c->slots[2].import = NAN; /* unknown: idle */
        double want = brute_force(&c->in);
        for (size_t m = 0; m < 3; m++) {
            c->in.method = methods[m];
            plan_ok(c);
            /* want is infinite when a final requirement is out of reach (the planner then
             * lowers it; the brute force does not). */
            if (isfinite(want) && fabs(objective(c) - want) > 1e-9)
                fail_msg("trial %d method %zu: %.12f, brute force %.12f", trial, m, objective(c),
                         want);
            if (isfinite(want) && !isnan(c->in.final_soc_pct))
                assert_true(c->out.final_soc_pct >= c->in.final_soc_pct - 1e-9);
            /* Replaying the setpoints reproduces the SoC path and the cost, within limits. */
            double e = c->in.soc_pct / 100 * c->in.capacity_wh, cost = 0;
            for (size_t t = 0; t < 4; t++) {
                double b = c->sp[t], h = c->slots[t].hours, eff = c->in.efficiency;
                double de = b > 0 ? -b * h / eff : -b * h * eff;
                e += de;
                assert_true(fabs(e / c->in.capacity_wh * 100 - c->soc[t]) < 1e-6);
                if (isnan(c->slots[t].import)) assert_true(b == 0);
                double mc = move_cost(&c->in, &c->slots[t], de);
                assert_true(isfinite(mc)); /* within the power limits */
                cost += mc;
            }
            assert_true(fabs(cost - c->out.cost) < 1e-9);
        }
        free(c);
    }
}

/* Larger random cases: the fast path agrees with the naive DP, convex or not. */
static void test_plan_methods_agree(void **state)
{
    (void)state;
    for (int trial = 0; trial < 30; trial++) {
        plan_case *c = new_case(48, 100 * rnd(), 5000 + 10000 * rnd(), 1000 + 5000 * rnd(),
                                1000 + 5000 * rnd());
        c->in.soc_min_pct = 5;
        c->in.soc_step_pct = trial % 3 ? 1 : 0.5;
        c->in.terminal_price = 0.1;
        random_slots(c, trial % 2);
        c->in.method = GP_PLAN_FULL;
        plan_ok(c);
        double full = objective(c);
        c->in.method = GP_PLAN_AUTO;
        plan_ok(c);
        if (fabs(objective(c) - full) > 1e-9)
            fail_msg("trial %d: auto %.12f, full %.12f", trial, objective(c), full);
        for (size_t t = 0; t < 48; t++) {
            assert_true(c->soc[t] >= fmin(5, c->in.soc_pct) - 1e-9 && c->soc[t] <= 100 + 1e-9);
            assert_true(c->sp[t] <= c->in.max_discharge_w * (1 + 1e-9));
            assert_true(-c->sp[t] <= c->in.max_charge_w * (1 + 1e-9));
        }
        free(c);
    }
}

static void test_plan_arbitrage(void **state)
{
    (void)state;
    /* Cheap night, dear evening, 1 kW load throughout. */
    plan_case *c = new_case(8, 20, 10000, 5000, 5000);
    for (size_t t = 0; t < 8; t++)
        c->slots[t] = (gp_plan_slot){1, t < 4 ? 0.10 : 0.40, 0.05, 0, 1000};
    c->in.soc_min_pct = 10;
    c->in.soc_max_pct = 90;
    plan_ok(c);
    for (size_t t = 0; t < 4; t++)
        assert_true(c->sp[t] <= 0);
    /* 4 kWh of evening load = 4.21 kWh stored, 1 kWh of it there already: ~3.4 kWh bought */
    assert_true(c->sp[0] + c->sp[1] + c->sp[2] + c->sp[3] < -3200);
    /* Covers the load; beyond it only to the next whole grid step (95 W here). */
    for (size_t t = 4; t < 8; t++)
        assert_true(c->sp[t] > 0 && c->sp[t] < 1000 + 95 + 1e-9);
    assert_true(c->out.cost < c->out.baseline_cost - 1.0);
    for (size_t t = 0; t < 8; t++)
        assert_true(c->soc[t] >= 10 - 1e-9 && c->soc[t] <= 90 + 1e-9);
    assert_true(c->out.error_bound > 0 && c->out.error_bound < 0.5);
    free(c);
}

/* A start outside the SoC bounds (a DoD raised above the SoC): the plan comes back as fast as
 * the power allows and never leaves the bounds again, however the prices tempt it. */
static void test_plan_start_outside_bounds(void **state)
{
    (void)state;
    /* 95 % with a 90 % ceiling; dirt-cheap second hour, dear third, stored energy valued. */
    plan_case *c = new_case(3, 95, 10000, 3000, 3000);
    c->slots[0] = (gp_plan_slot){1, 0.30, 0.20, 0, 0};
    c->slots[1] = (gp_plan_slot){1, 0.01, 0.00, 0, 0};
    c->slots[2] = (gp_plan_slot){1, 0.60, 0.50, 0, 0};
    c->in.soc_min_pct = 10;
    c->in.soc_max_pct = 90;
    c->in.terminal_price = 0.55;
    plan_ok(c);
    for (size_t t = 0; t < 3; t++)
        assert_true(c->soc[t] <= 90 + 1e-9);
    assert_true(c->sp[0] > 0); /* the first hour brings it under the ceiling */
    free(c);

    /* 5 % with a 10 % floor, and an evening worth discharging into: it may not go under. */
    c = new_case(2, 5, 10000, 3000, 3000);
    c->slots[0] = (gp_plan_slot){1, 0.10, 0.05, 0, 0};
    c->slots[1] = (gp_plan_slot){1, 0.50, 0.45, 0, 0};
    c->in.soc_min_pct = 10;
    c->in.soc_max_pct = 90;
    plan_ok(c);
    assert_true(c->soc[0] >= 10 - 1e-9 && c->soc[1] >= 10 - 1e-9);
    free(c);

    /* Too far out to come back in one hour (2 kW on 10 kWh: 20 points an hour): forced down
     * at full power until inside. */
    c = new_case(3, 60, 10000, 2000, 2000);
    for (size_t t = 0; t < 3; t++)
        c->slots[t] = (gp_plan_slot){1, 0.01, 0.0, 0, 0};
    c->in.soc_min_pct = 0;
    c->in.soc_max_pct = 30;
    plan_ok(c);
    assert_true(c->soc[0] <= 40.5 + 1e-9 && c->soc[1] <= 30 + 1e-9 && c->soc[2] <= 30 + 1e-9);
    free(c);
}

static void test_plan_pv_surplus(void **state)
{
    (void)state;
    /* Midday surplus exported for 0.05, evening import at 0.30: store it. */
    plan_case *c = new_case(6, 10, 10000, 3000, 3000);
    c->in.soc_min_pct = 10;
    for (size_t t = 0; t < 6; t++)
        c->slots[t] = t < 3 ? (gp_plan_slot){1, 0.30, 0.05, 3000, 500}
                            : (gp_plan_slot){1, 0.30, 0.05, 0, 1000};
    plan_ok(c);
    double stored = 0;
    for (size_t t = 0; t < 3; t++) {
        assert_true(c->sp[t] <= 0 && c->sp[t] >= -2500 - 1e-9); /* from the surplus only */
        stored -= c->sp[t] * 0.95;
    }
    assert_true(stored >= 3000 / 0.95 - 100 - 1e-6); /* the evening's 3 kWh, to a grid step */
    for (size_t t = 3; t < 6; t++)                   /* the load, to a grid step (95 W) */
        assert_true(c->sp[t] > 0 && c->sp[t] < 1000 + 95 + 1e-9);
    assert_true(c->out.cost < c->out.baseline_cost);
    /* Export dearer than the later import: sell instead. */
    for (size_t t = 0; t < 3; t++)
        c->slots[t].export_ = 0.40;
    plan_ok(c);
    for (size_t t = 0; t < 3; t++)
        assert_true(c->sp[t] >= 0);
    free(c);
}

static void test_plan_losses(void **state)
{
    (void)state;
    /* Spread 0.20 -> 0.21 is less than the round-trip loss (0.20 / 0.9025 = 0.2216). */
    plan_case *c = new_case(8, 10, 10000, 5000, 5000);
    c->in.soc_min_pct = 10;
    for (size_t t = 0; t < 8; t++)
        c->slots[t] = (gp_plan_slot){0.5, t < 4 ? 0.20 : 0.21, 0.0, 0, 800};
    plan_ok(c);
    for (size_t t = 0; t < 8; t++)
        assert_true(c->sp[t] == 0);
    assert_true(c->out.cost == c->out.baseline_cost);
    /* With a lossless battery the same spread is worth cycling. */
    c->in.efficiency = 1;
    plan_ok(c);
    assert_true(c->sp[0] + c->sp[1] + c->sp[2] + c->sp[3] < 0);
    assert_true(c->out.cost < c->out.baseline_cost);
    free(c);
}

static void test_plan_final_and_unknown(void **state)
{
    (void)state;
    plan_case *c = new_case(6, 50, 10000, 2000, 2000);
    for (size_t t = 0; t < 6; t++)
        c->slots[t] = (gp_plan_slot){1, 0.3, 0.0, 0, 1000};
    c->slots[2].import = NAN;
    c->in.final_soc_pct = 80;
    plan_ok(c);
    assert_true(c->sp[2] == 0);
    assert_true(c->out.final_soc_pct >= 80 - 1e-9);
    /* Out of reach (2 kW for 5 priced hours from 50 % of 30 kWh): as high as possible. */
    c->in.capacity_wh = 30000;
    c->in.final_soc_pct = 100;
    plan_ok(c);
    for (size_t t = 0; t < 6; t++)
        if (t != 2) assert_true(c->sp[t] < -1800);
    /* Invalid input is refused with a reason. */
    char err[128] = "";
    c->in.efficiency = 1.5;
    assert_int_equal(gp_plan_work_size(&c->in), 0);
    assert_int_equal(gp_plan(&c->in, NULL, 0, &c->out, err, sizeof err), -1);
    assert_string_equal(err, "efficiency must be in (0, 1]");
    free(c);
}

/* The documented bound: a coarse grid's objective is within error_bound of a finer one
 * (whose grid and power steps contain the coarse ones, so it is at least as good as the
 * continuous optimum the bound refers to... up to its own bound). */
static void test_plan_error_bound(void **state)
{
    (void)state;
    for (int trial = 0; trial < 20; trial++) {
        plan_case *c = new_case(24, 50, 10000, 2000, 2000);
        c->in.efficiency = 1; /* 2 kW x 1 h = 4 steps of 5 %, 20 of 1 %: exact at both */
        c->in.terminal_price = 0.1;
        random_slots(c, 0);
        for (size_t t = 0; t < 24; t++)
            c->slots[t].hours = 1;
        c->in.soc_step_pct = 0.25;
        plan_ok(c);
        double fine = objective(c);
        c->in.soc_step_pct = 5;
        plan_ok(c);
        double coarse = objective(c);
        assert_true(coarse >= fine - 1e-9);
        if (coarse - fine > c->out.error_bound + 1e-9)
            fail_msg("trial %d: coarse %.6f fine %.6f bound %.6f", trial, coarse, fine,
                     c->out.error_bound);
        free(c);
    }
}

/* ---- gp.plan (Lua) ---------------------------------------------------------------- */

static void test_plan_lua(void **state)
{
    (void)state;
    const gp_tick_out *o =
        run("local t = tariff_of({ {0.10, 0.05}, {0.10, 0.05}, {false}, {0.40, 0.05},\n"
            "                      {0.40, 0.05} })\n"
            "local d = dev('b', { soc_pct = 20, capacity_wh = 10000, max_charge_w = 3000,\n"
            "                      max_discharge_w = 3000, soc_min_pct = 10 })\n"
            "local p = assert(gp.plan(d, t, 0, 5 * 3600, { load_w = 1000, pv_w = { 0, 500 },\n"
            "                                              soc_step_pct = 0.5 }))\n"
            "assert(#p.setpoints == 5 and #p.slots == 5)\n"
            "local s = p.slots[3]\n"
            "assert(s.start == 7200 and s.stop == 10800 and s.import == nil and s.export == nil)\n"
            "assert(s.setpoint_w == 0 and p.setpoints[3] == 0)\n"
            "assert(p.slots[1].import == 0.10 and p.slots[1].export == 0.05)\n"
            "assert(p.slots[5].soc_pct == p.soc_pct)\n"
            "assert(p.cost < p.baseline_cost and p.error_bound > 0)\n"
            "local cmds = {}\n"
            "for i, w in ipairs(p.setpoints) do\n"
            "  cmds[i] = { device = 'sp' .. i, setpoint_w = w }\n"
            "end\n"
            "cmds[#cmds + 1] = { device = 'cost', setpoint_w = p.cost }\n"
            "cmds[#cmds + 1] = { device = 'soc', setpoint_w = p.soc_pct }\n"
            /* Missing data: nil and why; bad arguments raise. */
            "local none, why = gp.plan(dev('x', { soc_pct = 50 }), t, 0)\n"
            "assert(none == nil and why == 'gp.plan: the device has no capacity_wh', why)\n"
            "raises('gp.plan: device must be a device table', gp.plan, 1, t, 0)\n"
            "raises('gp.plan: opts must be a table', gp.plan, d, t, 0, 10, 1)\n"
            "raises('gp.plan: opts.efficiency must be in (0, 1]', gp.plan, d, t, 0, nil, "
            "{ efficiency = 0 })\n"
            "raises('gp.plan: opts.soc_step_pct must be in [0.1, 50]', gp.plan, d, t, 0, nil, "
            "{ soc_step_pct = 0.01 })\n"
            "raises('gp.plan: opts.pv_w[2] must be a number', gp.plan, d, t, 0, nil, "
            "{ pv_w = { 1, 'x' } })\n"
            "raises('gp.plan: opts.export must be a boolean', gp.plan, d, t, 0, nil, "
            "{ export = 1 })\n"
            "raises('gp.plan: from must be a number', gp.plan, d, t)\n"
            "raises('gp.plan: slot 1 has no start or stop', gp.plan, d, { slots = function() "
            "return { { import = 1 } } end }, 0)\n"
            "return cmds\n");
    /* The same plan in C. */
    plan_case *c = new_case(5, 20, 10000, 3000, 3000);
    double imp[] = {0.10, 0.10, NAN, 0.40, 0.40};
    for (size_t t = 0; t < 5; t++)
        c->slots[t] = (gp_plan_slot){1, imp[t], t == 2 ? NAN : 0.05, t == 1 ? 500 : 0, 1000};
    c->in.soc_min_pct = 10;
    c->in.soc_step_pct = 0.5;
    plan_ok(c);
    for (size_t t = 0; t < 5; t++) {
        char id[8];
        snprintf(id, sizeof id, "sp%zu", t + 1);
        assert_true(fabs(setpoint(o, id) - c->sp[t]) < 1e-9);
    }
    assert_true(fabs(setpoint(o, "cost") - c->out.cost) < 1e-12);
    assert_true(fabs(setpoint(o, "soc") - c->out.final_soc_pct) < 1e-12);
    free(c);
}

/* The line of the strategy file (prelude + body) where `needle` of the body is. */
static int line_of(const char *body, const char *needle)
{
    int line = 3; /* the prelude's lines follow, then a blank line and "return {..." */
    for (const char *p = prelude; *p; p++)
        line += *p == '\n';
    const char *at = strstr(body, needle);
    assert_non_null(at);
    for (const char *p = body; p < at; p++)
        line += *p == '\n';
    return line;
}

static int stop_now(void *ud)
{
    (*(int *)ud)++;
    return 1;
}

/* The planner stops when its caller says so. */
static void test_plan_stop(void **state)
{
    (void)state;
    int polls = 0;
    plan_case *c = new_case(128, 50, 10000, 5000, 5000);
    random_slots(c, 1);
    c->in.soc_step_pct = 0.1;
    c->in.stop = stop_now;
    c->in.stop_ud = &polls;
    size_t need = gp_plan_work_size(&c->in);
    void *w = malloc(need);
    char err[64];
    assert_int_equal(gp_plan(&c->in, w, need, &c->out, err, sizeof err), GP_PLAN_STOPPED);
    assert_int_equal(polls, 1);
    free(w);
    free(c);
}

/* A plan far too big for the time limit is stopped inside the planner, at the caller's
 * line, like a runaway loop. */
static void test_plan_deadline(void **state)
{
    (void)state;
    char err[4096] = "";
    const char *body = "local s = {}\n"
                       "for i = 1, 1500 do\n"
                       "  local imp = (i % 7) / 10 - 0.1\n"
                       "  s[i] = { start = i * 3600, stop = (i + 1) * 3600, import = imp,\n"
                       "           export = imp + 0.3 }\n"
                       "end\n"
                       "local t = { slots = function() return s end }\n"
                       "local d = { soc_pct = 50, capacity_wh = 100000, max_charge_w = 1e6,\n"
                       "            max_discharge_w = 1e6 }\n"
                       "for i = 1, 100 do\n"
                       "  gp.plan(d, t, 0, nil, { soc_step_pct = 0.1 })\n"
                       "end\n"
                       "return {}\n";
    /* 100 calls run far fewer VM instructions than the hook's period: only the planner's
     * own polling can stop this. */
    int rc = run_full(body, NULL, NULL, 100, err, sizeof err);
    assert_int_equal(rc, -1);
    char want[64];
    snprintf(want, sizeof want, "gp_test.lua:%d: strategy exceeded its 100 ms time limit",
             line_of(body, "gp.plan("));
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("want %s, got: %s", want, err);
}

/* gp.metric: the last value per name in a tick; bad names and values are named; a failed
 * tick reports nothing. */
static void metric_reports(void **state)
{
    (void)state;
    const gp_tick_out *o =
        run("gp.metric('tracking_error_w', 5)\n"
            "gp.metric('plan.savings', -1.5)\n"
            "gp.metric('tracking_error_w', -12.25)\n"
            "raises('name must be', gp.metric, 'bad name', 1)\n"
            "raises('name must be', gp.metric, '', 1)\n"
            "raises('name must be', gp.metric, string.rep('x', 48), 1)\n"
            "raises('value must be a number (got string)', gp.metric, 'a', '1')\n"
            "raises('value must be finite', gp.metric, 'a', 0/0)\n"
            "raises('value must be finite', gp.metric, 'a', math.huge)\n"
            "return {}");
    assert_int_equal(o->n_metrics, 2);
    assert_string_equal(o->metrics[0].name, "tracking_error_w");
    assert_true(o->metrics[0].value == -12.25);
    assert_string_equal(o->metrics[1].name, "plan.savings");
    assert_true(o->metrics[1].value == -1.5);

    o = run("for i = 1, 32 do gp.metric('m' .. i, i) end\n"
            "raises('more than 32 names in one tick', gp.metric, 'm33', 1)\n"
            "gp.metric('m32', 0)\n" /* a known name still updates */
            "return {}");
    assert_int_equal(o->n_metrics, 32);
    assert_true(o->metrics[31].value == 0);

    char err[4096];
    assert_int_equal(run_full("gp.metric('x', 1)\nerror('boom')", NULL, NULL, 0, err, sizeof err),
                     -1);
    assert_int_equal(out.n_metrics, 0);
}

int main(void)
{
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocate_proportional),
        cmocka_unit_test(test_allocate_limits),
        cmocka_unit_test(test_allocate_rounding),
        cmocka_unit_test(test_allocate_stable),
        cmocka_unit_test(test_allocate_zero_and_release),
        cmocka_unit_test(test_allocate_errors),
        cmocka_unit_test(test_cheapest_dearest),
        cmocka_unit_test(test_through_ctx),
        cmocka_unit_test(test_plan_brute_force),
        cmocka_unit_test(test_plan_methods_agree),
        cmocka_unit_test(test_plan_arbitrage),
        cmocka_unit_test(test_plan_start_outside_bounds),
        cmocka_unit_test(test_plan_pv_surplus),
        cmocka_unit_test(test_plan_losses),
        cmocka_unit_test(test_plan_final_and_unknown),
        cmocka_unit_test(test_plan_error_bound),
        cmocka_unit_test(test_plan_lua),
        cmocka_unit_test(test_plan_stop),
        cmocka_unit_test(test_plan_deadline),
        cmocka_unit_test(metric_reports),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
