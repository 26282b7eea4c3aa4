/* `gridpilot run`. */
#ifndef GP_DAEMON_H
#define GP_DAEMON_H

#include <stddef.h>
#include <stdint.h>

typedef struct gp_run_opts {
    const char *config; /* path of the config file; borrowed */
    int dry_run;        /* journal and print commands, never send them */
    int once;           /* one tick, wait for answers, exit (no on_exit) */
    int64_t for_ms;     /* > 0: stop after this long, as on SIGTERM */
    /* simulate */
    const char *state_dir; /* journal folder instead of the config's; borrowed; NULL */
    int no_strategy;       /* run without the strategy (the baseline) */
    int virt;              /* set by gp_rt_open_virtual */
    int64_t step_ms;       /* the driver's step (telemetry staleness) */
} gp_run_opts;

/* Run until stopped; returns the process exit status (0, 1 runtime failure, 2 config). */
int gp_daemon_run(const gp_run_opts *o);

/*
 * The same runtime driven step by step on the virtual clock (simulate): no tick, poll or
 * sweep timers; the driver reads, ticks and advances the clock itself. The clock must be
 * virtual (gp_clock_set_virtual) before gp_rt_open_virtual.
 */
struct gp_rt;
struct gp_config;
struct gp_fleet;
struct gp_tariff;
struct gp_metric;
/* cfg is taken (freed with the runtime, or on failure). NULL with *code (1 or 2) set and the
 * reason printed. */
struct gp_rt *gp_rt_open_virtual(struct gp_config *cfg, const gp_run_opts *o, int *code);
/* Discover every adapter and read it once; 0 when every adapter is ready. */
int gp_rt_start_virtual(struct gp_rt *rt);
/* Read every adapter at the current virtual time and apply the answers. */
void gp_rt_step_read(struct gp_rt *rt);
/* Run the strategy at `now` and dispatch; apply the answers. Returns the exit code so far
 * (non-zero: the journal failed). */
int gp_rt_step_tick(struct gp_rt *rt, int64_t now);
struct gp_fleet *gp_rt_fleet_of(struct gp_rt *rt);            /* borrowed */
const struct gp_tariff *gp_rt_tariff(const struct gp_rt *rt); /* borrowed; may be NULL */
int gp_rt_has_strategy(const struct gp_rt *rt);
uint64_t gp_rt_strategy_failures(const struct gp_rt *rt); /* ticks whose strategy failed */
/* The gp.metric figures of the last tick (none if it failed); borrowed until the next tick. */
const struct gp_metric *gp_rt_metrics(const struct gp_rt *rt, size_t *n);
void gp_rt_close(struct gp_rt *rt); /* NULL is ignored */

#endif
