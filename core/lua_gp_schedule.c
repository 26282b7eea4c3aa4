/*
 * gp.schedule(path): a power schedule from a CSV file `start,stop,target_w` (ISO-8601 times,
 * W with the contract's sign), for strategies that follow a grid operator's requests.
 *
 * The sandbox has no io: this is the one way a strategy reads a file, and it reads only this
 * format (the values, never the text, reach Lua). A relative path is resolved against the
 * strategy file's folder. The rows live in a userdata allocated through the strategy's capped
 * allocator, so a huge file counts against its memory limit.
 *
 *   local s = gp.schedule("targets.csv")
 *   s:at(t)      --> target_w in force at Unix time t, or nil between blocks / outside
 *   s:range()    --> first start, last stop (Unix s)
 *   #s           --> number of blocks
 */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lua_internal.h"
#include "path.h"
#include "timeutil.h"

#define SCHEDULE_MT  "gridpilot.schedule"
#define MAX_LINE_ERR 160

typedef struct block {
    int64_t start_ms, stop_ms;
    double w;
} block;

typedef struct schedule {
    size_t n;
    block b[]; /* sorted by start, non-overlapping */
} schedule;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Parse text into a malloc'd array of blocks; -1 with a one-line reason in err. */
static int parse(char *text, const char *file, block **out, size_t *n_out, char *err, size_t len)
{
    block *v = NULL;
    size_t n = 0, cap = 0;
    int line = 0, header = 0;
    char *p = text;
    if (strncmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        char *row = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*row || *row == '#') continue;
        char *f[4] = {row, NULL, NULL, NULL};
        int k = 1;
        for (char *c = row; *c && k < 4; c++)
            if (*c == ',') *c = '\0', f[k++] = c + 1;
        if (k != 3) {
            snprintf(err, len, "%s line %d: expected 3 fields start,stop,target_w", file, line);
            goto fail;
        }
        for (int i = 0; i < 3; i++)
            f[i] = trim(f[i]);
        if (!header) {
            header = 1;
            if (strcmp(f[0], "start") != 0 || strcmp(f[1], "stop") != 0 ||
                strcmp(f[2], "target_w") != 0) {
                snprintf(err, len, "%s line %d: the header must be start,stop,target_w", file,
                         line);
                goto fail;
            }
            continue;
        }
        block b;
        char why[MAX_LINE_ERR], *end = NULL;
        if (gp_parse_time_ms(f[0], &b.start_ms, why, sizeof why) != 0 ||
            gp_parse_time_ms(f[1], &b.stop_ms, why, sizeof why) != 0) {
            snprintf(err, len, "%s line %d: %s", file, line, why);
            goto fail;
        }
        b.w = strtod(f[2], &end);
        if (!*f[2] || *end || !isfinite(b.w)) {
            snprintf(err, len, "%s line %d: target_w \"%.40s\" is not a number", file, line, f[2]);
            goto fail;
        }
        if (b.stop_ms <= b.start_ms) {
            snprintf(err, len, "%s line %d: stop is not after start", file, line);
            goto fail;
        }
        if (n && b.start_ms < v[n - 1].stop_ms) {
            snprintf(err, len,
                     "%s line %d: starts before the previous block ends (blocks must be in "
                     "order and not overlap)",
                     file, line);
            goto fail;
        }
        if (n == cap) v = gp_xrealloc(v, (cap = cap ? 2 * cap : 64) * sizeof *v);
        v[n++] = b;
    }
    if (!header) {
        snprintf(err, len, "%s: empty (want the header start,stop,target_w and rows)", file);
        goto fail;
    }
    *out = v;
    *n_out = n;
    return 0;
fail:
    free(v);
    return -1;
}

/* Holds a malloc'd block while Lua may raise (the memory limit): __gc frees it. */
static int guard_gc(lua_State *L)
{
    void **p = lua_touserdata(L, 1);
    free(*p);
    *p = NULL;
    return 0;
}

static void **push_guard(lua_State *L)
{
    void **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;
    if (luaL_newmetatable(L, "gridpilot.schedule.guard")) {
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return p;
}

static int schedule_new(lua_State *L)
{
    const char *arg = luaL_checkstring(L, 1);
    gp_strategy *s = gp_lua_owner(L);
    /* Everything malloc'd hangs off a guard before the next Lua allocation can raise. */
    void **g = push_guard(L);
    char *dir = gp_path_dirname_abs(s->file);
    char *path = gp_path_resolve(dir, arg);
    free(dir);
    size_t len = 0;
    char *text = gp_read_file(path, &len);
    char err[512];
    block *v = NULL;
    size_t n = 0;
    int rc = -1;
    if (!text)
        snprintf(err, sizeof err, "%s: cannot read: %s", path, gp_read_file_why(errno));
    else if (memchr(text, '\0', len))
        snprintf(err, sizeof err, "%s: not a text file", path);
    else
        rc = parse(text, path, &v, &n, err, sizeof err);
    free(text);
    free(path);
    if (rc != 0) return luaL_error(L, "gp.schedule: %s", err);
    *g = v;
    schedule *sc = lua_newuserdatauv(L, sizeof(schedule) + n * sizeof(block), 0);
    sc->n = n;
    if (n) memcpy(sc->b, v, n * sizeof(block));
    free(v);
    *g = NULL;
    luaL_setmetatable(L, SCHEDULE_MT);
    return 1;
}

static int schedule_at(lua_State *L)
{
    const schedule *sc = luaL_checkudata(L, 1, SCHEDULE_MT);
    double t = luaL_checknumber(L, 2);
    int64_t ms = (int64_t)llround(t * 1000.0);
    size_t lo = 0, hi = sc->n; /* first block whose stop is after ms */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sc->b[mid].stop_ms <= ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sc->n && sc->b[lo].start_ms <= ms)
        lua_pushnumber(L, sc->b[lo].w);
    else
        lua_pushnil(L);
    return 1;
}

static int schedule_range(lua_State *L)
{
    const schedule *sc = luaL_checkudata(L, 1, SCHEDULE_MT);
    if (!sc->n) return 0;
    lua_pushnumber(L, (double)sc->b[0].start_ms / 1000.0);
    lua_pushnumber(L, (double)sc->b[sc->n - 1].stop_ms / 1000.0);
    return 2;
}

static int schedule_len(lua_State *L)
{
    const schedule *sc = luaL_checkudata(L, 1, SCHEDULE_MT);
    lua_pushinteger(L, (lua_Integer)sc->n);
    return 1;
}

void gp_lua_push_schedule(lua_State *L)
{
    if (luaL_newmetatable(L, SCHEDULE_MT)) {
        static const luaL_Reg methods[] = {
            {"at", schedule_at}, {"range", schedule_range}, {NULL, NULL}};
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, schedule_len);
        lua_setfield(L, -2, "__len");
        lua_pushliteral(L, "schedule");
        lua_setfield(L, -2, "__metatable"); /* getmetatable() cannot reach the methods */
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, schedule_new);
}
