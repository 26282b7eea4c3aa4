/*
 * The ctx table handed to init/decide (CONTRACT.md, "Strategy API").
 *
 * Built for scale: every device table is created once and updated in place on later ticks;
 * the update allocates nothing in a steady state (keys are pushed once per build and set
 * with lua_rawset, name strings are pinned in the registry, command tables are reused). The
 * engine keeps its own array of device tables, so a strategy that sorts or edits
 * ctx.devices gets a correct array again on the next tick. Writes a strategy makes to a
 * device table's fields are overwritten by the next update.
 */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lua_internal.h"

/* Same order as gp_jstate and gp_cmd_kind (core/journal.h, plugin.h); journal.c is not
 * linked into the strategy engine, so the names live here too. */
static const char *const state_names[] = {"queued", "sent",    "accepted", "pending",  "done",
                                          "failed", "timeout", "dry_run",  "cancelled"};
#define N_STATES (sizeof state_names / sizeof *state_names)
static const char *const kind_names[] = {NULL, "setpoint", "dod", "on", "release"};
#define N_KINDS      (sizeof kind_names / sizeof *kind_names)
#define STATE_BASE   16 /* index of state 0 in the pinned names array */
#define UNKNOWN_NAME 15 /* "unknown", for a kind or state out of range */

/* Field names, pushed on the stack once per update at index 1 + K_*. */
enum {
    K_ID = 1,
    K_ADAPTER,
    K_VENDOR,
    K_ONLINE,
    K_AGE,
    K_CAPS,
    K_SOC,
    K_BATT,
    K_PV,
    K_LOAD,
    K_GRID,
    K_CAPWH,
    K_MAXCH,
    K_MAXDIS,
    K_SOCMIN,
    K_SOCMAX,
    K_COMMAND,
    K_KIND,
    K_VALUE,
    K_STATE,
    K_SINCE,
    K_SOCTGT,
    K_DUR,
    K_EXTRA,
    K_READ,
    K_SETPOINT,
    K_DOD,
    K_ONOFF,
    K_DEVICES,
    K_NOW,
    K_TICK_S,
    K_DRY_RUN,
    K_PARAMS,
    K_SITE,
    K_TARIFF,
    K_IMPORT_PRICE,
    K_EXPORT_PRICE,
    K_SLOTS,
    K_COUNT
};
static const char *const key_names[K_COUNT] = {
    NULL,          "id",           "adapter",      "vendor",       "online",
    "age_s",       "caps",         "soc_pct",      "battery_w",    "pv_w",
    "load_w",      "grid_w",       "capacity_wh",  "max_charge_w", "max_discharge_w",
    "soc_min_pct", "soc_max_pct",  "command",      "kind",         "value",
    "state",       "since",        "soc_target",   "duration_s",   "extra",
    "read",        "setpoint",     "dod",          "onoff",        "devices",
    "now",         "tick_s",       "dry_run",      "params",       "site",
    "tariff",      "import_price", "export_price", "slots"};
/* Stack index of key k inside gp_lua_ctx_update. The strings are pinned in the registry
 * (ref_keys) and fetched with lua_rawgeti, which (unlike lua_pushstring) never runs a
 * collector step: a steady-state update neither allocates nor frees anything. */
#define KEY(k) (1 + (k))

/* A device table holds at most these many keys (all fields present). */
#define DEVICE_KEYS 18

/* ---- JSON to Lua ---------------------------------------------------------------------- */

static void push_json(lua_State *L, const cJSON *j, int readonly);

static void push_number(lua_State *L, double v)
{
    /* Integral JSON numbers become Lua integers: 3, not 3.0, in tostring and formats. */
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "ctx.params is read-only");
}

/* Push the data table behind a read-only proxy (its metatable's __index); 0 and nothing
 * pushed when the value is not one of our proxies (pairs' iterator can be called with
 * anything). */
static int push_data(lua_State *L, int proxy)
{
    if (!lua_getmetatable(L, proxy)) return 0;
    lua_pushliteral(L, "__newindex");
    lua_rawget(L, -2);
    int ours = lua_tocfunction(L, -1) == ro_newindex;
    lua_pop(L, 1);
    if (ours) {
        lua_pushliteral(L, "__index");
        ours = lua_rawget(L, -2) == LUA_TTABLE;
        if (!ours) lua_pop(L, 1);
    }
    if (!ours) {
        lua_pop(L, 1);
        return 0;
    }
    lua_remove(L, -2);
    return 1;
}

/* pairs(proxy) returns (ro_next, proxy, nil): the data table itself never reaches the
 * strategy, so it cannot be written through. */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (!push_data(L, 1)) return luaL_argerror(L, 1, "not a read-only table");
    lua_insert(L, 2);
    if (lua_next(L, 2)) return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_Integer n = 0;
    if (push_data(L, 1)) n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushinteger(L, n);
    return 1;
}

/* Wrap the table on top in an empty proxy whose metatable reads from it and refuses
 * writes; replaces the table with the proxy. */
static void make_readonly(lua_State *L)
{
    int data = lua_gettop(L);
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, data);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, ro_len);
    lua_setfield(L, -2, "__len");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_replace(L, data);
}

static void push_json_table(lua_State *L, const cJSON *j, int readonly)
{
    int n = cJSON_GetArraySize(j);
    luaL_checkstack(L, 4, "JSON nested too deeply");
    if (cJSON_IsArray(j)) {
        lua_createtable(L, n, 0);
        lua_Integer i = 1;
        for (const cJSON *c = j->child; c; c = c->next, i++) {
            if (cJSON_IsNull(c)) continue;
            push_json(L, c, readonly);
            lua_rawseti(L, -2, i);
        }
    } else {
        lua_createtable(L, 0, n);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (cJSON_IsNull(c) || !c->string) continue;
            lua_pushstring(L, c->string);
            push_json(L, c, readonly);
            lua_rawset(L, -3);
        }
    }
    if (readonly) make_readonly(L);
}

static void push_json(lua_State *L, const cJSON *j, int readonly)
{
    if (cJSON_IsBool(j))
        lua_pushboolean(L, cJSON_IsTrue(j));
    else if (cJSON_IsNumber(j))
        push_number(L, j->valuedouble);
    else if (cJSON_IsString(j))
        lua_pushstring(L, j->valuestring ? j->valuestring : "");
    else if (cJSON_IsArray(j) || cJSON_IsObject(j))
        push_json_table(L, j, readonly);
    else
        lua_pushnil(L);
}

/* A userdata that frees a C allocation when collected: C data held across Lua calls that
 * may raise (memory limit) is released by the collector instead of leaking. */
typedef struct guard {
    void *p;
    void (*release)(void *);
} guard;

static int guard_gc(lua_State *L)
{
    guard *g = lua_touserdata(L, 1);
    if (g && g->p) g->release(g->p);
    if (g) g->p = NULL;
    return 0;
}

static guard *push_guard(lua_State *L, void (*release)(void *))
{
    guard *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->p = NULL;
    g->release = release;
    if (luaL_newmetatable(L, "gp.guard")) {
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return g;
}

static void release_json(void *p)
{
    cJSON_Delete(p);
}

static void release_mem(void *p)
{
    free(p);
}

static void guard_done(lua_State *L, int idx, guard *g)
{
    if (g->p) g->release(g->p);
    g->p = NULL;
    lua_remove(L, idx);
}

/* Push the Lua form of JSON text (NULL or invalid: an empty table for extras). */
static void push_extra(lua_State *L, const char *text)
{
    if (!text) {
        lua_createtable(L, 0, 0);
        return;
    }
    guard *g = push_guard(L, release_json);
    int gi = lua_gettop(L);
    g->p = cJSON_Parse(text);
    if (g->p && (cJSON_IsObject((cJSON *)g->p) || cJSON_IsArray((cJSON *)g->p)))
        push_json(L, g->p, 0);
    else
        lua_createtable(L, 0, 0);
    guard_done(L, gi, g);
}

/* ---- params and state (at load) ------------------------------------------------------ */

int gp_lua_ctx_init(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    const char *json = lua_touserdata(L, 1);
    if (json) {
        guard *g = push_guard(L, release_json);
        int gi = lua_gettop(L);
        char jerr[160];
        g->p = (void *)gp_json_parse(json, strlen(json), jerr, sizeof jerr);
        if (!g->p) return luaL_error(L, "strategy params: %s", jerr);
        if (!cJSON_IsObject((cJSON *)g->p))
            return luaL_error(L, "strategy params must be a JSON object");
        push_json(L, g->p, 1);
        guard_done(L, gi, g);
    } else {
        lua_newtable(L);
        make_readonly(L);
    }
    s->ref_params = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    s->ref_state = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* ---- device tables -------------------------------------------------------------------- */

/* __index of device tables: only `extra` is virtual. It is parsed from the fleet's JSON on
 * first access in a tick and cached in the device table until the next update. */
static int dev_index(lua_State *L)
{
    size_t len = 0;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
    if (!k || len != 5 || memcmp(k, "extra", 5) != 0) return 0;
    gp_strategy *s = gp_lua_owner(L);
    if (!s->fleet) return 0;
    lua_pushliteral(L, "id");
    lua_rawget(L, 1);
    const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int64_t idx = id ? gp_fleet_find(s->fleet, id) : -1;
    lua_pop(L, 1);
    push_extra(L, idx >= 0 ? gp_fleet_extra(s->fleet, (size_t)idx) : NULL);
    lua_pushliteral(L, "extra");
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_extra_dirty);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
    return 1;
}

/* Called before the update allocates: stops the collector for the rest of the update, so
 * that everything freed meanwhile is the view's own (strategy.c restarts it). Restarting
 * resets the collector's pacing, hence only on the rare ticks that allocate. */
static void will_alloc(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    if (!s->gc_stopped) {
        lua_gc(L, LUA_GCSTOP);
        s->gc_stopped = 1;
    }
}

/* Push the registry table *ref, creating it (with size hints) on first use. */
static int push_ref_table(lua_State *L, int *ref, int narr, int nrec)
{
    if (*ref == LUA_NOREF || *ref == LUA_REFNIL) {
        will_alloc(L);
        lua_createtable(L, narr, nrec);
        lua_pushvalue(L, -1);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
    }
    return lua_gettop(L);
}

static void set_num(lua_State *L, int t, int key, double v)
{
    lua_pushvalue(L, KEY(key));
    if (isnan(v))
        lua_pushnil(L);
    else
        lua_pushnumber(L, v);
    lua_rawset(L, t);
}

static void set_bool(lua_State *L, int t, int key, int b)
{
    lua_pushvalue(L, KEY(key));
    lua_pushboolean(L, b);
    lua_rawset(L, t);
}

/* t[key] = value on top (pops it); raw, so a strategy's metatable cannot interfere. */
static void set_key(lua_State *L, int t, int key)
{
    lua_pushvalue(L, KEY(key));
    lua_insert(L, -2);
    lua_rawset(L, t);
}

/* The same for names outside the pinned keys (creation paths only). */
static void set_named(lua_State *L, int t, const char *name)
{
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_rawset(L, t);
}

static void push_name(lua_State *L, int names, lua_Integer i)
{
    if (lua_rawgeti(L, names, i) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_rawgeti(L, names, UNKNOWN_NAME);
    }
}

static int push_names(lua_State *L, gp_strategy *s)
{
    int fresh = s->ref_names == LUA_NOREF;
    int names = push_ref_table(L, &s->ref_names, STATE_BASE + (int)N_STATES, 0);
    if (fresh) {
        for (size_t k = 1; k < N_KINDS; k++) {
            lua_pushstring(L, kind_names[k]);
            lua_rawseti(L, names, (lua_Integer)k);
        }
        for (size_t st = 0; st < N_STATES; st++) {
            lua_pushstring(L, state_names[st]);
            lua_rawseti(L, names, STATE_BASE + (lua_Integer)st);
        }
        lua_pushliteral(L, "unknown");
        lua_rawseti(L, names, UNKNOWN_NAME);
    }
    return names;
}

static int push_devmt(lua_State *L, gp_strategy *s)
{
    int fresh = s->ref_devmt == LUA_NOREF;
    int mt = push_ref_table(L, &s->ref_devmt, 0, 2);
    if (fresh) {
        lua_pushcfunction(L, dev_index);
        set_named(L, mt, "__index");
        lua_pushliteral(L, "device");
        set_named(L, mt, "__metatable");
    }
    return mt;
}

static void new_device(lua_State *L, const gp_fleet *f, size_t i, int devmt)
{
    const gp_device *d = gp_fleet_cdev(f, i);
    will_alloc(L);
    lua_createtable(L, 0, DEVICE_KEYS);
    int t = lua_gettop(L);
    lua_pushvalue(L, KEY(K_ID));
    lua_pushstring(L, gp_fleet_id(f, i));
    lua_rawset(L, t);
    lua_pushvalue(L, KEY(K_ADAPTER));
    lua_pushstring(L, gp_fleet_adapter_id(f, d->adapter));
    lua_rawset(L, t);
    lua_pushvalue(L, KEY(K_VENDOR));
    lua_pushstring(L, gp_fleet_vendor(f, i));
    lua_rawset(L, t);
    lua_pushvalue(L, devmt);
    lua_setmetatable(L, t);
}

static void update_caps(lua_State *L, int t, uint32_t caps)
{
    static const struct {
        int key;
        uint32_t bit;
    } bits[] = {{K_READ, GP_CAP_READ},
                {K_SETPOINT, GP_CAP_SETPOINT},
                {K_SOCTGT, GP_CAP_SOC_TARGET},
                {K_DOD, GP_CAP_DOD},
                {K_ONOFF, GP_CAP_ONOFF}};
    lua_pushvalue(L, KEY(K_CAPS));
    if (lua_rawget(L, t) != LUA_TTABLE) {
        lua_pop(L, 1);
        will_alloc(L);
        lua_createtable(L, 0, 5);
        lua_pushvalue(L, KEY(K_CAPS));
        lua_pushvalue(L, -2);
        lua_rawset(L, t);
    }
    int c = lua_gettop(L);
    for (size_t b = 0; b < sizeof bits / sizeof *bits; b++) {
        lua_pushboolean(L, (caps & bits[b].bit) != 0);
        set_key(L, c, bits[b].key);
    }
    lua_pop(L, 1);
}

static void update_command(lua_State *L, int t, const gp_slot *sl, size_t i, int cmdtabs, int names)
{
    lua_pushvalue(L, KEY(K_COMMAND));
    if (sl->id == 0) {
        lua_pushnil(L);
        lua_rawset(L, t);
        return;
    }
    if (lua_rawgeti(L, cmdtabs, (lua_Integer)i + 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        will_alloc(L);
        lua_createtable(L, 0, 6);
        lua_pushvalue(L, -1);
        lua_rawseti(L, cmdtabs, (lua_Integer)i + 1);
    }
    int c = lua_gettop(L);
    lua_pushvalue(L, KEY(K_KIND));
    push_name(L, names, sl->cmd.kind);
    lua_rawset(L, c);
    lua_pushvalue(L, KEY(K_STATE));
    push_name(L, names, STATE_BASE + (lua_Integer)sl->state);
    lua_rawset(L, c);
    set_num(L, c, K_VALUE, isfinite(sl->cmd.value) ? sl->cmd.value : NAN);
    set_num(L, c, K_SINCE, (double)sl->since_ms / 1000.0);
    set_num(L, c, K_SOCTGT, isfinite(sl->cmd.soc_target) ? sl->cmd.soc_target : NAN);
    set_num(L, c, K_DUR, sl->cmd.duration_s ? (double)sl->cmd.duration_s : NAN);
    lua_rawset(L, t); /* t.command = c */
}

static void update_device(lua_State *L, gp_strategy *s, const gp_fleet *f, size_t i, int t,
                          int cmdtabs, int names)
{
    const gp_device *d = gp_fleet_cdev(f, i);
    set_bool(L, t, K_ONLINE, d->online);
    set_num(L, t, K_AGE, gp_fleet_age_s(f, i, s->now_ms));
    if (s->caps_seen[i] != d->caps) {
        update_caps(L, t, d->caps);
        s->caps_seen[i] = d->caps;
    }
    set_num(L, t, K_SOC, d->soc_pct);
    set_num(L, t, K_BATT, d->battery_w);
    set_num(L, t, K_PV, d->pv_w);
    set_num(L, t, K_LOAD, d->load_w);
    set_num(L, t, K_GRID, d->grid_w);
    set_num(L, t, K_CAPWH, d->capacity_wh);
    set_num(L, t, K_MAXCH, d->max_charge_w);
    set_num(L, t, K_MAXDIS, d->max_discharge_w);
    set_num(L, t, K_SOCMIN, d->soc_min_pct);
    set_num(L, t, K_SOCMAX, d->soc_max_pct);
    update_command(L, t, &d->slot[GP_SLOT_DISPATCH], i, cmdtabs, names);
}

/* Is the view built for this fleet? The pointer alone could be a new fleet at a recycled
 * address, so the ids of the first and last built device must match too. */
static int view_matches(lua_State *L, gp_strategy *s, const gp_fleet *f, size_t n)
{
    if (s->n_built == 0) return 1;
    if (f != s->built || n < s->n_built) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_devtabs);
    int ok = 1;
    size_t probe[2] = {0, s->n_built - 1};
    for (int p = 0; p < 2 && ok; p++) {
        lua_rawgeti(L, -1, (lua_Integer)probe[p] + 1);
        lua_pushvalue(L, KEY(K_ID));
        lua_rawget(L, -2);
        const char *id = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        ok = id && strcmp(id, gp_fleet_id(f, probe[p])) == 0;
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return ok;
}

/* Forget the device tables of another fleet. Their memory is collected at once so that the
 * ctx allowance can be measured afresh. */
static void reset_view(lua_State *L, gp_strategy *s)
{
    int *refs[] = {&s->ref_devtabs, &s->ref_devices, &s->ref_cmdtabs};
    for (size_t r = 0; r < sizeof refs / sizeof *refs; r++) {
        luaL_unref(L, LUA_REGISTRYINDEX, *refs[r]);
        *refs[r] = LUA_NOREF;
    }
    s->n_built = 0;
    s->in_ctx = 0;
    lua_gc(L, LUA_GCCOLLECT);
    s->in_ctx = 1;
    s->ctx_bytes = 0;
}

static void clear_extras(lua_State *L, gp_strategy *s)
{
    int dirty = push_ref_table(L, &s->ref_extra_dirty, 0, 0);
    lua_Integer n = (lua_Integer)lua_rawlen(L, dirty);
    for (lua_Integer j = 1; j <= n; j++) {
        if (lua_rawgeti(L, dirty, j) == LUA_TTABLE) {
            lua_pushvalue(L, KEY(K_EXTRA));
            lua_pushnil(L);
            lua_rawset(L, -3);
        }
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, dirty, j);
    }
    lua_pop(L, 1);
}

/* Refresh ctx.devices: device tables in fleet order, new devices appended. */
static int update_devices(lua_State *L, gp_strategy *s, const gp_fleet *f, size_t n)
{
    if (n > s->caps_cap) {
        size_t cap = s->caps_cap ? s->caps_cap : 64;
        while (cap < n)
            cap *= 2;
        s->caps_seen = gp_xrealloc(s->caps_seen, cap * sizeof *s->caps_seen);
        s->caps_cap = cap;
    }
    int devmt = push_devmt(L, s);
    int names = push_names(L, s);
    int devtabs = push_ref_table(L, &s->ref_devtabs, (int)n, 0);
    int devices = push_ref_table(L, &s->ref_devices, (int)n, 0);
    int cmdtabs = push_ref_table(L, &s->ref_cmdtabs, 0, 0);
    for (size_t i = 0; i < n; i++) {
        if (i >= s->n_built) {
            new_device(L, f, i, devmt);
            lua_rawseti(L, devtabs, (lua_Integer)i + 1);
            s->caps_seen[i] = UINT32_MAX; /* forces the caps table to be written */
            s->n_built = i + 1;
        }
        lua_rawgeti(L, devtabs, (lua_Integer)i + 1);
        update_device(L, s, f, i, lua_gettop(L), cmdtabs, names);
        lua_rawseti(L, devices, (lua_Integer)i + 1);
    }
    /* Whatever the strategy added to ctx.devices last tick goes. Starting lua_next after
     * index n only walks the array slack and the (normally empty) hash part. */
    if (n)
        lua_pushinteger(L, (lua_Integer)n);
    else
        lua_pushnil(L);
    while (lua_next(L, devices)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, devices); /* clearing fields during traversal is allowed */
    }
    lua_pop(L, 1);         /* cmdtabs */
    lua_replace(L, devmt); /* leave ctx.devices where devmt was */
    lua_settop(L, devmt);
    return devmt;
}

static void update_site(lua_State *L, int site, const gp_fleet *f)
{
    gp_site st;
    if (f) {
        gp_fleet_site(f, &st);
    } else {
        memset(&st, 0, sizeof st);
        st.soc_pct = NAN;
    }
    set_num(L, site, K_BATT, st.battery_w);
    set_num(L, site, K_PV, st.pv_w);
    set_num(L, site, K_LOAD, st.load_w);
    set_num(L, site, K_GRID, st.grid_w);
    set_num(L, site, K_SOC, st.soc_pct);
    set_num(L, site, K_CAPWH, st.capacity_wh);
    lua_pushinteger(L, st.devices);
    set_key(L, site, K_DEVICES);
    lua_pushinteger(L, st.online);
    set_key(L, site, K_ONLINE);
}

/* ---- ctx.tariff ----------------------------------------------------------------------- */

static int64_t time_arg(lua_State *L, int i, int64_t dflt_ms)
{
    if (lua_isnoneornil(L, i)) return dflt_ms;
    lua_Number t = luaL_checknumber(L, i);
    if (!isfinite(t) || fabs(t) > 1e13) luaL_argerror(L, i, "time out of range");
    return (int64_t)llround(t * 1000.0);
}

/* Also callable as ctx.tariff:import_price(t). */
static int first_arg(lua_State *L)
{
    return lua_type(L, 1) == LUA_TTABLE ? 2 : 1;
}

static void push_price(lua_State *L, double v)
{
    if (isnan(v))
        lua_pushnil(L);
    else
        lua_pushnumber(L, v);
}

static int tariff_import(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    push_price(L, gp_tariff_import(s->tariff, time_arg(L, first_arg(L), s->now_ms)));
    return 1;
}

static int tariff_export(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    push_price(L, gp_tariff_export(s->tariff, time_arg(L, first_arg(L), s->now_ms)));
    return 1;
}

/* slots(from, to): from defaults to ctx.now, to to 24 hours after from. */
static int tariff_slots(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    int a = first_arg(L);
    int64_t from = time_arg(L, a, s->now_ms);
    int64_t to = time_arg(L, a + 1, from + 86400000);
    guard *g = push_guard(L, release_mem);
    int gi = lua_gettop(L);
    size_t n = 0;
    g->p = gp_tariff_slots(s->tariff, from, to, &n);
    const gp_price_slot *sl = g->p;
    lua_createtable(L, n < 1000000 ? (int)n : 0, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 4);
        lua_pushnumber(L, (double)sl[i].start_ms / 1000.0);
        lua_setfield(L, -2, "start");
        lua_pushnumber(L, (double)sl[i].stop_ms / 1000.0);
        lua_setfield(L, -2, "stop");
        push_price(L, sl[i].import);
        lua_setfield(L, -2, "import");
        push_price(L, sl[i].export_);
        lua_setfield(L, -2, "export");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    guard_done(L, gi, g);
    return 1;
}

static void update_tariff(lua_State *L, int tariff)
{
    /* Light C functions: re-set every tick at no cost, so a strategy cannot lose them. */
    lua_pushcfunction(L, tariff_import);
    set_key(L, tariff, K_IMPORT_PRICE);
    lua_pushcfunction(L, tariff_export);
    set_key(L, tariff, K_EXPORT_PRICE);
    lua_pushcfunction(L, tariff_slots);
    set_key(L, tariff, K_SLOTS);
}

/* ---- ctx ------------------------------------------------------------------------------ */

/* Push the pinned key strings at KEY(1)..KEY(K_COUNT - 1). */
static void push_keys(lua_State *L, gp_strategy *s)
{
    int fresh = s->ref_keys == LUA_NOREF;
    int keys = push_ref_table(L, &s->ref_keys, K_COUNT, 0);
    if (fresh) {
        for (int k = 1; k < K_COUNT; k++) {
            lua_pushstring(L, key_names[k]);
            lua_rawseti(L, keys, k);
        }
    }
    for (int k = 1; k < K_COUNT; k++)
        lua_rawgeti(L, keys, k);
    lua_remove(L, keys);
}

int gp_lua_ctx_update(lua_State *L)
{
    gp_strategy *s = gp_lua_owner(L);
    const gp_tick_in *in = lua_touserdata(L, 1);
    const gp_fleet *f = in->fleet;
    size_t n = f ? gp_fleet_count(f) : 0;
    lua_settop(L, 1);
    /* Stack space first: a grown stack is the state's, not the view's. */
    luaL_checkstack(L, K_COUNT + 24, NULL);
    s->in_ctx = 1;
    push_keys(L, s);

    s->fleet = f;
    s->tariff = in->tariff;
    s->now_ms = in->now_ms;
    if (!view_matches(L, s, f, n)) reset_view(L, s);
    s->built = f;
    clear_extras(L, s);

    int devices = update_devices(L, s, f, n);
    int site = push_ref_table(L, &s->ref_site, 0, 8);
    update_site(L, site, f);
    int tariff = push_ref_table(L, &s->ref_tariff, 0, 3);
    update_tariff(L, tariff);

    int ctx = push_ref_table(L, &s->ref_ctx, 0, 8);
    lua_pushnumber(L, (double)in->now_ms / 1000.0);
    set_key(L, ctx, K_NOW);
    lua_pushnumber(L, in->tick_s);
    set_key(L, ctx, K_TICK_S);
    lua_pushboolean(L, in->dry_run);
    set_key(L, ctx, K_DRY_RUN);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_params);
    set_key(L, ctx, K_PARAMS);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_state);
    set_key(L, ctx, K_STATE);
    lua_pushvalue(L, devices);
    set_key(L, ctx, K_DEVICES);
    lua_pushvalue(L, site);
    set_key(L, ctx, K_SITE);
    lua_pushvalue(L, tariff);
    set_key(L, ctx, K_TARIFF);
    s->in_ctx = 0;
    return 0;
}
