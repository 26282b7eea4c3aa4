/*
 * The framework's shared state: one mutex guards the clock, the fault rules, the request log,
 * the statistics and the vendor's state. Owned by emu_main.c; borrowed by the server threads.
 */
#ifndef GP_EMU_CTX_H
#define GP_EMU_CTX_H

#include <pthread.h>

#include "emu.h"
#include "emu_clock.h"
#include "emu_faults.h"
#include "emu_log.h"
#include "emu_stats.h"

typedef struct emu_ctx {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* broadcast when stopping: ends latency and stall waits early */
    int stopping;
    emu_clock clock;
    emu_faults faults;
    emu_log log;
    emu_stats stats; /* one counter per route api, then "unknown" */
    const emu_vendor *vendor;
    void *vstate; /* owned; vendor->destroy */
} emu_ctx;

/* Set up everything around an already created vendor state (taken over). */
void emu_ctx_init(emu_ctx *c, const emu_vendor *v, void *vstate, int64_t anchor_ms, double speed,
                  size_t log_max);
void emu_ctx_free(emu_ctx *c);
/* Wait up to ms of real time, or until stopping. Call without the mutex held. */
void emu_ctx_sleep(emu_ctx *c, int64_t ms);
/* Mark stopping and wake every waiter. */
void emu_ctx_stop(emu_ctx *c);

#endif
