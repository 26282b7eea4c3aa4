/*
 * The `gp` library strategies see: helpers implemented in C so that strategies stay short.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <string.h>

#include "log.h"
#include "lua_internal.h"

static int parse_level(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"debug", GP_LOG_DEBUG},
                  {"info", GP_LOG_INFO},
                  {"warn", GP_LOG_WARN},
                  {"error", GP_LOG_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
        if (strcmp(name, levels[i].name) == 0) return levels[i].level;
    return -1;
}

/* gp.log(level, fmt, ...): string.format semantics. Upvalue 1: the original string.format
 * (the strategy may replace its own). */
static int gp_log_fn(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int level = parse_level(name);
    if (level < 0)
        return luaL_error(L, "gp.log: unknown level '%s' (debug, info, warn or error)", name);
    luaL_checkstring(L, 2);
    if (level > gp_log_level()) return 0; /* not printed: skip the formatting */
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 2);
    /* Protected, so a bad format is reported at the strategy's line, not inside C. */
    if (lua_pcall(L, n - 1, 1, 0) != LUA_OK)
        return luaL_error(L, "gp.log: %s", lua_tostring(L, -1));
    gp_log(level, gp_lua_owner(L)->name, "%s", lua_tostring(L, -1));
    return 0;
}

/* gp.metric(name, value): a figure of this tick (a tracking error, a plan's expected cost)
 * for `simulate`'s report and the logs. The last value given a name in a tick counts. */
static int gp_metric_fn(lua_State *L)
{
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (len == 0 || len >= GP_METRIC_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.") != len)
        return luaL_error(L, "gp.metric: name must be 1..%d letters, digits, '_' or '.'",
                          GP_METRIC_NAME_MAX - 1);
    if (lua_type(L, 2) != LUA_TNUMBER)
        return luaL_error(L, "gp.metric: %s: value must be a number (got %s)", name,
                          luaL_typename(L, 2));
    double v = lua_tonumber(L, 2);
    if (!isfinite(v)) return luaL_error(L, "gp.metric: %s: value must be finite", name);
    gp_strategy *s = gp_lua_owner(L);
    size_t i = 0;
    while (i < s->n_metrics && strcmp(s->metrics[i].name, name) != 0)
        i++;
    if (i == s->n_metrics) {
        if (i == GP_METRICS_MAX)
            return luaL_error(L, "gp.metric: more than %d names in one tick", GP_METRICS_MAX);
        memcpy(s->metrics[i].name, name, len + 1);
        s->n_metrics++;
    }
    s->metrics[i].value = v;
    return 0;
}

double gp_lua_num_field(lua_State *L, int t, const char *key, const char *fn, const char *what)
{
    int type = lua_getfield(L, t, key);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (type == LUA_TNIL) return NAN;
    if (type != LUA_TNUMBER)
        return luaL_error(L, "%s: %s.%s must be a number (got %s)", fn, what, key,
                          lua_typename(L, type));
    return v;
}

#define GP_LUA_MAX_ARRAY 10000000

size_t gp_lua_array_len(lua_State *L, int idx, const char *fn, const char *what)
{
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n > GP_LUA_MAX_ARRAY)
        luaL_error(L, "%s: %s has %I elements, more than %d", fn, what, (LUAI_UACINT)n,
                   GP_LUA_MAX_ARRAY);
    return (size_t)n;
}

void gp_lua_push_gp(lua_State *L)
{
    lua_createtable(L, 0, 8);
    int gp = lua_gettop(L);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, LUA_STRLIBNAME);
    lua_getfield(L, -1, "format");
    lua_pushcclosure(L, gp_log_fn, 1);
    lua_setfield(L, gp, "log");
    lua_settop(L, gp);

    /* Each helper takes plain Lua values, never ctx internals, so strategies and tests can
     * call it with tables of their own (CONTRACT.md, "The gp library"). */
    static const luaL_Reg plain[] = {{"metric", gp_metric_fn},
                                     {"allocate", gp_lua_allocate},
                                     {"cheapest", gp_lua_cheapest},
                                     {"dearest", gp_lua_dearest},
                                     {NULL, NULL}};
    luaL_setfuncs(L, plain, 0);
    lua_pushnil(L); /* the planner's work buffer, created on first use */
    lua_pushcclosure(L, gp_lua_plan, 1);
    lua_setfield(L, gp, "plan");
    gp_lua_push_schedule(L);
    lua_setfield(L, gp, "schedule");
}
