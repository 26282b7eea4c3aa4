/*
 * Private to the strategy engine (strategy.c, lua_sandbox.c, lua_ctx.c, lua_gp.c).
 *
 * One gp_strategy owns one lua_State. The state's extra space holds a pointer back to the
 * gp_strategy so that C functions, the allocator and the hook reach the engine from any
 * coroutine of that state.
 */
#ifndef GP_LUA_INTERNAL_H
#define GP_LUA_INTERNAL_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"
#include "strategy.h"

struct gp_strategy {
    lua_State *L; /* owned; gp_lua_close */
    char *file;   /* owned copy of opts.file */
    char *name;   /* owned; basename of file: chunk name and log `who` */

    /* Limits. */
    int64_t timeout_ms;
    size_t memory_limit;
    double deadline; /* gp_mono_s() after which the hook raises; 0 = no call running yet */

    /* Allocator accounting (see l_alloc in lua_sandbox.c). */
    size_t mem;          /* bytes currently allocated by the state */
    int64_t ctx_bytes;   /* bytes the engine allocated for the ctx view: not charged */
    int in_ctx;          /* 1 while the engine builds ctx: no limit, bytes go to ctx_bytes */
    int gc_stopped;      /* the ctx update stopped the collector (restarted after it) */
    int refused;         /* the allocator refused a block during the current call */
    char oom_where[160]; /* "file.lua:12" of the last refusal, "" when unknown */
    char oom_trace[512]; /* "stack traceback:..." of the last refusal */

    gp_metric metrics[GP_METRICS_MAX]; /* gp.metric figures of the current tick */
    size_t n_metrics;

    /* Registry references (LUA_NOREF until created). */
    int ref_init, ref_decide; /* the strategy's functions */
    int ref_state;            /* ctx.state */
    int ref_params;           /* ctx.params (read-only proxy) */
    int ref_ctx;              /* the ctx table itself, reused every tick */
    int ref_devtabs;          /* private array of device tables, fleet order */
    int ref_devices;          /* ctx.devices: refilled from devtabs every tick */
    int ref_cmdtabs;          /* private array: per-device command table, built lazily */
    int ref_devmt;            /* metatable shared by device tables (lazy `extra`) */
    int ref_names;            /* pinned name strings (kinds, states) */
    int ref_keys;             /* pinned field-name strings of the ctx update */
    int ref_site, ref_tariff; /* ctx.site, ctx.tariff */
    int ref_extra_dirty;      /* device tables whose `extra` was built this tick */

    /* The fleet view. */
    const gp_fleet *fleet; /* fleet of the current tick; borrowed; NULL outside a tick */
    const gp_fleet *built; /* the fleet the device tables were built for (identity only) */
    size_t n_built;        /* device tables built so far */
    uint32_t *caps_seen;   /* caps last written per device table; owned */
    size_t caps_cap;
    const gp_tariff *tariff; /* tariff of the current tick; borrowed; may be NULL */
    int64_t now_ms;

    int init_done;

    /* Parsed commands of the last tick (see gp_tick_out). */
    gp_intent *intents; /* owned */
    size_t n_intents, cap_intents;
    gp_str strings; /* device ids and error texts the intents point into */
};

/* ---- lua_sandbox.c ------------------------------------------------------------------- */

/* Create s->L with the capped allocator, the deadline hook and the sandbox environment
 * (left in the registry as the globals table). Returns 0, or -1 with a reason in err. */
int gp_lua_open(gp_strategy *s, char *err, size_t errlen);
/* Close s->L (finalizers still run under a deadline). */
void gp_lua_close(gp_strategy *s);
/* The strategy that owns L (any thread of it). */
gp_strategy *gp_lua_owner(lua_State *L);
/* Push the sandbox environment table. */
void gp_lua_push_env(lua_State *L);
/* Call the function below its nargs arguments on the stack with a fresh deadline and a
 * traceback message handler. Returns 0 with nres results pushed, or -1 with the error (first
 * line "file.lua:LINE: message", then the traceback) in err and nothing pushed. */
int gp_lua_pcall(gp_strategy *s, int nargs, int nres, char *err, size_t errlen);
/* Run a C function in protected mode (engine work that may raise memory errors) as
 * f(ud, <the nargs values on top of the stack>), ud a light userdata; f's results are
 * dropped. Returns 0, or -1 with the error in err; the nargs values are consumed. */
int gp_lua_cpcall(gp_strategy *s, lua_CFunction f, void *ud, int nargs, char *err, size_t errlen);
/* Human form of a byte count ("64 MiB", "1500 KiB", "4096 bytes"). */
void gp_lua_format_bytes(size_t n, char *buf, size_t len);
/* For long C loops, where the hook never runs: has the running call's deadline passed? */
int gp_lua_expired(lua_State *L);
/* Raise the time-limit error at the line of the Lua code that called the C function. */
int gp_lua_timeout_error(lua_State *L);

/* ---- lua_ctx.c ----------------------------------------------------------------------- */

/* Protected (lua_CFunction for gp_lua_cpcall, ud = params JSON text or NULL): build the
 * read-only ctx.params proxy and the persistent ctx.state; raises on invalid JSON. */
int gp_lua_ctx_init(lua_State *L);
/* Protected (ud = const gp_tick_in *): refresh ctx for this tick; leaves it in ref_ctx. */
int gp_lua_ctx_update(lua_State *L);

/* ---- lua_gp.c ------------------------------------------------------------------------ */

/* Push the `gp` library table. */
void gp_lua_push_gp(lua_State *L);

/* The gp functions (docs/lua-api.md): plain functions of their arguments, so strategies and
 * tests may pass tables of their own. Their C work is bounded by the size of those
 * arguments (sorts, one pass per device or slot) except gp.plan's, which polls the
 * deadline. */
int gp_lua_allocate(lua_State *L); /* lua_gp_alloc.c */
int gp_lua_cheapest(lua_State *L); /* lua_gp_slots.c */
int gp_lua_dearest(lua_State *L);
int gp_lua_plan(lua_State *L); /* lua_gp_plan.c; upvalue 1: its cached work buffer */
/* lua_gp.c: the length of the array at idx for fn ("gp.plan") describing it as what
 * ("tariff.slots"); raises above 10 million, so that sizes computed from it cannot overflow
 * (a table's border can be any power of two a strategy sets). */
size_t gp_lua_array_len(lua_State *L, int idx, const char *fn, const char *what);
/* lua_gp_schedule.c: register the schedule metatable, push the gp.schedule function. */
void gp_lua_push_schedule(lua_State *L);

/* lua_gp_slots.c: check (tariff, from, to) at those stack indices (to may be absent) and
 * push tariff.slots(from, to), raising "<fn>: ..." unless it returns a table. */
void gp_lua_push_slots(lua_State *L, const char *fn, int tariff, int from, int to);
/* lua_gp.c: number field t[key] (metamethods honoured); NAN when nil; raises "<fn>:
 * <what>.<key> must be a number" for any other type. */
double gp_lua_num_field(lua_State *L, int t, const char *key, const char *fn, const char *what);

#endif
