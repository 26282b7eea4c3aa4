/*
 * The sim plugin's devices under the physics of sim_physics.c: a device is integrated lazily
 * from its last update to now; what the plugin adds is when forced mode ends by time (a
 * duration or its async task's deadline), closing the task, and persisting the change.
 */
#include <math.h>

#include "sim.h"

#define H sim_host

#define MAX_CATCHUP_MS (400LL * 86400000LL)

int sim_target_reached(const sim *s, uint32_t i)
{
    return sim_phys_target_reached(&sim_tmpl_of(s, i)->phys, &s->dev[i].ph);
}

void sim_end_forced(sim *s, uint32_t i, int64_t at_ms)
{
    sim_dev *d = &s->dev[i];
    sim_phys_release(&d->ph);
    d->until_ms = 0;
    if (d->task) sim_task_close(s, i, at_ms);
    d->dirty = 1;
}

/* When forced mode ends by time (duration or the task's time), 0 for never. */
static int64_t forced_end(const sim_dev *d)
{
    int64_t end = d->until_ms;
    if (d->task && (end == 0 || d->task_deadline_ms < end)) end = d->task_deadline_ms;
    return end;
}

void sim_advance(sim *s, uint32_t i, int64_t now)
{
    sim_dev *d = &s->dev[i];
    if (d->last_ms == SIM_NOT_STARTED) {
        d->last_ms = now;
        return;
    }
    if (now <= d->last_ms) return;
    if (now - d->last_ms > MAX_CATCHUP_MS) {
        H->log(s->h, GP_LOG_WARN, "sim: %s was last simulated %lld days ago; simulating 400",
               sim_dev_id(s, i), (long long)((now - d->last_ms) / 86400000));
        d->last_ms = now - MAX_CATCHUP_MS;
    }
    s->changed = 1;
    int64_t end = d->ph.mode == SIM_FORCED ? forced_end(d) : 0;
    int64_t ended =
        sim_phys_advance(&s->world, &sim_tmpl_of(s, i)->phys, i, &d->ph, d->last_ms, now, end);
    d->last_ms = now;
    /* The physics is back in self mode already; close what the plugin keeps around it. */
    if (ended != SIM_PHYS_NO_END) sim_end_forced(s, i, ended);
    if (d->dirty) sim_persist_device(s, i);
}

void sim_instant(const sim *s, uint32_t i, int64_t now, sim_power *out)
{
    sim_phys_instant(&s->world, &sim_tmpl_of(s, i)->phys, i, &s->dev[i].ph, now, out);
}
