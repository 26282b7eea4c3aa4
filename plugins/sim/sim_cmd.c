/* One command on a simulated device: trace it, validate it, apply it at `now`, answer. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "sim.h"

#define H sim_host

static const char *kind_name(int kind)
{
    switch (kind) {
    case GP_CMD_SETPOINT:
        return "setpoint";
    case GP_CMD_DOD:
        return "dod";
    case GP_CMD_ONOFF:
        return "onoff";
    case GP_CMD_RELEASE:
        return "release";
    default:
        return "unknown";
    }
}

/* One line per command received, flushed so tests and tools can count sends as they go. */
static void trace(sim *s, const gp_cmd *c, const char *id, int64_t now)
{
    if (!s->trace) return;
    fprintf(s->trace, "%lld %s %s %.10g", (long long)now, id, kind_name(c->kind), c->value);
    if (!isnan(c->soc_target)) fprintf(s->trace, " soc_target=%.10g", c->soc_target);
    if (c->duration_s) fprintf(s->trace, " duration_s=%u", c->duration_s);
    fputc('\n', s->trace);
    fflush(s->trace);
}

/* Answer FAILED with a message; returns -1 so validators can `return refuse(...)`. */
static int refuse(sim_answer *a, int code, const char *fmt, ...) GP_PRINTF(3, 4);
static int refuse(sim_answer *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    a->status = GP_FAILED;
    a->code = code;
    return -1;
}

static int setpoint(sim *s, uint32_t i, const gp_cmd *c, int64_t now, sim_answer *a)
{
    sim_dev *d = &s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    const char *id = sim_dev_id(s, i);
    int battery = t->phys.capacity_wh > 0;
    if (!isfinite(c->value))
        return refuse(a, GP_E_REJECTED, "sim: %s: the setpoint must be a finite number of W", id);
    if (!battery && !isnan(c->soc_target))
        return refuse(a, GP_E_UNSUPPORTED, "sim: %s has no battery: soc_target is not supported",
                      id);
    if (!battery && c->value < 0)
        return refuse(a, GP_E_REJECTED,
                      "sim: %s has no battery: a setpoint caps PV output and must be >= 0 W "
                      "(got %g)",
                      id, c->value);
    if (!isnan(c->soc_target) && (c->soc_target < 0 || c->soc_target > 100))
        return refuse(a, GP_E_REJECTED, "sim: %s: soc_target %g is outside 0..100", id,
                      c->soc_target);
    if (!isnan(c->soc_target) && c->value == 0)
        return refuse(a, GP_E_REJECTED,
                      "sim: %s: a soc_target needs a non-zero setpoint (W < 0 charges, W > 0 "
                      "discharges)",
                      id);
    if (d->task) sim_task_close(s, i, now); /* replaced: the old task ends here */
    sim_phys_force(&t->phys, &d->ph, c->value, c->soc_target);
    d->until_ms = c->duration_s ? now + (int64_t)c->duration_s * 1000 : 0;
    if (s->async) {
        uint64_t n = H->next_request_id(s->h);
        if (n == 0) n = H->next_request_id(s->h); /* "sim-0" would read as "no task" */
        d->task = n;
        d->task_start_ms = now;
        d->task_deadline_ms = now + s->task_time_ms;
        a->status = GP_PENDING;
        a->ref = n;
    }
    if (sim_target_reached(s, i)) sim_end_forced(s, i, now);
    return 0;
}

static int dod(sim *s, uint32_t i, const gp_cmd *c, sim_answer *a)
{
    const sim_tmpl *t = sim_tmpl_of(s, i);
    const char *id = sim_dev_id(s, i);
    if (t->phys.capacity_wh <= 0)
        return refuse(a, GP_E_UNSUPPORTED, "sim: %s has no battery: dod is not supported", id);
    if (!isfinite(c->value) || c->value < 0 || c->value > 100)
        return refuse(a, GP_E_REJECTED, "sim: %s: dod %g is outside 0..100", id, c->value);
    double smin = 100 - c->value;
    if (smin > t->phys.soc_max_pct)
        return refuse(a, GP_E_REJECTED,
                      "sim: %s: dod %g would put soc_min_pct (%g) above soc_max_pct (%g)", id,
                      c->value, smin, t->phys.soc_max_pct);
    s->dev[i].ph.soc_min_pct = smin;
    return 0;
}

void sim_cmd_apply(sim *s, const gp_cmd *c, int64_t now, sim_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->id = c->id;
    a->status = GP_DONE;
    uint32_t i = c->target.local;
    if (i >= s->n_dev) {
        trace(s, c, "?", now);
        refuse(a, GP_E_REJECTED, "sim: no device with local index %u", i);
        return;
    }
    const char *id = sim_dev_id(s, i);
    trace(s, c, id, now);
    const char *vid = c->target.vendor_id;
    if (vid && *vid && strcmp(vid, id) != 0) {
        refuse(a, GP_E_REJECTED, "sim: target \"%s\" is not the device at local index %u", vid, i);
        return;
    }
    if (s->dev[i].fail) {
        refuse(a, GP_E_REJECTED, "sim: device refused the command (configured to fail)");
        return;
    }
    sim_advance(s, i, now);
    sim_dev *d = &s->dev[i];
    switch (c->kind) {
    case GP_CMD_SETPOINT:
        setpoint(s, i, c, now, a);
        break;
    case GP_CMD_DOD:
        dod(s, i, c, a);
        break;
    case GP_CMD_ONOFF:
        if (c->value != 0 && c->value != 1)
            refuse(a, GP_E_REJECTED, "sim: %s: on/off must be 1 (on) or 0 (off), got %g", id,
                   c->value);
        else
            d->ph.on = c->value == 1;
        break;
    case GP_CMD_RELEASE:
        if (d->ph.mode == SIM_FORCED) sim_end_forced(s, i, now);
        break;
    default:
        refuse(a, GP_E_UNSUPPORTED, "sim: unknown command kind %d", (int)c->kind);
        break;
    }
    if (a->status != GP_FAILED) sim_persist_device(s, i);
}
