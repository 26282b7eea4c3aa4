/*
 * The Lua sandbox: capped allocator, wall-clock deadline hook, the restricted environment and
 * protected calls that turn every failure into "file.lua:LINE: message" plus a traceback.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_internal.h"
#include "timeutil.h"

/* How many VM instructions run between two clock checks: ~10 us of Lua, far below any
 * sensible time limit, and gp_mono_s() costs tens of nanoseconds. */
#define HOOK_EVERY 1000

#define MAX_LOAD_BYTES ((size_t)1 << 20) /* largest text chunk load() compiles */

/* Each thread's extra space holds the owning gp_strategy pointer (copied into new threads
 * by Lua); its low bit marks a coroutine the hook killed (see hook). */
#define KILLED ((uintptr_t)1)

static uintptr_t extra_word(lua_State *L)
{
    uintptr_t v;
    memcpy(&v, lua_getextraspace(L), sizeof v);
    return v;
}

gp_strategy *gp_lua_owner(lua_State *L)
{
    return (gp_strategy *)(extra_word(L) & ~KILLED);
}

static int killed(lua_State *co)
{
    return (extra_word(co) & KILLED) != 0;
}

void gp_lua_push_env(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
}

void gp_lua_format_bytes(size_t n, char *buf, size_t len)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, len, "%zu MiB", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, len, "%zu KiB", n >> 10);
    else
        snprintf(buf, len, "%zu bytes", n);
}

static int expired(const gp_strategy *s)
{
    return s->deadline > 0 && gp_mono_s() > s->deadline;
}

/* ---- memory ------------------------------------------------------------------------- */

/* Where the strategy was when an allocation was refused. Lua raises LUA_ERRMEM without
 * calling the message handler, so the location is taken here, from the main thread (a
 * refusal inside a coroutine is reported at the resume). lua_getstack and lua_getinfo("Sl")
 * do not allocate, so this is safe inside the allocator. */
static void note_refusal(gp_strategy *s)
{
    lua_State *L = s->L;
    s->oom_where[0] = '\0';
    s->oom_trace[0] = '\0';
    if (!L) return;
    size_t used = (size_t)snprintf(s->oom_trace, sizeof s->oom_trace, "stack traceback:");
    lua_Debug ar;
    for (int level = 0; level < 8 && lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar)) break;
        if (ar.currentline > 0 && !s->oom_where[0])
            snprintf(s->oom_where, sizeof s->oom_where, "%s:%d", ar.short_src, ar.currentline);
        if (used >= sizeof s->oom_trace) continue;
        if (ar.currentline > 0)
            used += (size_t)snprintf(s->oom_trace + used, sizeof s->oom_trace - used,
                                     "\n\t%s:%d: in %s", ar.short_src, ar.currentline,
                                     *ar.what == 'm' ? "main chunk" : "function");
        else
            used +=
                (size_t)snprintf(s->oom_trace + used, sizeof s->oom_trace - used, "\n\t[C]: in ?");
    }
}

/*
 * The capped allocator. The limit a strategy sees is memory_limit PLUS ctx_bytes: the bytes
 * the engine itself allocated while building the ctx view (device tables, the devices array,
 * command tables, site, pinned names). While the view is built s->in_ctx is set and no
 * collector step can free anything of the strategy's (a steady-state update allocates
 * nothing and steps nothing; an update that must allocate stops the collector first, see
 * will_alloc in lua_ctx.c), so every byte allocated or freed then is the view's own and is
 * counted in ctx_bytes instead of being charged. ctx_bytes is thus the heap the view
 * occupies, measured as each build grows it, and a 100,000-device fleet does not eat the
 * strategy's budget. Everything else (the strategy's tables and strings, and the `extra`
 * tables it asks for) counts.
 */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    gp_strategy *s = ud;
    size_t old = ptr ? osize : 0; /* without a block, osize encodes the object type */
    if (nsize == 0) {
        free(ptr);
        s->mem -= old;
        if (s->in_ctx) s->ctx_bytes -= (int64_t)old;
        return NULL;
    }
    if (!s->in_ctx && nsize > old) {
        size_t allowance = s->ctx_bytes > 0 ? (size_t)s->ctx_bytes : 0;
        if (s->mem - old + nsize > s->memory_limit + allowance) {
            s->refused = 1;
            note_refusal(s);
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    s->mem = s->mem - old + nsize;
    if (s->in_ctx) s->ctx_bytes += (int64_t)nsize - (int64_t)old;
    return p;
}

/* ---- time --------------------------------------------------------------------------- */

/* level: the frame to name, 0 in the hook (it has no frame of its own: 0 is the Lua
 * function being interrupted), 1 in a C function (its Lua caller). */
static int raise_timeout(lua_State *L, const gp_strategy *s, int level)
{
    lua_Debug ar;
    if (lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
    else
        lua_pushfstring(L, "%s: ", s->name);
    lua_pushfstring(L, "strategy exceeded its %I ms time limit", (lua_Integer)s->timeout_ms);
    lua_concat(L, 2);
    return lua_error(L);
}

/*
 * Once the deadline has passed this raises on every call, so a script that catches the
 * error keeps being interrupted; the wrappers below (pcall, xpcall, load, coroutine.*)
 * re-raise it instead of returning it.
 *
 * An error raised from a hook leaves that thread with hooks disabled (Lua restores them
 * only when a protected call in the same thread catches the error). For the main thread
 * our own lua_pcall does; a coroutine that dies this way is marked KILLED so that its
 * pending __close handlers are never run afterwards (they would run without a deadline).
 */
static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    gp_strategy *s = gp_lua_owner(L);
    if (!expired(s)) return;
    if (!lua_pushthread(L)) {
        uintptr_t v = extra_word(L) | KILLED;
        memcpy(lua_getextraspace(L), &v, sizeof v);
    }
    lua_pop(L, 1);
    raise_timeout(L, s, 0);
}

/* For loops in C that a strategy can make arbitrarily long: the hook never runs there. */
static void check_deadline(lua_State *L, lua_Integer i)
{
    if ((i & 4095) != 0) return;
    gp_strategy *s = gp_lua_owner(L);
    if (expired(s)) raise_timeout(L, s, 1);
}

int gp_lua_expired(lua_State *L)
{
    return expired(gp_lua_owner(L));
}

int gp_lua_timeout_error(lua_State *L)
{
    return raise_timeout(L, gp_lua_owner(L), 1);
}

/* ---- safe replacements ---------------------------------------------------------------- */

/* pcall/xpcall as in lbaselib.c, except that after the deadline an error is not caught but
 * propagated: the strategy cannot swallow its own time-out. */
static int finish_pcall(lua_State *L, int status, lua_KContext extra)
{
    if (status != LUA_OK && status != LUA_YIELD) {
        if (expired(gp_lua_owner(L))) return lua_error(L);
        lua_pushboolean(L, 0);
        lua_pushvalue(L, -2);
        return 2;
    }
    return lua_gettop(L) - (int)extra;
}

static int sb_pcall(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
    return finish_pcall(L, status, 0);
}

/* The strategy's message handler is called through this one. An error raised by the hook
 * runs the handler with hooks disabled (Lua is still inside the hook call), so after the
 * deadline the strategy's handler is skipped and the error passes through unchanged.
 * Upvalue 1: the strategy's handler. */
static int sb_handler(lua_State *L)
{
    if (expired(gp_lua_owner(L))) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int sb_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_handler, 1);
    lua_replace(L, 2);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 2);
    int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
    return finish_pcall(L, status, 2);
}

/* coroutine.resume catches errors like pcall does. Upvalue 1: the original. */
static int sb_resume(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    if (!lua_toboolean(L, 1) && expired(gp_lua_owner(L))) {
        lua_settop(L, 2);
        return lua_error(L);
    }
    return lua_gettop(L);
}

/* Run the pending __close handlers of a coroutine that died of an error (what
 * coroutine.close and coroutine.wrap do), unless the hook killed it. Pushes nothing. */
static void close_dead(lua_State *L, lua_State *co)
{
    if (killed(co)) return;
#if LUA_VERSION_RELEASE_NUM >= 50406
    lua_closethread(co, L);
#else
    (void)L;
    lua_resetthread(co);
#endif
}

/* coroutine.close(co). Upvalue 1: the original. */
static int sb_close(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    if (co && killed(co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "coroutine was stopped at the time limit");
        return 2;
    }
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    if (!lua_toboolean(L, 1) && expired(gp_lua_owner(L))) {
        lua_settop(L, 2);
        return lua_error(L);
    }
    return lua_gettop(L);
}

/* The function coroutine.wrap returns (as lcorolib's auxwrap, with close_dead). Upvalue 1:
 * the coroutine. */
static int sb_wrapped(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int narg = lua_gettop(L);
    if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, narg);
    int nres = 0;
    int st = lua_resume(co, L, narg, &nres); /* refuses dead and running coroutines */
    if (st == LUA_OK || st == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            return luaL_error(L, "too many results to resume");
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1); /* the error */
    st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD && !killed(co)) {
        /* It died of the error (not "cannot resume"): close its variables. */
        close_dead(L, co);
        lua_pop(L, 1);
        lua_xmove(co, L, 1); /* the error, or one raised by a __close */
    }
    if (lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int sb_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, sb_wrapped, 1);
    return 1;
}

/* setmetatable without __gc: finalizers run with hooks disabled, where no deadline can stop
 * them. The mark for finalization is taken here, so a __gc added to the metatable later
 * has no effect. Upvalue 1: the original. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not available to strategies");
        lua_pop(L, 1);
    }
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, 1);
    return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]): text only; env defaults to the sandbox (an
 * explicit env, nil included, is honoured). A reader function's errors are returned by
 * load, so after the deadline they are re-raised. Upvalue 1: the original load. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    /* Compiling runs in C, out of the hook's reach: keep one compile short. */
    if (lua_type(L, 1) == LUA_TSTRING && lua_rawlen(L, 1) > MAX_LOAD_BYTES)
        return luaL_error(L, "load: a %d-byte chunk is too large for a strategy (limit 1 MiB)",
                          (int)lua_rawlen(L, 1));
    lua_settop(L, 4);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    if (n < 4) {
        gp_lua_push_env(L);
        lua_replace(L, 4);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 4, LUA_MULTRET);
    if (lua_isnil(L, 1) && expired(gp_lua_owner(L))) {
        lua_settop(L, 2);
        return lua_error(L);
    }
    return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") != 0)
        return luaL_error(L, "collectgarbage('%s') is not available to strategies (only 'count')",
                          opt);
    int kb = lua_gc(L, LUA_GCCOUNT);
    int b = lua_gc(L, LUA_GCCOUNTB);
    lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024);
    return 1;
}

static int sb_print(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    gp_log(GP_LOG_INFO, gp_lua_owner(L)->name, "%s", lua_tostring(L, -1));
    return 0;
}

/* ---- pattern matching ----------------------------------------------------------------- */

/*
 * Lua's pattern matcher backtracks in C, where the hook cannot interrupt it:
 * string.find(string.rep("a", 3000), ".-.-.-b") runs for minutes. Before a match starts its
 * worst case is bounded from the pattern: each repetition (*, +, -) of a character class,
 * each %b and back reference may scan every length of the subject, each optional item (?)
 * doubles the choices, and an unanchored search tries every start: at most
 * (n + 1)^(scans + 1) * 2^optionals steps. Calls above MAX_MATCH_STEPS are refused; the
 * patterns strategies use on ids and names stay far below it.
 */
#define MAX_MATCH_STEPS 1e8

/* Count the scanning and optional items of a pattern, skipping sets and escapes as
 * lstrlib's classEnd does. */
static void pattern_cost(const char *p, size_t len, int *scans, int *optionals)
{
    size_t i = 0;
    *scans = *optionals = 0;
    if (i < len && p[i] == '^') i++;
    while (i < len) {
        char c = p[i];
        if (c == '(' || c == ')') {
            i++;
            continue;
        }
        if (c == '%' && i + 1 < len && (p[i + 1] == 'b' || (p[i + 1] >= '0' && p[i + 1] <= '9'))) {
            (*scans)++;
            i += p[i + 1] == 'b' ? 4 : 2;
            continue;
        }
        int frontier = c == '%' && i + 1 < len && p[i + 1] == 'f';
        if (frontier) {
            i += 2;
            c = i < len ? p[i] : '\0';
        }
        if (c == '%') {
            i += 2;
        } else if (c == '[') {
            i++;
            if (i < len && p[i] == '^') i++;
            do {
                if (i >= len) return;
                if (p[i++] == '%') i++;
            } while (i < len && p[i] != ']');
            i++;
        } else {
            i++;
        }
        if (frontier || i >= len) continue;
        if (p[i] == '*' || p[i] == '+' || p[i] == '-') {
            (*scans)++;
            i++;
        } else if (p[i] == '?') {
            (*optionals)++;
            i++;
        }
    }
}

/* string.find/match/gmatch/gsub(s, pattern, ...). Upvalues: the original, its name, and
 * whether a true 4th argument means a plain search (find). */
static int sb_match(lua_State *L)
{
    size_t n = 0, pl = 0;
    const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
    const char *p = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &pl) : NULL;
    int plain = lua_toboolean(L, lua_upvalueindex(3)) && lua_toboolean(L, 4);
    if (s && p && !plain) {
        int scans, optionals;
        pattern_cost(p, pl, &scans, &optionals);
        int k = scans + (pl > 0 && p[0] == '^' ? 0 : 1);
        double steps = 1;
        for (int i = 0; i < k && steps <= MAX_MATCH_STEPS; i++)
            steps *= (double)n + 1;
        for (int i = 0; i < optionals && steps <= MAX_MATCH_STEPS; i++)
            steps *= 2;
        if (steps > MAX_MATCH_STEPS)
            return luaL_error(L,
                              "%s: this pattern on a %d-byte string could backtrack for too long "
                              "(use a simpler pattern, a shorter string or a plain find)",
                              lua_tostring(L, lua_upvalueindex(2)), (int)n);
    }
    int top = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, top, LUA_MULTRET);
    return lua_gettop(L);
}

/* Wrap the matching functions of the string table at idx. */
static void guard_patterns(lua_State *L, int idx)
{
    static const char *const names[] = {"find", "match", "gmatch", "gsub"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        lua_getfield(L, idx, names[i]);
        lua_pushfstring(L, "string.%s", names[i]);
        lua_pushboolean(L, i == 0);
        lua_pushcclosure(L, sb_match, 3);
        lua_setfield(L, idx, names[i]);
    }
}

/* ---- table and string functions with unbounded C loops ------------------------------- */

/*
 * table.insert/remove shift up to #t elements and table.move any range, in C loops the hook
 * does not reach; # comes from __len, so setmetatable({}, {__len = ...}) makes them run for
 * ever. These are ltablib's with a deadline check in the loop (tables only: the
 * sandbox has no other objects they would make sense for).
 */
static int sb_tinsert(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer e = luaL_intop(+, luaL_len(L, 1), 1); /* first empty element */
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2:
        pos = e;
        break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        for (lua_Integer i = e; i > pos; i--) {
            check_deadline(L, i);
            lua_geti(L, 1, i - 1);
            lua_seti(L, 1, i);
        }
        break;
    default:
        return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

/* table.sort runs in C; with the default comparison no hook fires inside it, and sorting
 * millions of values overruns the deadline by seconds. Bound the size instead (a comparator
 * function runs Lua code, where the deadline applies as usual). */
#define SB_SORT_MAX 500000

static int sb_tsort(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n > SB_SORT_MAX)
        return luaL_error(L, "table.sort: %I elements is more than a strategy may sort (%d)",
                          (LUAI_UACINT)n, SB_SORT_MAX);
    check_deadline(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

static int sb_tremove(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer size = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size)
        luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2, "position out of bounds");
    lua_geti(L, 1, pos);
    for (; pos < size; pos++) {
        check_deadline(L, pos);
        lua_geti(L, 1, pos + 1);
        lua_seti(L, 1, pos);
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sb_tmove(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, tt, LUA_TTABLE);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        if (t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
            for (lua_Integer i = 0; i < n; i++) {
                check_deadline(L, i);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        } else {
            for (lua_Integer i = n - 1; i >= 0; i--) {
                check_deadline(L, i);
                lua_geti(L, 1, f + i);
                lua_seti(L, tt, t + i);
            }
        }
    }
    lua_pushvalue(L, tt);
    return 1;
}

/* string.rep of an empty string (and separator) loops n times doing nothing: answer at
 * once. Upvalue 1: the original. */
static int sb_rep(lua_State *L)
{
    size_t l = 0, lsep = 0;
    luaL_checklstring(L, 1, &l);
    luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (l + lsep == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, 1);
    return 1;
}

/* ---- the environment ------------------------------------------------------------------ */

static void copy_fields(lua_State *L, int from, int to, const char *const *names)
{
    for (; *names; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, to, *names);
    }
}

/* A shallow copy of a library table, so the strategy's edits stay in its own table. */
static void push_copy(lua_State *L, int loaded, const char *lib)
{
    lua_getfield(L, loaded, lib);
    int src = lua_gettop(L);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_remove(L, src);
}

static int open_sandbox(lua_State *L)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL},
    };
    static const char *const base_names[] = {
        "assert",   "error",  "ipairs",   "next",   "pairs",        "rawequal",
        "rawget",   "rawlen", "rawset",   "select", "getmetatable", "tonumber",
        "tostring", "type",   "_VERSION", NULL,
    };
    static const char *const os_names[] = {"time", "clock", "date", "difftime", NULL};

    /* Into the registry only (glb = 0): nothing reaches the strategy but what is copied. */
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 0);
        lua_pop(L, 1);
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int loaded = lua_gettop(L);
    lua_createtable(L, 0, 32);
    int env = lua_gettop(L);
    lua_getfield(L, loaded, LUA_GNAME);
    int base = lua_gettop(L);

    copy_fields(L, base, env, base_names);
    lua_getfield(L, base, "load");
    lua_pushcclosure(L, sb_load, 1);
    lua_setfield(L, env, "load");
    lua_getfield(L, base, "setmetatable");
    lua_pushcclosure(L, sb_setmetatable, 1);
    lua_setfield(L, env, "setmetatable");
    lua_pushcfunction(L, sb_pcall);
    lua_setfield(L, env, "pcall");
    lua_pushcfunction(L, sb_xpcall);
    lua_setfield(L, env, "xpcall");
    lua_pushcfunction(L, sb_collectgarbage);
    lua_setfield(L, env, "collectgarbage");
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, env, "print");

    /* string is shared with the string metatable's __index ("x"):dump() must fail as well,
     * so dump goes from the one table both use. */
    lua_getfield(L, loaded, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    guard_patterns(L, lua_gettop(L));
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, sb_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_setfield(L, env, LUA_STRLIBNAME);

    push_copy(L, loaded, LUA_TABLIBNAME);
    lua_pushcfunction(L, sb_tinsert);
    lua_setfield(L, -2, "insert");
    lua_pushcfunction(L, sb_tremove);
    lua_setfield(L, -2, "remove");
    lua_pushcfunction(L, sb_tmove);
    lua_setfield(L, -2, "move");
    lua_getfield(L, -1, "sort");
    lua_pushcclosure(L, sb_tsort, 1);
    lua_setfield(L, -2, "sort");
    lua_setfield(L, env, LUA_TABLIBNAME);
    push_copy(L, loaded, LUA_MATHLIBNAME);
    lua_setfield(L, env, LUA_MATHLIBNAME);
    push_copy(L, loaded, LUA_UTF8LIBNAME);
    lua_setfield(L, env, LUA_UTF8LIBNAME);

    push_copy(L, loaded, LUA_COLIBNAME);
    lua_getfield(L, -1, "resume");
    lua_pushcclosure(L, sb_resume, 1);
    lua_setfield(L, -2, "resume");
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, sb_close, 1);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, sb_wrap);
    lua_setfield(L, -2, "wrap");
    lua_setfield(L, env, LUA_COLIBNAME);

    lua_getfield(L, loaded, LUA_OSLIBNAME);
    lua_createtable(L, 0, 4);
    copy_fields(L, lua_gettop(L) - 1, lua_gettop(L), os_names);
    lua_setfield(L, env, LUA_OSLIBNAME);
    lua_pop(L, 1);

    gp_lua_push_gp(L);
    lua_setfield(L, env, "gp");

    /* The sandbox also becomes the state's globals table: anything that defaults to the
     * globals (lua_load without an env) lands in the sandbox, never in the full base lib. */
    lua_pushvalue(L, env);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    return 0;
}

static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    gp_err("strategy", "unprotected Lua error: %s", msg ? msg : "?");
    abort();
    return 0;
}

int gp_lua_open(gp_strategy *s, char *err, size_t errlen)
{
    s->L = lua_newstate(l_alloc, s);
    if (!s->L) {
        char lim[32];
        gp_lua_format_bytes(s->memory_limit, lim, sizeof lim);
        snprintf(err, errlen, "%s: strategy exceeded its memory limit (%s)", s->name, lim);
        return -1;
    }
    memcpy(lua_getextraspace(s->L), &s, sizeof s);
    lua_atpanic(s->L, panic);
    lua_sethook(s->L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    return gp_lua_cpcall(s, open_sandbox, NULL, 0, err, errlen);
}

void gp_lua_close(gp_strategy *s)
{
    if (!s->L) return;
    /* Strategies cannot set __gc and the main stack is empty, so nothing of theirs should
     * run here; the deadline stays armed all the same. */
    s->deadline = gp_mono_s() + (double)s->timeout_ms / 1000.0;
    lua_close(s->L);
    s->L = NULL;
}

/* ---- calls ---------------------------------------------------------------------------- */

static int msgh(lua_State *L)
{
    /* Pure C on purpose: no __tostring, so nothing of the strategy's runs here. */
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static void memory_error(gp_strategy *s, char *err, size_t errlen)
{
    char lim[32];
    gp_lua_format_bytes(s->memory_limit, lim, sizeof lim);
    if (!s->refused) {
        snprintf(err, errlen, "%s: out of memory", s->name);
        return;
    }
    snprintf(err, errlen, "%s: strategy exceeded its memory limit (%s)%s%s",
             s->oom_where[0] ? s->oom_where : s->name, lim, s->oom_trace[0] ? "\n" : "",
             s->oom_trace);
}

/* Error text with the guaranteed "file.lua..." start: messages without a position (error
 * with level 0, non-string error objects) get the file name in front. */
static void copy_error(gp_strategy *s, const char *msg, char *err, size_t errlen)
{
    size_t nl = strlen(s->name);
    if (strncmp(msg, s->name, nl) == 0 && msg[nl] == ':')
        snprintf(err, errlen, "%s", msg);
    else
        snprintf(err, errlen, "%s: %s", s->name, msg);
}

static void call_error(gp_strategy *s, int status, char *err, size_t errlen)
{
    const char *msg = lua_tostring(s->L, -1);
    if (status == LUA_ERRMEM || (status == LUA_ERRERR && s->refused)) {
        memory_error(s, err, errlen);
    } else if (status == LUA_ERRERR && expired(s)) {
        snprintf(err, errlen, "%s: strategy exceeded its %lld ms time limit", s->name,
                 (long long)s->timeout_ms);
    } else {
        copy_error(s, msg ? msg : "unknown error", err, errlen);
    }
}

int gp_lua_pcall(gp_strategy *s, int nargs, int nres, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int fn = lua_gettop(L) - nargs;
    lua_pushcfunction(L, msgh);
    lua_insert(L, fn);
    s->refused = 0;
    s->oom_where[0] = '\0';
    s->oom_trace[0] = '\0';
    s->deadline = gp_mono_s() + (double)s->timeout_ms / 1000.0;
    int status = lua_pcall(L, nargs, nres, fn);
    if (status == LUA_OK) {
        lua_remove(L, fn);
        return 0;
    }
    call_error(s, status, err, errlen);
    lua_settop(L, fn - 1);
    return -1;
}

int gp_lua_cpcall(gp_strategy *s, lua_CFunction f, void *ud, int nargs, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int top = lua_gettop(L) - nargs;
    s->refused = 0;
    s->oom_where[0] = '\0';
    s->oom_trace[0] = '\0';
    lua_pushcfunction(L, f);
    lua_insert(L, top + 1);
    lua_pushlightuserdata(L, ud);
    lua_insert(L, top + 2);
    int status = lua_pcall(L, nargs + 1, 0, 0);
    if (status == LUA_OK) return 0;
    call_error(s, status, err, errlen);
    lua_settop(L, top);
    return -1;
}
