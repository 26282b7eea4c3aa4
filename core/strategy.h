/*
 * The strategy engine: one sandboxed Lua 5.4 state per loaded strategy file.
 *
 * Sandbox: the chunk runs with its own _ENV holding only safe libraries (no io, package,
 * debug, os.execute/remove/rename/exit/getenv, no binary chunks); an instruction-count hook
 * enforces a wall-clock deadline per call and a capped allocator bounds memory. Errors carry
 * a traceback. The ctx table is the contract's (CONTRACT.md, "Strategy API").
 */
#ifndef GP_STRATEGY_H
#define GP_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "intent.h"
#include "tariff.h"

typedef struct gp_strategy_opts {
    const char *file;        /* absolute path of the .lua file; borrowed */
    const char *params_json; /* strategy.params as JSON object text, or NULL; borrowed */
    int64_t timeout_ms;      /* per call (init, decide); default 200 */
    size_t memory_limit;     /* bytes the strategy may allocate beyond the fleet view;
                                default 64 MiB */
} gp_strategy_opts;

typedef struct gp_strategy gp_strategy;

/* Compile and run the chunk; it must return a table with a function `decide`. Returns NULL
 * with a one-line reason (file:line: message) in err. Owned by the caller. */
gp_strategy *gp_strategy_load(const gp_strategy_opts *o, char *err, size_t errlen);
void gp_strategy_free(gp_strategy *s);

typedef struct gp_tick_in {
    int64_t now_ms;
    double tick_s;
    int dry_run;
    gp_fleet *fleet;         /* borrowed; read only by the engine */
    const gp_tariff *tariff; /* borrowed; may be NULL */
} gp_tick_in;

/* A figure the strategy reported with gp.metric(name, value) during one tick. */
#define GP_METRIC_NAME_MAX 48 /* bytes of a name, NUL included */
#define GP_METRICS_MAX     32 /* distinct names per tick */
typedef struct gp_metric {
    char name[GP_METRIC_NAME_MAX]; /* [A-Za-z0-9_.]+ */
    double value;                  /* finite */
} gp_metric;

/* The commands one tick returned. Owned by the strategy; valid until the next tick or free.
 */
typedef struct gp_tick_out {
    gp_intent *intents;
    size_t n;
    double elapsed_ms;        /* time spent in Lua, ctx building included */
    const gp_metric *metrics; /* gp.metric figures of this tick (last value per name); none
                                 when the tick failed */
    size_t n_metrics;
} gp_tick_out;

/* Run init(ctx) (first call after load only) and decide(ctx). Returns 0 with the parsed
 * commands, or -1 with the error and traceback in err (nothing is to be dispatched). */
int gp_strategy_tick(gp_strategy *s, const gp_tick_in *in, gp_tick_out *out, char *err,
                     size_t errlen);

/* Bytes currently allocated by the Lua state. */
size_t gp_strategy_mem(const gp_strategy *s);

#endif
