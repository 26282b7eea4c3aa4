/* The framework's shared state and the interruptible wait used by latency and stall faults. */
#include "emu_ctx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void emu_ctx_init(emu_ctx *c, const emu_vendor *v, void *vstate, int64_t anchor_ms, double speed,
                  size_t log_max)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &ca);
    pthread_condattr_destroy(&ca);
    emu_clock_init(&c->clock, anchor_ms, speed);
    emu_log_init(&c->log, log_max);
    const char **apis = gp_xcalloc(v->n_routes + 1, sizeof(char *));
    for (size_t i = 0; i < v->n_routes; i++)
        apis[i] = v->routes[i].api;
    apis[v->n_routes] = "unknown";
    emu_stats_init(&c->stats, apis, v->n_routes + 1);
    free(apis);
    c->vendor = v;
    c->vstate = vstate;
}

void emu_ctx_free(emu_ctx *c)
{
    if (c->vendor && c->vstate) c->vendor->destroy(c->vstate);
    emu_faults_free(&c->faults);
    emu_log_free(&c->log);
    emu_stats_free(&c->stats);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof(*c));
}

void emu_ctx_sleep(emu_ctx *c, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && pthread_cond_timedwait(&c->wake, &c->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&c->mu);
}

void emu_ctx_stop(emu_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
}
