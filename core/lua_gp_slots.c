/*
 * gp.cheapest(tariff, n, from [, to]) and gp.dearest(...): the n slots of tariff.slots(from,
 * to) with the lowest (highest) import price, returned in time order.
 *
 * The slots come from calling tariff.slots like a strategy would, so ctx.tariff and any
 * table with a `slots` function work. Cost: one pass over the slots and two sorts in C,
 * O(s log s) for s slots, bounded by the array the slots function built (in Lua, under the
 * deadline).
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>

#include "lua_internal.h"

void gp_lua_push_slots(lua_State *L, const char *fn, int tariff, int from, int to)
{
    if (lua_type(L, tariff) != LUA_TTABLE)
        luaL_error(L,
                   "%s: tariff must be a table with a slots function, such as ctx.tariff (got %s)",
                   fn, luaL_typename(L, tariff));
    if (lua_type(L, from) != LUA_TNUMBER)
        luaL_error(L, "%s: from must be a number (Unix seconds; got %s)", fn,
                   luaL_typename(L, from));
    if (!lua_isnoneornil(L, to) && lua_type(L, to) != LUA_TNUMBER)
        luaL_error(L, "%s: to must be a number (Unix seconds) or nil (got %s)", fn,
                   luaL_typename(L, to));
    if (lua_getfield(L, tariff, "slots") != LUA_TFUNCTION)
        luaL_error(L, "%s: tariff.slots must be a function (got %s)", fn, luaL_typename(L, -1));
    lua_pushvalue(L, from);
    if (lua_isnoneornil(L, to))
        lua_pushnil(L);
    else
        lua_pushvalue(L, to);
    lua_call(L, 2, 1);
    if (lua_type(L, -1) != LUA_TTABLE)
        luaL_error(L, "%s: tariff.slots returned %s, not an array of slots", fn,
                   luaL_typename(L, -1));
}

typedef struct pick {
    double price, start;
    lua_Integer idx; /* in the slots array */
} pick;

static int by_start(const pick *a, const pick *b)
{
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int cmp_start(const void *x, const void *y)
{
    return by_start(x, y);
}

static int cmp_cheap(const void *x, const void *y)
{
    const pick *a = x, *b = y;
    if (a->price != b->price) return a->price < b->price ? -1 : 1;
    return by_start(a, b);
}

static int cmp_dear(const void *x, const void *y)
{
    const pick *a = x, *b = y;
    if (a->price != b->price) return a->price > b->price ? -1 : 1;
    return by_start(a, b);
}

static int select_slots(lua_State *L, const char *fn, int (*cmp)(const void *, const void *))
{
    int isint = 0;
    lua_Integer want = lua_tointegerx(L, 2, &isint);
    if (lua_type(L, 2) != LUA_TNUMBER || !isint || want < 0)
        return luaL_error(L, "%s: n must be a non-negative integer (got %s)", fn,
                          lua_type(L, 2) == LUA_TNUMBER ? "a fraction or a negative number"
                                                        : luaL_typename(L, 2));
    gp_lua_push_slots(L, fn, 1, 3, 4);
    int slots = lua_gettop(L);
    lua_Integer len = (lua_Integer)gp_lua_array_len(L, slots, fn, "tariff.slots' answer");
    /* A userdata rather than malloc: counted against the memory limit, freed if we raise. */
    pick *p = lua_newuserdatauv(L, (size_t)len * sizeof *p + 1, 0);
    size_t m = 0;
    for (lua_Integer i = 1; i <= len; i++) {
        if (lua_rawgeti(L, slots, i) != LUA_TTABLE)
            return luaL_error(L, "%s: tariff.slots returned a %s at index %I, not a slot table", fn,
                              luaL_typename(L, -1), (LUAI_UACINT)i);
        int s = lua_gettop(L);
        double start = gp_lua_num_field(L, s, "start", fn, "slot");
        double price = gp_lua_num_field(L, s, "import", fn, "slot");
        lua_pop(L, 1);
        if (isnan(start)) return luaL_error(L, "%s: slot %I has no start", fn, (LUAI_UACINT)i);
        if (isnan(price)) continue; /* unknown: never picked */
        p[m++] = (pick){price, start, i};
    }
    size_t k = (lua_Unsigned)want < m ? (size_t)want : m;
    qsort(p, m, sizeof *p, cmp);
    qsort(p, k, sizeof *p, cmp_start);
    lua_createtable(L, k < 1000000 ? (int)k : 0, 0);
    for (size_t j = 0; j < k; j++) {
        lua_rawgeti(L, slots, p[j].idx);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    return 1;
}

int gp_lua_cheapest(lua_State *L)
{
    return select_slots(L, "gp.cheapest", cmp_cheap);
}

int gp_lua_dearest(lua_State *L)
{
    return select_slots(L, "gp.dearest", cmp_dear);
}
