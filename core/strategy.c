/*
 * Strategy engine: load a strategy file into its own sandboxed state, run init/decide each
 * tick and parse the returned commands into intents.
 */
#include "strategy.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lua_internal.h"
#include "timeutil.h"

#define DEFAULT_TIMEOUT_MS 200
#define DEFAULT_MEMORY     ((size_t)64 << 20)

/* Keep only the first line: load errors are reported as one line. */
static void first_line(char *err)
{
    char *nl = strchr(err, '\n');
    if (nl) *nl = '\0';
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static gp_strategy *strategy_new(const gp_strategy_opts *o)
{
    gp_strategy *s = gp_xcalloc(1, sizeof *s);
    s->file = gp_xstrdup(o->file);
    s->name = gp_xstrdup(basename_of(o->file));
    s->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    s->memory_limit = o->memory_limit ? o->memory_limit : DEFAULT_MEMORY;
    int *refs[] = {&s->ref_init,        &s->ref_decide,  &s->ref_state,   &s->ref_params,
                   &s->ref_ctx,         &s->ref_devtabs, &s->ref_devices, &s->ref_cmdtabs,
                   &s->ref_devmt,       &s->ref_names,   &s->ref_site,    &s->ref_tariff,
                   &s->ref_extra_dirty, &s->ref_keys};
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++)
        *refs[i] = LUA_NOREF;
    return s;
}

/* Run the compiled chunk (on top of the stack) and keep its decide and init. */
static int run_chunk(gp_strategy *s, char *err, size_t errlen)
{
    lua_State *L = s->L;
    gp_lua_push_env(L);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1); /* a chunk always has _ENV; be safe */
    if (gp_lua_pcall(s, 0, 1, err, errlen) != 0) return -1;
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: the file must return a table with a decide function (got %s)",
                 s->name, luaL_typename(L, -1));
        return -1;
    }
    lua_pushliteral(L, "decide");
    lua_rawget(L, -2);
    if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "%s: the returned table has no decide function (decide is %s)",
                 s->name, luaL_typename(L, -1));
        return -1;
    }
    s->ref_decide = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "init");
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
    } else if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "%s: init must be a function (got %s)", s->name,
                 luaL_typename(L, -1));
        return -1;
    } else {
        s->ref_init = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_settop(L, 0);
    return 0;
}

typedef struct load_job {
    char *err;
    size_t errlen;
    int failed;
} load_job;

/* run_chunk's bookkeeping (luaL_ref) may raise a memory error: run it protected. Args:
 * (job, chunk). */
static int load_protected(lua_State *L)
{
    load_job *job = lua_touserdata(L, 1);
    lua_remove(L, 1);
    if (run_chunk(gp_lua_owner(L), job->err, job->errlen) != 0) job->failed = 1;
    return 0;
}

gp_strategy *gp_strategy_load(const gp_strategy_opts *o, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (!o || !o->file || !*o->file) {
        snprintf(err, errlen, "no strategy file given");
        return NULL;
    }
    size_t len = 0;
    char *src = gp_read_file(o->file, &len);
    if (!src) {
        snprintf(err, errlen, "%s: cannot read: %s", o->file, gp_read_file_why(errno));
        return NULL;
    }
    gp_strategy *s = strategy_new(o);
    if (gp_lua_open(s, err, errlen) != 0) goto fail;
    if (gp_lua_cpcall(s, gp_lua_ctx_init, (void *)o->params_json, 0, err, errlen) != 0) goto fail;

    gp_str chunkname = {0};
    gp_str_printf(&chunkname, "@%s", s->name);
    int st = luaL_loadbufferx(s->L, src, len, gp_str_cstr(&chunkname), "t");
    gp_str_clear(&chunkname);
    if (st != LUA_OK) {
        if (st == LUA_ERRMEM) {
            char lim[32];
            gp_lua_format_bytes(s->memory_limit, lim, sizeof lim);
            snprintf(err, errlen, "%s: strategy exceeded its memory limit (%s)", s->name, lim);
        } else {
            const char *msg = lua_tostring(s->L, -1);
            size_t nl = strlen(s->name);
            /* Syntax errors carry "file.lua:LINE:"; a refused binary chunk does not. */
            if (msg && strncmp(msg, s->name, nl) == 0 && msg[nl] == ':')
                snprintf(err, errlen, "%s", msg);
            else
                snprintf(err, errlen, "%s: %s", s->name, msg ? msg : "cannot load");
        }
        goto fail;
    }
    load_job job = {err, errlen, 0};
    if (gp_lua_cpcall(s, load_protected, &job, 1, err, errlen) != 0 || job.failed) goto fail;
    free(src);
    return s;
fail:
    free(src);
    first_line(err);
    gp_strategy_free(s);
    return NULL;
}

void gp_strategy_free(gp_strategy *s)
{
    if (!s) return;
    gp_lua_close(s);
    free(s->caps_seen);
    free(s->intents);
    gp_str_clear(&s->strings);
    free(s->file);
    free(s->name);
    free(s);
}

size_t gp_strategy_mem(const gp_strategy *s)
{
    return s ? s->mem : 0;
}

/* ---- commands ------------------------------------------------------------------------- */

/* Offsets into s->strings while parsing (the buffer may move); SIZE_MAX = none. */
typedef struct offs {
    size_t device, error;
} offs;

static size_t put_string(gp_strategy *s, const char *text, size_t len)
{
    size_t at = s->strings.len;
    gp_str_append(&s->strings, text, len);
    gp_str_append(&s->strings, "", 1); /* keeps the NUL inside the buffer */
    return at;
}

static size_t put_error(gp_strategy *s, size_t cmd, const char *fmt, const char *what)
{
    char buf[160];
    char msg[128];
    snprintf(msg, sizeof msg, fmt, what);
    int n = snprintf(buf, sizeof buf, "command %zu: %s", cmd, msg);
    return put_string(s, buf, n > 0 ? (size_t)n : 0);
}

/* A key for a message: printable, bounded, without converting it in place (lua_next). */
static void describe_key(lua_State *L, int idx, char *buf, size_t len)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t n;
        const char *k = lua_tolstring(L, idx, &n);
        size_t o = 0;
        for (size_t i = 0; i < n && o + 1 < len && i < 40; i++)
            buf[o++] = (unsigned char)k[i] < 0x20 ? '?' : k[i];
        buf[o] = '\0';
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
        snprintf(buf, len, "[%g]", (double)lua_tonumber(L, idx));
    } else {
        snprintf(buf, len, "(%s key)", luaL_typename(L, idx));
    }
}

enum { F_DEVICE, F_SETPOINT, F_DURATION, F_SOC_TARGET, F_DOD, F_ON, F_RELEASE, F_UNKNOWN };

static int field_of(lua_State *L, int idx)
{
    static const char *const names[] = {"device", "setpoint_w", "duration_s", "soc_target",
                                        "dod",    "on",         "release"};
    if (lua_type(L, idx) != LUA_TSTRING) return F_UNKNOWN;
    const char *k = lua_tostring(L, idx);
    for (int i = 0; i < F_UNKNOWN; i++)
        if (strcmp(k, names[i]) == 0) return i;
    return F_UNKNOWN;
}

/* Parse the command table at the top of the stack into *in; errors go to in->error. */
static void parse_command(gp_strategy *s, size_t cmd, gp_intent *in, offs *o)
{
    lua_State *L = s->L;
    int t = lua_gettop(L);
    char key[64];
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int f = field_of(L, -2);
        int ty = lua_type(L, -1);
        const char *bad = NULL;
        switch (f) {
        case F_DEVICE:
            if (ty != LUA_TSTRING) {
                bad = "device must be a string";
            } else {
                size_t n;
                const char *v = lua_tolstring(L, -1, &n);
                if (strlen(v) != n)
                    bad = "device must not contain NUL";
                else
                    o->device = put_string(s, v, n);
            }
            break;
        case F_SETPOINT:
        case F_DURATION:
        case F_SOC_TARGET:
        case F_DOD: {
            static const char *const msgs[] = {
                NULL, "setpoint_w must be a number", "duration_s must be a number",
                "soc_target must be a number", "dod must be a number"};
            static const uint32_t bits[] = {0, GP_IF_SETPOINT, GP_IF_DURATION, GP_IF_SOC_TARGET,
                                            GP_IF_DOD};
            if (ty != LUA_TNUMBER) {
                bad = msgs[f];
                break;
            }
            double v = (double)lua_tonumber(L, -1);
            double *dst[] = {NULL, &in->setpoint_w, &in->duration_s, &in->soc_target, &in->dod};
            *dst[f] = v;
            in->fields |= bits[f];
            break;
        }
        case F_ON:
            if (ty != LUA_TBOOLEAN) {
                bad = "on must be a boolean";
            } else {
                in->on = lua_toboolean(L, -1);
                in->fields |= GP_IF_ON;
            }
            break;
        case F_RELEASE:
            if (ty != LUA_TBOOLEAN || !lua_toboolean(L, -1)) {
                bad = "release must be true";
            } else {
                in->release = 1;
                in->fields |= GP_IF_RELEASE;
            }
            break;
        default:
            describe_key(L, -2, key, sizeof key);
            if (o->error == SIZE_MAX) o->error = put_error(s, cmd, "unknown key '%s'", key);
            break;
        }
        if (bad && o->error == SIZE_MAX) o->error = put_error(s, cmd, "%s", bad);
        lua_pop(L, 1);
    }
    if (o->error == SIZE_MAX && o->device == SIZE_MAX)
        o->error = put_error(s, cmd, "%s", "missing device");
}

/* The list must be a sequence (keys 1..n, nothing else): a single command returned without
 * the surrounding { } would otherwise read as an empty list and be silently ignored, and a
 * border trick could claim a length of 2^61. Returns 0, or -1 with the reason in what. */
static int check_list(lua_State *L, int t, size_t n, char *what, size_t len)
{
    size_t count = 0;
    char key[64];
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        int isnum = 0;
        lua_Integer k = lua_tointegerx(L, -1, &isnum);
        if (lua_type(L, -1) != LUA_TNUMBER || !isnum || k < 1 || (size_t)k > n) {
            describe_key(L, -1, key, sizeof key);
            snprintf(what, len, "found key '%s'; wrap a single command in { }", key);
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    if (count != n) {
        snprintf(what, len, "it has holes: %zu of %zu entries are nil", n - count, n);
        return -1;
    }
    return 0;
}

static int parse_commands(gp_strategy *s, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int t = lua_gettop(L);
    if (lua_isnil(L, t)) return 0;
    if (!lua_istable(L, t)) {
        snprintf(err, errlen, "%s: decide must return a list of commands (got %s)", s->name,
                 luaL_typename(L, t));
        return -1;
    }
    size_t n = (size_t)lua_rawlen(L, t);
    char why[128];
    if (check_list(L, t, n, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: decide must return a list of commands (%s)", s->name, why);
        return -1;
    }
    if (n > s->cap_intents) {
        s->intents = gp_xrealloc(s->intents, n * sizeof *s->intents);
        s->cap_intents = n;
    }
    offs *o = n ? gp_xmalloc(n * sizeof *o) : NULL;
    for (size_t i = 0; i < n; i++) {
        gp_intent *in = &s->intents[i];
        memset(in, 0, sizeof *in);
        o[i].device = o[i].error = SIZE_MAX;
        lua_rawgeti(L, t, (lua_Integer)i + 1);
        if (lua_istable(L, -1))
            parse_command(s, i + 1, in, &o[i]);
        else
            o[i].error = put_error(s, i + 1, "not a table (got %s)", luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < n; i++) {
        s->intents[i].device = o[i].device == SIZE_MAX ? NULL : s->strings.data + o[i].device;
        s->intents[i].error = o[i].error == SIZE_MAX ? NULL : s->strings.data + o[i].error;
    }
    free(o);
    s->n_intents = n;
    return 0;
}

/* ---- tick ----------------------------------------------------------------------------- */

static int call_with_ctx(gp_strategy *s, int ref, int nres, char *err, size_t errlen)
{
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, ref);
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->ref_ctx);
    return gp_lua_pcall(s, 1, nres, err, errlen);
}

int gp_strategy_tick(gp_strategy *s, const gp_tick_in *in, gp_tick_out *out, char *err,
                     size_t errlen)
{
    double t0 = gp_mono_s();
    lua_State *L = s->L;
    out->intents = NULL;
    out->n = 0;
    s->n_intents = 0;
    s->n_metrics = 0;
    gp_str_reset(&s->strings);
    lua_settop(L, 0);

    /* Bytes allocated while the view is built are the view's, not the strategy's (see
     * l_alloc in lua_sandbox.c and will_alloc in lua_ctx.c). */
    int rc = gp_lua_cpcall(s, gp_lua_ctx_update, (void *)in, 0, err, errlen);
    s->in_ctx = 0;
    if (s->gc_stopped) {
        lua_gc(L, LUA_GCRESTART);
        s->gc_stopped = 0;
    }

    if (rc == 0 && !s->init_done && s->ref_init != LUA_NOREF) {
        /* init must succeed once before decide runs; a failed init is retried next tick. */
        rc = call_with_ctx(s, s->ref_init, 0, err, errlen);
        if (rc == 0) s->init_done = 1;
    }
    if (rc == 0) rc = call_with_ctx(s, s->ref_decide, 1, err, errlen);
    if (rc == 0) rc = parse_commands(s, err, errlen);
    if (rc != 0) s->n_intents = s->n_metrics = 0;
    lua_settop(L, 0);
    s->fleet = NULL; /* both borrowed for this tick only */
    s->tariff = NULL;
    out->intents = s->n_intents ? s->intents : NULL;
    out->n = s->n_intents;
    out->elapsed_ms = (gp_mono_s() - t0) * 1000.0;
    out->metrics = s->metrics;
    out->n_metrics = s->n_metrics;
    return rc;
}
