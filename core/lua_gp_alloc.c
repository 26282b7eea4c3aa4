/*
 * gp.allocate(devices, total_w [, opts]): split a fleet power target across devices in
 * proportion to their headroom, as setpoint commands (docs/lua-api.md, "gp.allocate").
 *
 * Built to be called every tick: the result is a function of the inputs only (no state),
 * sorted by device id, and continuous in them (but for total_w = 0, which asks nothing of
 * anyone and releases the devices holding a setpoint). Headroom fades linearly to 0 over the last
 * soc_margin_pct before a SoC bound instead of dropping at a threshold, and shares are
 * proportional (so no device is preferred over another), which keeps small input changes
 * from moving power between devices. Rounding to step_w hands the leftover steps to the
 * largest remainders (ties: device id order), so a device's setpoint differs from its exact
 * share by less than one step.
 *
 * Cost: one pass over the devices (field reads) and two sorts in C, O(n log n) for n
 * devices, bounded by the array the strategy passes.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_internal.h"

#define FN "gp.allocate"

typedef struct opts {
    double step_w, margin_pct, horizon_s, duration_s; /* horizon/duration: NAN = none */
    int release;
} opts;

typedef struct unit {
    const char *id;  /* anchored in the ids table on the stack */
    lua_Integer pos; /* 1-based index in devices */
    size_t rank;     /* position in id order */
    double head;     /* W of headroom in the asked direction */
    double share;    /* exact share (W) */
    double rem;      /* share / step_w - steps */
    lua_Integer steps, max_steps;
    int usable; /* gets a setpoint */
    int held;   /* has a setpoint command in force */
} unit;

static int cmp_id(const void *x, const void *y)
{
    const unit *a = *(const unit *const *)x, *b = *(const unit *const *)y;
    int c = strcmp(a->id, b->id);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

/* Largest remainder first; ties in id order. */
static int cmp_rem(const void *x, const void *y)
{
    const unit *a = *(const unit *const *)x, *b = *(const unit *const *)y;
    if (a->rem != b->rem) return a->rem > b->rem ? -1 : 1;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

#define MAX_HEAD_W 1e12

static double opt_num(lua_State *L, int o, const char *key, double dflt, double min, int open)
{
    if (o == 0) return dflt;
    double v = gp_lua_num_field(L, o, key, FN, "opts");
    if (isnan(v)) return dflt;
    if (!isfinite(v) || v < min || (open && v == min))
        luaL_error(L, FN ": opts.%s must be a number %s %f", key,
                   open ? ">" : ">=", (lua_Number)min);
    return v;
}

static void read_opts(lua_State *L, opts *o)
{
    int t = 0;
    if (!lua_isnoneornil(L, 3)) {
        if (lua_type(L, 3) != LUA_TTABLE)
            luaL_error(L, FN ": opts must be a table (got %s)", luaL_typename(L, 3));
        t = 3;
    }
    o->step_w = opt_num(L, t, "step_w", 10, 0, 1);
    /* Step counts stay exact in a double (head <= MAX_HEAD_W, see below). */
    if (o->step_w < 0.001) luaL_error(L, FN ": opts.step_w must be at least 0.001 W");
    o->margin_pct = opt_num(L, t, "soc_margin_pct", 1, 0, 0);
    o->horizon_s = opt_num(L, t, "horizon_s", NAN, 0, 1);
    o->duration_s = opt_num(L, t, "duration_s", NAN, 0, 1);
    o->release = 1;
    if (t) {
        int type = lua_getfield(L, t, "release");
        if (type != LUA_TNIL && type != LUA_TBOOLEAN)
            luaL_error(L, FN ": opts.release must be a boolean (got %s)", lua_typename(L, type));
        if (type == LUA_TBOOLEAN) o->release = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
}

static int bool_field(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* Headroom (W) of the device table at d in the direction of sign (+1 discharge, -1 charge);
 * 0 when unusable. */
static double headroom(lua_State *L, int d, double soc, int sign, const opts *o, const char *what)
{
    double max_w = gp_lua_num_field(L, d, sign > 0 ? "max_discharge_w" : "max_charge_w", FN, what);
    double lo = gp_lua_num_field(L, d, "soc_min_pct", FN, what);
    double hi = gp_lua_num_field(L, d, "soc_max_pct", FN, what);
    double room = sign > 0 ? soc - (isnan(lo) ? 0 : lo) : (isnan(hi) ? 100 : hi) - soc; /* % */
    if (!(max_w > 0) || !(room > 0)) return 0;
    /* Fade over the margin rather than cut at it: continuous in the SoC. */
    double head = o->margin_pct > 0 && room < o->margin_pct ? max_w * room / o->margin_pct : max_w;
    if (!isnan(o->horizon_s)) {
        double cap = gp_lua_num_field(L, d, "capacity_wh", FN, what);
        if (cap > 0) head = fmin(head, room / 100.0 * cap * 3600.0 / o->horizon_s);
    }
    return head;
}

/* Read device i (its table on top of the stack) into u; its id goes into ids[i]. */
static void read_device(lua_State *L, lua_Integer i, int ids, double total, const opts *o, unit *u)
{
    int d = lua_gettop(L);
    char what[40];
    snprintf(what, sizeof what, "devices[%lld]", (long long)i);
    if (lua_getfield(L, d, "id") != LUA_TSTRING)
        luaL_error(L, FN ": %s.id must be a string (got %s)", what, luaL_typename(L, -1));
    u->id = lua_tostring(L, -1);
    lua_rawseti(L, ids, i); /* keeps the string alive, whatever __index made it */
    u->pos = i;
    u->held = 0;
    if (lua_getfield(L, d, "command") == LUA_TTABLE) {
        lua_getfield(L, -1, "kind");
        u->held = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "setpoint") == 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    int can = 0;
    if (lua_getfield(L, d, "caps") == LUA_TTABLE) can = bool_field(L, -1, "setpoint");
    lua_pop(L, 1);
    double soc = gp_lua_num_field(L, d, "soc_pct", FN, what);
    int eligible = can && bool_field(L, d, "online") && isfinite(soc);
    /* A target of 0 asks nothing of anyone: held devices are released. */
    u->head = eligible && total != 0 ? headroom(L, d, soc, total > 0 ? 1 : -1, o, what) : 0;
    /* A terawatt per device is past any battery; it bounds the step counts below. */
    if (u->head > MAX_HEAD_W) u->head = MAX_HEAD_W;
    u->usable = u->head > 0;
    u->share = u->rem = 0;
    u->steps = u->max_steps = 0;
}

/* Shares in proportion to headroom, then whole steps summing to the rounded target. */
static void split(unit **by_id, size_t n, double total, const opts *o, unit **scratch)
{
    double sum = 0;
    for (size_t j = 0; j < n; j++)
        sum += by_id[j]->head;
    double want = fmin(fabs(total), sum);
    double ratio = sum > 0 ? want / sum : 0;
    double given = 0, room = 0; /* sums of up to 10 million devices' steps: doubles */
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        unit *u = by_id[j];
        if (!u->usable || u->head <= 0) continue;
        u->share = u->head * ratio;
        u->max_steps = (lua_Integer)floor(u->head / o->step_w + 1e-9);
        u->steps = (lua_Integer)floor(u->share / o->step_w);
        if (u->steps > u->max_steps) u->steps = u->max_steps;
        u->rem = u->share / o->step_w - (double)u->steps;
        given += (double)u->steps;
        room += (double)u->max_steps;
        scratch[m++] = u;
    }
    double target = floor(want / o->step_w + 0.5);
    if (target > room) target = room;
    double extra = target - given;
    if (extra <= 0) return;
    qsort(scratch, m, sizeof *scratch, cmp_rem);
    for (size_t j = 0; j < m && extra > 0; j++) {
        if (scratch[j]->steps < scratch[j]->max_steps) {
            scratch[j]->steps++;
            extra--;
        }
    }
    /* Left only when devices with large remainders were full: fill in id order. */
    for (size_t j = 0; j < n && extra > 0; j++) {
        unit *u = by_id[j];
        lua_Integer add = u->max_steps - u->steps;
        if ((double)add > extra) add = (lua_Integer)extra;
        if (add > 0 && u->usable) {
            u->steps += add;
            extra -= (double)add;
        }
    }
}

static void push_num(lua_State *L, double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

int gp_lua_allocate(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE)
        return luaL_error(L, FN ": devices must be an array of device tables (got %s)",
                          luaL_typename(L, 1));
    if (lua_type(L, 2) != LUA_TNUMBER || !isfinite(lua_tonumber(L, 2)))
        return luaL_error(L, FN ": total_w must be a finite number (W, + discharge, - charge)");
    double total = lua_tonumber(L, 2);
    opts o;
    read_opts(L, &o);
    lua_settop(L, 3);
    lua_Integer n = (lua_Integer)gp_lua_array_len(L, 1, FN, "devices");
    lua_createtable(L, n < 1000000 ? (int)n : 0, 0);
    int ids = lua_gettop(L);
    /* Userdata rather than malloc: counted against the memory limit, freed if we raise. */
    size_t un = (size_t)n;
    unit *units = lua_newuserdatauv(L, un * sizeof *units + 1, 0);
    unit **by_id = lua_newuserdatauv(L, un * sizeof *by_id + 1, 0);
    unit **scratch = lua_newuserdatauv(L, un * sizeof *scratch + 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE)
            return luaL_error(L,
                              FN ": devices must be an array of device tables (devices[%I] is "
                                 "a %s)",
                              (LUAI_UACINT)i, luaL_typename(L, -1));
        read_device(L, i, ids, total, &o, &units[i - 1]);
        lua_pop(L, 1);
        by_id[i - 1] = &units[i - 1];
    }
    qsort(by_id, un, sizeof *by_id, cmp_id);
    for (size_t j = 0; j < un; j++)
        by_id[j]->rank = j;
    if (total != 0) split(by_id, un, total, &o, scratch);

    double sign = total < 0 ? -1 : 1, sum = 0;
    lua_createtable(L, n < 1000000 ? (int)n : 0, 0);
    lua_Integer out = 0;
    for (size_t j = 0; j < un; j++) {
        const unit *u = by_id[j];
        if (!u->usable && !(u->held && o.release)) continue;
        lua_createtable(L, 0, 3);
        lua_pushstring(L, u->id);
        lua_setfield(L, -2, "device");
        if (u->usable) {
            double w = sign * (double)u->steps * o.step_w;
            sum += w;
            push_num(L, w == 0 ? 0 : w); /* never -0 */
            lua_setfield(L, -2, "setpoint_w");
            if (!isnan(o.duration_s)) {
                push_num(L, o.duration_s);
                lua_setfield(L, -2, "duration_s");
            }
        } else {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "release");
        }
        lua_rawseti(L, -2, ++out);
    }
    push_num(L, sum);
    return 2;
}
