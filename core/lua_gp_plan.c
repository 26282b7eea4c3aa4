/*
 * gp.plan(device, tariff, from [, to [, opts]]): the Lua face of gp_plan (plan.h).
 *
 * Reads the device's limits and tariff.slots(from, to) (called like a strategy would, so
 * any table with a `slots` function works), plans, and returns a table of plain values.
 * Missing device data (an offline device without soc_pct) is not an error: it returns nil
 * and the reason, so a loop over ctx.devices survives one such device. Wrong argument types
 * and out-of-range options raise.
 *
 * Memory: the DP table ((slots + 1) x grid points doubles, 78 KB for 96 slots at 1 %) is a
 * userdata cached in the function's upvalue and reused by later calls (it counts against
 * the strategy's memory limit); per-slot inputs and outputs are a per-call userdata.
 * Time: the planner polls the call's deadline as it works.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <string.h>

#include "lua_internal.h"
#include "plan.h"

#define FN "gp.plan"

/* Per slot, beside the planner's input: as the tariff gave it (export_ NAN when unknown). */
typedef struct slot_extra {
    double start, stop, export_;
} slot_extra;

typedef struct forecast {
    int table;    /* stack index of an array, or 0 */
    double value; /* the constant otherwise */
    const char *name;
} forecast;

static double opt_field(lua_State *L, int o, const char *key, double dflt)
{
    if (o == 0) return dflt;
    double v = gp_lua_num_field(L, o, key, FN, "opts");
    return isnan(v) ? dflt : v;
}

static void read_forecast(lua_State *L, int o, const char *key, forecast *f)
{
    f->table = 0;
    f->value = 0;
    f->name = key;
    if (o == 0) return;
    int type = lua_getfield(L, o, key);
    if (type == LUA_TTABLE) {
        f->table = lua_gettop(L); /* stays on the stack for the call */
        return;
    }
    if (type == LUA_TNUMBER && isfinite(lua_tonumber(L, -1)))
        f->value = lua_tonumber(L, -1);
    else if (type != LUA_TNIL)
        luaL_error(L, FN ": opts.%s must be a number or an array of numbers (W per slot)", key);
    lua_pop(L, 1);
}

static double forecast_at(lua_State *L, const forecast *f, lua_Integer i)
{
    if (!f->table) return f->value;
    int type = lua_rawgeti(L, f->table, i);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type == LUA_TNIL) return 0;
    if (type != LUA_TNUMBER || !isfinite(v))
        luaL_error(L, FN ": opts.%s[%I] must be a number", f->name, (LUAI_UACINT)i);
    return v;
}

/* The options into in (and export); raises on a bad one. */
static void read_opts(lua_State *L, int o, gp_plan_in *in, int *export_on)
{
    in->efficiency = opt_field(L, o, "efficiency", 0.95);
    in->soc_step_pct = opt_field(L, o, "soc_step_pct", 1);
    in->final_soc_pct = opt_field(L, o, "final_soc_pct", NAN);
    in->terminal_price = opt_field(L, o, "terminal_price", 0);
    if (!(in->efficiency > 0 && in->efficiency <= 1))
        luaL_error(L, FN ": opts.efficiency must be in (0, 1] (one-way)");
    if (!(in->soc_step_pct >= 0.1 && in->soc_step_pct <= 50))
        luaL_error(L, FN ": opts.soc_step_pct must be in [0.1, 50]");
    if (!isnan(in->final_soc_pct) && !isfinite(in->final_soc_pct))
        luaL_error(L, FN ": opts.final_soc_pct must be a finite number");
    if (!isfinite(in->terminal_price))
        luaL_error(L, FN ": opts.terminal_price must be a finite number");
    *export_on = 1;
    if (o) {
        int type = lua_getfield(L, o, "export");
        if (type != LUA_TNIL && type != LUA_TBOOLEAN)
            luaL_error(L, FN ": opts.export must be a boolean (got %s)", lua_typename(L, type));
        if (type == LUA_TBOOLEAN) *export_on = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
}

/* The device's limits into in; NULL, or the name of a missing field. */
static const char *read_device(lua_State *L, gp_plan_in *in)
{
    static const char *const need[] = {"soc_pct", "capacity_wh", "max_charge_w", "max_discharge_w"};
    double *to[] = {&in->soc_pct, &in->capacity_wh, &in->max_charge_w, &in->max_discharge_w};
    in->soc_min_pct = gp_lua_num_field(L, 1, "soc_min_pct", FN, "device");
    in->soc_max_pct = gp_lua_num_field(L, 1, "soc_max_pct", FN, "device");
    const char *missing = NULL;
    for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
        *to[i] = gp_lua_num_field(L, 1, need[i], FN, "device");
        if (isnan(*to[i]) && !missing) missing = need[i];
    }
    return missing;
}

static int fail(lua_State *L, const char *fmt, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, fmt, what);
    return 2;
}

static int stop_cb(void *ud)
{
    return gp_lua_expired(ud);
}

/* The cached work buffer of at least need bytes, pushed. */
static void *push_work(lua_State *L, size_t need)
{
    void *w = lua_touserdata(L, lua_upvalueindex(1));
    if (w && lua_rawlen(L, lua_upvalueindex(1)) >= need) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return w;
    }
    w = lua_newuserdatauv(L, need, 0);
    lua_pushvalue(L, -1);
    lua_replace(L, lua_upvalueindex(1));
    return w;
}

static void set_num(lua_State *L, const char *key, double v)
{
    if (isnan(v))
        lua_pushnil(L);
    else
        lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void push_result(lua_State *L, const gp_plan_slot *ps, const slot_extra *x, size_t n,
                        const gp_plan_out *out)
{
    int narr = n < 1000000 ? (int)n : 0;
    lua_createtable(L, 0, 6);
    lua_createtable(L, narr, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushnumber(L, out->setpoint_w[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "setpoints");
    lua_createtable(L, narr, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 6);
        set_num(L, "start", x[i].start);
        set_num(L, "stop", x[i].stop);
        set_num(L, "setpoint_w", out->setpoint_w[i]);
        set_num(L, "soc_pct", out->soc_pct[i]);
        set_num(L, "import", ps[i].import);
        set_num(L, "export", x[i].export_);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "slots");
    set_num(L, "cost", out->cost);
    set_num(L, "baseline_cost", out->baseline_cost);
    set_num(L, "soc_pct", out->final_soc_pct);
    set_num(L, "error_bound", out->error_bound);
}

int gp_lua_plan(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE)
        return luaL_error(L, FN ": device must be a device table (got %s)", luaL_typename(L, 1));
    int o = 0;
    if (!lua_isnoneornil(L, 5)) {
        if (lua_type(L, 5) != LUA_TTABLE)
            return luaL_error(L, FN ": opts must be a table (got %s)", luaL_typename(L, 5));
        o = 5;
    }
    lua_settop(L, 5);
    gp_plan_in in = {0};
    int export_on;
    read_opts(L, o, &in, &export_on);
    forecast pv, load;
    read_forecast(L, o, "pv_w", &pv);
    read_forecast(L, o, "load_w", &load);
    const char *missing = read_device(L, &in);

    gp_lua_push_slots(L, FN, 2, 3, 4);
    int slots = lua_gettop(L);
    size_t n = gp_lua_array_len(L, slots, FN, "tariff.slots' answer");
    if (missing) return fail(L, FN ": the device has no %s", missing);
    /* Inputs and outputs per slot, in one userdata: counted, and freed if we raise. */
    gp_plan_slot *ps =
        lua_newuserdatauv(L, n * (sizeof *ps + sizeof(slot_extra) + 2 * sizeof(double)) + 1, 0);
    slot_extra *x = (slot_extra *)(ps + n);
    gp_plan_out out = {.setpoint_w = (double *)(x + n), .soc_pct = (double *)(x + n) + n};
    for (size_t i = 0; i < n; i++) {
        lua_Integer li = (lua_Integer)i + 1;
        if (lua_rawgeti(L, slots, li) != LUA_TTABLE)
            return luaL_error(L, FN ": tariff.slots returned a %s at index %I, not a slot table",
                              luaL_typename(L, -1), (LUAI_UACINT)li);
        int s = lua_gettop(L);
        x[i].start = gp_lua_num_field(L, s, "start", FN, "slot");
        x[i].stop = gp_lua_num_field(L, s, "stop", FN, "slot");
        if (isnan(x[i].start) || isnan(x[i].stop))
            return luaL_error(L, FN ": slot %I has no start or stop", (LUAI_UACINT)li);
        ps[i].import = gp_lua_num_field(L, s, "import", FN, "slot");
        x[i].export_ = gp_lua_num_field(L, s, "export", FN, "slot");
        lua_pop(L, 1);
        ps[i].export_ = export_on ? x[i].export_ : 0;
        ps[i].hours = (x[i].stop - x[i].start) / 3600.0;
        ps[i].pv_w = forecast_at(L, &pv, li);
        ps[i].load_w = forecast_at(L, &load, li);
    }
    in.slots = ps;
    in.n_slots = n;
    in.method = GP_PLAN_AUTO;
    in.stop = stop_cb;
    in.stop_ud = L;

    char err[128];
    size_t need = gp_plan_work_size(&in);
    if (need == 0) {
        gp_plan(&in, NULL, 0, &(gp_plan_out){0}, err, sizeof err);
        return fail(L, FN ": %s", err);
    }
    void *work = push_work(L, need);
    int rc = gp_plan(&in, work, need, &out, err, sizeof err);
    if (rc == GP_PLAN_STOPPED) return gp_lua_timeout_error(L);
    if (rc != 0) return fail(L, FN ": %s", err);
    push_result(L, ps, x, n, &out);
    return 1;
}
