/*
 * The sim plugin's internal types, shared by its files. Nothing here is exported: the module
 * is built with -fvisibility=hidden and only gp_plugin_entry_v1 is visible.
 *
 * Memory: one instance owns flat arrays (templates, devices, one buffer of device ids, ended
 * tasks); a device costs one sim_dev and its id bytes, no allocation of its own.
 */
#ifndef GP_SIM_H
#define GP_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "gridpilot/plugin.h"
#include "sim_physics.h"

/* The host table handed to the entry; outlives every instance. */
extern const gp_host *sim_host;

#define SIM_NOT_STARTED INT64_MIN /* sim_dev.last_ms before the first advance */

/* One entry of config.devices. */
typedef struct sim_tmpl {
    char *id;                    /* owned */
    double soc_pct, soc_min_pct; /* initial state */
    sim_phys_params phys;        /* its profile's arrays are owned here */
} sim_tmpl;

/* One simulated device: its template, its physical state (on/off, mode, setpoint, stored
 * energy, SoC floor moved by dod, energy accounts; ph.forced_wh is the running task's energy)
 * and what the plugin adds around it (durations, tasks, persistence). */
typedef struct sim_dev {
    uint32_t tmpl;    /* index into sim.tmpl */
    uint32_t name;    /* offset of the NUL-terminated id in sim.names */
    uint8_t fail;     /* listed in config.fail */
    uint8_t dirty;    /* state changed by a command or a forced-mode end: persist it */
    uint8_t has_key;  /* a per-device kv record newer than the snapshot exists */
    int64_t until_ms; /* forced: end of duration_s; 0 for none */
    int64_t last_ms;  /* simulated up to here; SIM_NOT_STARTED before the first advance */
    uint64_t task;    /* number n of the running task "sim-n"; 0 for none */
    int64_t task_start_ms, task_deadline_ms;
    sim_phys_state ph;
} sim_dev;

/* A task that has ended, kept so polls (also after a restart) can still answer DONE. */
typedef struct sim_task {
    uint64_t n;
    uint32_t dev;
    int64_t start_ms, end_ms;
    int64_t reported_ms; /* when a poll first answered DONE; 0 before */
    double wh;
} sim_task;

typedef struct sim_pending sim_pending; /* a completion waiting for its latency timer */

typedef struct sim {
    gp_hctx *h;
    sim_tmpl *tmpl; /* owned, n_tmpl entries */
    size_t n_tmpl;
    sim_dev *dev; /* owned, n_dev entries */
    size_t n_dev;
    char *names;          /* owned; every device id, NUL-terminated, back to back */
    uint32_t *by_name;    /* owned; device indexes sorted by id */
    sim_phys_world world; /* the seed */
    int async;
    int64_t latency_ms, task_time_ms, snapshot_ms;
    FILE *trace; /* owned; NULL without trace_file */

    sim_task *ended; /* owned; sorted by n */
    size_t n_ended, cap_ended;

    int started;        /* the first operation ran (saved state checked against the clock) */
    int changed;        /* something moved since the last snapshot */
    int64_t snap_ms;    /* clock at the last snapshot (or at the first operation) */
    int64_t prune_ms;   /* clock at the last prune of ended tasks */
    sim_pending *queue; /* owned; completions waiting for their latency timer */
} sim;

static inline const char *sim_dev_id(const sim *s, uint32_t i)
{
    return s->names + s->dev[i].name;
}

static inline const sim_tmpl *sim_tmpl_of(const sim *s, uint32_t i)
{
    return &s->tmpl[s->dev[i].tmpl];
}

/* calloc that aborts on out-of-memory, like the host's allocators. Free with free(). */
void *sim_xcalloc(size_t n, size_t size);

/* sim_config.c: validate the config and build an instance with every device in its initial
 * state, or report each problem with config_error and return NULL. Owned by the caller
 * (sim_free). */
sim *sim_config_build(gp_hctx *h, const gp_json *config);
void sim_free(sim *s);
/* Device index by id, or -1. */
long sim_find_device(const sim *s, const char *id);
/* Put device i into its template's initial state (SoC, mode, counters, clock). */
void sim_dev_reset(sim *s, uint32_t i);

/* sim_model.c: the physics of sim_physics.c applied to the plugin's devices. */
/* Simulate device i from its last update up to now (nothing if now is not later). A state
 * change on the way (a forced period ending) is persisted before it returns. */
void sim_advance(sim *s, uint32_t i, int64_t now);
/* The powers of device i at `now` (after sim_advance to now). */
void sim_instant(const sim *s, uint32_t i, int64_t now, sim_power *out);
/* End forced dispatch on device i at at_ms (back to self mode), closing its task. */
void sim_end_forced(sim *s, uint32_t i, int64_t at_ms);
/* 1 if device i is in forced mode with a soc_target it has reached. */
int sim_target_reached(const sim *s, uint32_t i);

/* sim_task.c: ended tasks. */
void sim_task_close(sim *s, uint32_t i, int64_t end_ms);
/* The ended task n (memory first, then the kv record of an earlier process), or NULL. */
sim_task *sim_task_find(sim *s, uint64_t n);
/* Forget ended tasks 24 h after they ended, or 1 h after a poll answered DONE. */
void sim_task_prune(sim *s, int64_t now);
/* Parse "sim-<n>"; 0 when it is not one of ours. */
uint64_t sim_task_ref(const char *ref);

/* sim_persist.c: state in the host's kv store. */
void sim_persist_load(sim *s);
void sim_persist_device(sim *s, uint32_t i);
void sim_persist_task(sim *s, const sim_task *t);
void sim_persist_task_delete(sim *s, uint64_t n);
/* A snapshot of every device when snapshot_ms passed since the last one (or force). */
void sim_persist_snapshot(sim *s, int64_t now, int force);

/* sim_cmd.c: one command's outcome. */
typedef struct sim_answer {
    uint64_t id;
    gp_status status;
    int code;
    uint64_t ref; /* PENDING: task number */
    char msg[200];
} sim_answer;
void sim_cmd_apply(sim *s, const gp_cmd *c, int64_t now, sim_answer *out);

#endif
