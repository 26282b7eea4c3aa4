/* Dispatch: intents -> journaled commands -> adapters -> results. See dispatch.h. */
#include "dispatch.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "log.h"
#include "str.h"
#include "timeutil.h"

/* Setpoints closer than this are the same command: strategies compute floats, and a
 * vendor cannot tell half a watt apart anyway. */
#define SAME_W   0.5
#define SAME_PCT 0.05
/* The longest duration a command may ask for (31 days). */
#define MAX_DURATION_S (31u * 86400u)

enum phase {
    PH_SENT = 0, /* handed to the adapter, waiting for command_result */
    PH_RETRY,    /* failed retryably; resent at next_ms */
    PH_LOGIN,    /* failed with GP_E_AUTH; resent once the adapter logged in */
    PH_PENDING,  /* vendor task running; polled at next_ms */
};

/* A command that still needs the dispatcher's attention. */
typedef struct live {
    uint64_t id;
    uint32_t dev;
    uint8_t slot, phase, auth_replayed, polling;
    uint32_t attempts;
    int64_t since_ms;   /* sent at / poll started at */
    int64_t pending_ms; /* when the vendor task started (PH_PENDING) */
    int64_t next_ms;    /* retry or next poll */
    gp_cmdval cmd;
    gp_slot prev; /* the slot before this command took it (restored if it fails) */
    char *vendor_ref;
} live;

/* A pending change to one device slot, undone if the journal cannot commit. */
typedef struct undo {
    uint32_t dev;
    uint8_t slot;
    gp_slot before;
} undo;

typedef struct outbox {
    gp_cmd *cmds;
    size_t n, cap;
} outbox;

struct gp_dispatch {
    gp_fleet *fleet;
    gp_journal *journal;
    gp_dispatch_opts o;
    gp_dispatch_io io;
    live *lives;
    size_t n_lives, cap_lives;
    gp_idmap index; /* journal id -> lives[] */
    outbox *out;    /* per adapter */
    size_t n_out;
    uint8_t *logging_in; /* per adapter */
    size_t n_expiring;   /* slots with expires_ms set (skip the scan when 0) */
    int depth;           /* nesting of enter()/leave(): the outermost batch commits */
    int commit_failed;   /* the last outermost commit failed */
    int begin_failed;    /* the journal could not open the batch's transaction */
    size_t n_failures;   /* commands that ended failed or timeout in this process */
    int odd_results;     /* results for ids not waiting for one (warned about a few times) */
    undo *undo;          /* slot changes of the open batch, undone if its commit fails */
    size_t n_undo, cap_undo;
    uint64_t *created; /* live records added in the open batch */
    size_t n_created, cap_created;
    int quiet_now; /* this submit is large: per-command lines at debug only */
    gp_idmap last; /* submit: (device, slot) -> index of its last command */
    uint64_t rng;
};

/* ---- small helpers ------------------------------------------------------------------ */

static const char *who(gp_dispatch *d, uint32_t dev)
{
    return gp_fleet_id(d->fleet, dev);
}

static void describe(const gp_cmdval *c, char *buf, size_t len)
{
    char dur[32] = "";
    switch (c->kind) {
    case GP_CMD_SETPOINT:
        if (c->duration_s) {
            gp_format_duration((int64_t)c->duration_s * 1000, dur, sizeof dur);
        }
        if (isfinite(c->soc_target))
            snprintf(buf, len, "setpoint %.0f W (%s) until SoC %.1f%%", c->value,
                     c->value < 0   ? "charge"
                     : c->value > 0 ? "discharge"
                                    : "idle",
                     c->soc_target);
        else
            snprintf(buf, len, "setpoint %.0f W (%s)%s%s", c->value,
                     c->value < 0   ? "charge"
                     : c->value > 0 ? "discharge"
                                    : "idle",
                     *dur ? " for " : "", dur);
        break;
    case GP_CMD_DOD:
        snprintf(buf, len, "dod %.1f%%", c->value);
        break;
    case GP_CMD_ONOFF:
        snprintf(buf, len, "%s", c->value != 0 ? "on" : "off");
        break;
    case GP_CMD_RELEASE:
        snprintf(buf, len, "release");
        break;
    default:
        snprintf(buf, len, "?");
    }
}

static int same_cmd(const gp_cmdval *a, const gp_cmdval *b)
{
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case GP_CMD_SETPOINT:
        if (fabs(a->value - b->value) > SAME_W) return 0;
        if (isfinite(a->soc_target) != isfinite(b->soc_target)) return 0;
        return !isfinite(a->soc_target) || fabs(a->soc_target - b->soc_target) <= SAME_PCT;
    case GP_CMD_DOD:
        return fabs(a->value - b->value) <= SAME_PCT;
    case GP_CMD_ONOFF:
        return (a->value != 0) == (b->value != 0);
    default:
        return 1;
    }
}

/* Is the slot's command still running or still waiting for an answer? */
static int slot_busy(const gp_slot *s)
{
    return s->id &&
           (s->state == GP_JS_SENT || s->state == GP_JS_PENDING || s->state == GP_JS_QUEUED);
}

/* Does the slot hold a command whose effect is in force (or about to be)? */
static int slot_in_force(const gp_slot *s, int slot_kind)
{
    if (!s->id) return 0;
    switch (s->state) {
    case GP_JS_QUEUED:
    case GP_JS_SENT:
    case GP_JS_ACCEPTED:
    case GP_JS_PENDING:
    case GP_JS_DRY_RUN:
        return 1;
    case GP_JS_DONE:
        return slot_kind != GP_SLOT_DISPATCH; /* a setting stays set */
    default:
        return 0;
    }
}

static void clear_slot(gp_dispatch *d, gp_slot *s)
{
    if (s->expires_ms && d->n_expiring) d->n_expiring--;
    uint64_t qid = s->queued_id;
    gp_cmdval q = s->queued;
    memset(s, 0, sizeof *s);
    s->cmd.soc_target = NAN;
    s->queued_id = qid;
    s->queued = q;
    if (!qid) s->queued.soc_target = NAN;
}

static void set_expiry(gp_dispatch *d, gp_slot *s, int64_t at)
{
    if (!s->expires_ms && at) d->n_expiring++;
    if (s->expires_ms && !at && d->n_expiring) d->n_expiring--;
    s->expires_ms = at;
}

static void remember(gp_dispatch *d, uint32_t dev, int slot)
{
    if (!d->depth) return;
    if (d->n_undo == d->cap_undo) {
        d->cap_undo = d->cap_undo ? d->cap_undo * 2 : 64;
        d->undo = gp_xrealloc(d->undo, d->cap_undo * sizeof(undo));
    }
    d->undo[d->n_undo++] = (undo){dev, (uint8_t)slot, gp_fleet_dev(d->fleet, dev)->slot[slot]};
}

static double jitter(gp_dispatch *d)
{
    /* xorshift: retries of many devices should not hit a vendor in lockstep. */
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return 0.75 + 0.5 * (double)(d->rng % 1000) / 1000.0;
}

static int64_t backoff_ms(gp_dispatch *d, uint32_t attempts)
{
    double base = 1000.0 * (double)(1u << (attempts < 6 ? attempts : 6)); /* 2 s, 4 s, ... */
    if (base > 60000) base = 60000;
    return (int64_t)(base * jitter(d));
}

/* ---- live records --------------------------------------------------------------------- */

static live *live_find(gp_dispatch *d, uint64_t id)
{
    uint32_t i;
    return gp_idmap_get(&d->index, id, &i) ? &d->lives[i] : NULL;
}

static live *live_add(gp_dispatch *d, uint64_t id, uint32_t dev, int slot)
{
    if (d->n_lives == d->cap_lives) {
        d->cap_lives = d->cap_lives ? d->cap_lives * 2 : 64;
        d->lives = gp_xrealloc(d->lives, d->cap_lives * sizeof(live));
    }
    live *l = &d->lives[d->n_lives];
    memset(l, 0, sizeof *l);
    l->id = id;
    l->dev = dev;
    l->slot = (uint8_t)slot;
    l->prev.cmd.soc_target = NAN;
    l->prev.queued.soc_target = NAN;
    gp_idmap_put(&d->index, id, (uint32_t)d->n_lives);
    d->n_lives++;
    if (d->depth) {
        if (d->n_created == d->cap_created) {
            d->cap_created = d->cap_created ? d->cap_created * 2 : 64;
            d->created = gp_xrealloc(d->created, d->cap_created * sizeof(uint64_t));
        }
        d->created[d->n_created++] = id;
    }
    return l;
}

static void live_remove(gp_dispatch *d, live *l)
{
    size_t i = (size_t)(l - d->lives);
    gp_idmap_del(&d->index, l->id);
    free(l->vendor_ref);
    if (i != d->n_lives - 1) {
        d->lives[i] = d->lives[d->n_lives - 1];
        gp_idmap_put(&d->index, d->lives[i].id, (uint32_t)i);
    }
    d->n_lives--;
}

/* ---- sending -------------------------------------------------------------------------- */

static void outbox_push(gp_dispatch *d, const live *l)
{
    const gp_device *dev = gp_fleet_cdev(d->fleet, l->dev);
    outbox *o = &d->out[dev->adapter];
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->cmds = gp_xrealloc(o->cmds, o->cap * sizeof(gp_cmd));
    }
    o->cmds[o->n++] = (gp_cmd){
        .id = l->id,
        .target = {l->dev, dev->local, gp_fleet_vendor(d->fleet, l->dev)},
        .kind = (gp_cmd_kind)l->cmd.kind,
        .value = l->cmd.kind == GP_CMD_RELEASE ? 0 : l->cmd.value,
        .soc_target = l->cmd.soc_target,
        .duration_s = l->cmd.duration_s,
        .attempt = l->attempts,
    };
}

/* Hand every collected command to its adapter. Called at the end of each public entry
 * point, after the journal committed, so a command is on disk before it leaves. */
static void flush(gp_dispatch *d)
{
    for (size_t a = 0; a < d->n_out; a++) {
        outbox *o = &d->out[a];
        if (!o->n) continue;
        /* The adapter may answer synchronously and re-enter the dispatcher, which may push
         * new commands into this outbox: hand over a private copy. */
        size_t n = o->n;
        gp_cmd *cmds = gp_xmalloc(n * sizeof(gp_cmd));
        memcpy(cmds, o->cmds, n * sizeof(gp_cmd));
        o->n = 0;
        d->io.send(d->io.ud, (unsigned)a, cmds, n);
        free(cmds);
    }
}

/* Every public entry point runs between enter() and leave(). The journal writes of the
 * outermost batch commit together, and commands go out only after that commit: a command
 * is on disk before it leaves (write-ahead). If the commit fails, nothing goes out and the
 * batch's slot changes and new records are undone. */
static void enter(gp_dispatch *d)
{
    if (d->depth++ == 0) {
        d->begin_failed = gp_journal_begin(d->journal) != 0;
        d->n_undo = d->n_created = 0;
    }
}

static void leave(gp_dispatch *d)
{
    if (--d->depth > 0) return;
    d->commit_failed = gp_journal_commit(d->journal) != 0 || d->begin_failed;
    if (d->commit_failed) {
        size_t dropped = 0;
        for (size_t a = 0; a < d->n_out; a++) {
            dropped += d->out[a].n;
            d->out[a].n = 0;
        }
        gp_err("dispatch", "journal commit failed, %zu command(s) not sent: %s", dropped,
               gp_journal_error(d->journal));
        for (size_t i = 0; i < d->n_created; i++) {
            live *l = live_find(d, d->created[i]);
            if (l) live_remove(d, l);
        }
        for (size_t u = d->n_undo; u-- > 0;) {
            gp_slot *s = &gp_fleet_dev(d->fleet, d->undo[u].dev)->slot[d->undo[u].slot];
            if (s->expires_ms && d->n_expiring) d->n_expiring--;
            *s = d->undo[u].before;
            if (s->expires_ms) d->n_expiring++;
        }
    }
    d->n_undo = d->n_created = 0;
    if (!d->commit_failed) {
        flush(d);
    } else if (d->io.fatal) {
        /* The journal is the source of truth: without it nothing can be followed safely.
         * Stop; a restart resumes from what was committed. */
        d->io.fatal(d->io.ud, gp_journal_error(d->journal));
    }
}

void gp_dispatch_batch_begin(gp_dispatch *d)
{
    enter(d);
}

void gp_dispatch_batch_end(gp_dispatch *d)
{
    leave(d);
}

static void log_cmd(gp_dispatch *d, uint32_t dev, uint64_t id, const gp_cmdval *c, const char *what)
{
    char desc[160];
    describe(c, desc, sizeof desc);
    gp_log(d->o.quiet || d->quiet_now ? GP_LOG_DEBUG : GP_LOG_INFO, "dispatch",
           "%s: %s -> %s (#%llu)", who(d, dev), desc, what, (unsigned long long)id);
}

/* Make `l` the slot's command in flight and queue it for sending. */
static void start_send(gp_dispatch *d, live *l, int64_t now)
{
    gp_device *dev = gp_fleet_dev(d->fleet, l->dev);
    gp_slot *s = &dev->slot[l->slot];
    l->phase = PH_SENT;
    l->since_ms = now;
    l->attempts++;
    gp_journal_set_attempts(d->journal, l->id, l->attempts);
    char note[64];
    snprintf(note, sizeof note, "attempt %u", l->attempts);
    gp_journal_transition(d->journal, l->id, GP_JS_SENT, now, note);
    if (s->id == l->id) {
        s->state = GP_JS_SENT;
        s->since_ms = now;
    }
    outbox_push(d, l);
}

/* Take over slot s with a new command id (the previous holder is kept in l->prev). */
static void take_slot(gp_dispatch *d, live *l, gp_slot *s, int64_t now)
{
    l->prev = *s;
    l->prev.queued_id = 0;
    uint64_t qid = s->queued_id;
    gp_cmdval q = s->queued;
    if (s->expires_ms) set_expiry(d, s, 0);
    s->id = l->id;
    s->state = GP_JS_QUEUED;
    s->cmd = l->cmd;
    s->since_ms = now;
    s->queued_id = qid;
    s->queued = q;
}

/* ---- validation ----------------------------------------------------------------------- */

typedef struct accepted {
    uint32_t dev;
    int slot;
    gp_cmdval cmd;
    size_t intent; /* index into the submitted list */
} accepted;

static void say(gp_submit_result *r, int outcome, const char *fmt, ...) GP_PRINTF(3, 4);
static void say(gp_submit_result *r, int outcome, const char *fmt, ...)
{
    if (!r) return;
    r->outcome = outcome;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

/* Check one intent; on success fill *out and return 1 (with a clamp note in r). */
static int validate(gp_dispatch *d, const gp_intent *in, const char *origin, size_t idx,
                    accepted *out, gp_submit_result *r, int *clamped)
{
    char where[96];
    snprintf(where, sizeof where, "%s command %zu", origin, idx + 1);
    if (in->error) {
        /* The parser's message already says which command ("command 3: ..."). */
        gp_warn("dispatch", "%s %s", origin, in->error);
        say(r, GP_SUBMIT_INVALID, "%s", in->error);
        return 0;
    }
    if (!in->device) {
        gp_warn("dispatch", "%s: missing device", where);
        say(r, GP_SUBMIT_INVALID, "missing device");
        return 0;
    }
    int64_t idx_dev = gp_fleet_find(d->fleet, in->device);
    if (idx_dev < 0) {
        gp_warn("dispatch", "%s: unknown device '%s'", where, in->device);
        say(r, GP_SUBMIT_INVALID, "unknown device '%s'", in->device);
        return 0;
    }
    const gp_device *dev = gp_fleet_cdev(d->fleet, (size_t)idx_dev);
    uint32_t f = in->fields;
    int actions =
        !!(f & GP_IF_SETPOINT) + !!(f & GP_IF_DOD) + !!(f & GP_IF_ON) + !!(f & GP_IF_RELEASE);
    const char *bad = NULL;
    if (actions != 1)
        bad = "give exactly one of setpoint_w, dod, on and release";
    else if ((f & (GP_IF_DURATION | GP_IF_SOC_TARGET)) && !(f & GP_IF_SETPOINT))
        bad = "duration_s and soc_target go with setpoint_w";
    else if ((f & GP_IF_RELEASE) && !in->release)
        bad = "release must be true";
    if (bad) {
        gp_warn("dispatch", "%s (%s): %s", where, in->device, bad);
        say(r, GP_SUBMIT_INVALID, "%s", bad);
        return 0;
    }
    gp_cmdval c = {0, 0, NAN, 0};
    uint32_t need = 0;
    const char *capname = "";
    char note[200] = "";
    if (f & GP_IF_SETPOINT) {
        c.kind = GP_CMD_SETPOINT;
        c.value = in->setpoint_w;
        need = GP_CAP_SETPOINT;
        capname = "setpoint";
        if (!isfinite(c.value)) bad = "setpoint_w must be a finite number";
        if (f & GP_IF_DURATION) {
            if (!isfinite(in->duration_s) || in->duration_s < 0)
                bad = "duration_s must be a number >= 0";
            else if (in->duration_s > 0 && in->duration_s < 1)
                bad = "duration_s must be 0 (until replaced) or at least 1 second";
            else if (in->duration_s > MAX_DURATION_S)
                c.duration_s = MAX_DURATION_S; /* reported with the clamps below */
            else
                c.duration_s = (uint32_t)(in->duration_s + 0.5);
        }
        if (f & GP_IF_SOC_TARGET) {
            need |= GP_CAP_SOC_TARGET;
            capname = "soc_target";
            if (!isfinite(in->soc_target) || in->soc_target < 0 || in->soc_target > 100)
                bad = "soc_target must be between 0 and 100";
            else
                c.soc_target = in->soc_target;
        }
    } else if (f & GP_IF_DOD) {
        c.kind = GP_CMD_DOD;
        c.value = in->dod;
        need = GP_CAP_DOD;
        capname = "dod";
        if (!isfinite(c.value) || c.value < 0 || c.value > 100)
            bad = "dod must be between 0 and 100";
    } else if (f & GP_IF_ON) {
        c.kind = GP_CMD_ONOFF;
        c.value = in->on ? 1 : 0;
        need = GP_CAP_ONOFF;
        capname = "onoff";
    } else {
        c.kind = GP_CMD_RELEASE;
        c.value = NAN;
        need = GP_CAP_SETPOINT;
        capname = "setpoint";
    }
    if (!bad && (dev->caps & need) != need) {
        snprintf(note, sizeof note, "device has no %s capability", capname);
        bad = note;
    }
    if (bad) {
        gp_warn("dispatch", "%s (%s): %s", where, in->device, bad);
        say(r, GP_SUBMIT_INVALID, "%s", bad);
        return 0;
    }
    /* Clamp to the device's limits. */
    note[0] = '\0';
    if (c.kind == GP_CMD_SETPOINT && (f & GP_IF_DURATION) && in->duration_s > MAX_DURATION_S)
        snprintf(note, sizeof note, "duration_s %.6g clamped to %u (31 days)", in->duration_s,
                 MAX_DURATION_S);
    if (c.kind == GP_CMD_SETPOINT) {
        double lo = isfinite(dev->max_charge_w) ? -dev->max_charge_w : -INFINITY;
        double hi = isfinite(dev->max_discharge_w) ? dev->max_discharge_w : INFINITY;
        /* Without a battery a setpoint caps PV output: at least 0, and not bounded by the
         * (zero) battery power limits. */
        if (isfinite(dev->capacity_wh) && dev->capacity_wh <= 0) {
            lo = 0;
            hi = INFINITY;
        }
        if (c.value < lo || c.value > hi) {
            double to = c.value < lo ? lo : hi;
            size_t at0 = strlen(note);
            snprintf(note + at0, sizeof note - at0, "%ssetpoint %.6g W clamped to %.0f W (%s)",
                     at0 ? "; " : "", c.value, to,
                     c.value < lo
                         ? (lo == 0 ? "a PV output cap cannot be negative" : "max_charge_w")
                         : "max_discharge_w");
            c.value = to;
        }
        if (isfinite(c.soc_target)) {
            double smin = isfinite(dev->soc_min_pct) ? dev->soc_min_pct : 0;
            double smax = isfinite(dev->soc_max_pct) ? dev->soc_max_pct : 100;
            if (c.soc_target < smin || c.soc_target > smax) {
                double to = c.soc_target < smin ? smin : smax;
                size_t at = strlen(note);
                snprintf(note + at, sizeof note - at, "%ssoc_target %.1f%% clamped to %.1f%%",
                         at ? "; " : "", c.soc_target, to);
                c.soc_target = to;
            }
        }
    }
    if (note[0]) {
        gp_warn("dispatch", "%s (%s): %s", where, in->device, note);
        if (r) snprintf(r->message, sizeof r->message, "%s", note);
        (*clamped)++;
    }
    out->dev = (uint32_t)idx_dev;
    out->slot = gp_slot_of((gp_cmd_kind)c.kind);
    out->cmd = c;
    return 1;
}

/* Scale charge (import) or discharge (export) setpoints so the site stays inside its
 * limits, as far as the current readings let us predict the effect. */
static void clamp_site(gp_dispatch *d, accepted *acc, size_t n, int *clamped)
{
    if (!isfinite(d->o.site_import_w) && !isfinite(d->o.site_export_w)) return;
    gp_site site;
    gp_fleet_site(d->fleet, &site);
    double grid = isfinite(site.grid_w) ? site.grid_w : 0, up = 0, down = 0;
    for (size_t i = 0; i < n; i++) {
        if (acc[i].cmd.kind != GP_CMD_SETPOINT) continue;
        const gp_device *dev = gp_fleet_cdev(d->fleet, acc[i].dev);
        double now_w = isfinite(dev->battery_w) ? dev->battery_w : 0;
        double delta = now_w - acc[i].cmd.value; /* + more import */
        if (delta > 0)
            up += delta;
        else
            down -= delta;
    }
    double projected = grid + up - down;
    for (int dir = 0; dir < 2; dir++) {
        double excess = dir == 0 ? projected - d->o.site_import_w : -projected - d->o.site_export_w;
        double total = dir == 0 ? up : down;
        if (!(excess > 0) || !(total > 0)) continue;
        double keep = excess >= total ? 0 : 1 - excess / total;
        for (size_t i = 0; i < n; i++) {
            if (acc[i].cmd.kind != GP_CMD_SETPOINT) continue;
            const gp_device *dev = gp_fleet_cdev(d->fleet, acc[i].dev);
            double now_w = isfinite(dev->battery_w) ? dev->battery_w : 0;
            double delta = now_w - acc[i].cmd.value;
            if ((dir == 0 && delta > 0) || (dir == 1 && delta < 0)) {
                acc[i].cmd.value = now_w - delta * keep;
                (*clamped)++;
            }
        }
        gp_warn("dispatch", "site %s limit %.0f W: %s commands scaled to %.0f%% to stay inside it",
                dir == 0 ? "import" : "export", dir == 0 ? d->o.site_import_w : d->o.site_export_w,
                dir == 0 ? "charging" : "discharging", keep * 100);
    }
}

/* ---- submit --------------------------------------------------------------------------- */

static uint64_t journal_new(gp_dispatch *d, uint32_t dev, const gp_cmdval *c, gp_jstate state,
                            const char *origin, int64_t now)
{
    const gp_device *dv = gp_fleet_cdev(d->fleet, dev);
    gp_jrow row = {
        .device = gp_fleet_id(d->fleet, dev),
        .adapter = gp_fleet_adapter_id(d->fleet, dv->adapter),
        .kind = (gp_cmd_kind)c->kind,
        .value = c->value,
        .soc_target = c->soc_target,
        .duration_s = c->duration_s,
        .state = state,
        .energy_wh = NAN,
        .origin = origin,
    };
    uint64_t id = gp_journal_add(d->journal, &row, now);
    if (!id)
        gp_err("dispatch", "%s: cannot journal the command, not sending it: %s", who(d, dev),
               gp_journal_error(d->journal));
    return id;
}

static void cancel_queued(gp_dispatch *d, gp_slot *s, const char *why, int64_t now)
{
    if (!s->queued_id) return;
    gp_journal_transition(d->journal, s->queued_id, GP_JS_CANCELLED, now, why);
    s->queued_id = 0;
    memset(&s->queued, 0, sizeof s->queued);
    s->queued.soc_target = NAN;
}

/* Send a release ahead of the queued command, to stop the device's running task. */
static void stop_task(gp_dispatch *d, uint32_t devi, int64_t now)
{
    gp_slot *s = &gp_fleet_dev(d->fleet, devi)->slot[GP_SLOT_DISPATCH];
    gp_cmdval rel = {GP_CMD_RELEASE, NAN, NAN, 0};
    uint64_t id = journal_new(d, devi, &rel, GP_JS_QUEUED, "replace", now);
    if (!id) return; /* the queued command simply waits for the task */
    live *l = live_add(d, id, devi, GP_SLOT_DISPATCH);
    l->cmd = rel;
    take_slot(d, l, s, now);
    start_send(d, l, now);
    log_cmd(d, devi, id, &rel, "sent to stop the running task for a newer command");
}

/* One validated command for one device slot. */
static int place(gp_dispatch *d, const accepted *a, const char *origin, int64_t now,
                 gp_submit_result *r)
{
    gp_device *dev = gp_fleet_dev(d->fleet, a->dev);
    gp_slot *s = &dev->slot[a->slot];
    const gp_cmdval *c = &a->cmd;
    uint32_t flags = d->io.flags ? d->io.flags(d->io.ud, dev->adapter) : 0;

    /* De-duplicate against what will be in force: the queued command if there is one. */
    if (s->queued_id && same_cmd(&s->queued, c)) {
        if (r) r->id = s->queued_id;
        return GP_SUBMIT_UNCHANGED;
    }
    if (c->kind == GP_CMD_RELEASE && !s->queued_id &&
        (!slot_in_force(s, a->slot) || s->cmd.kind == GP_CMD_RELEASE)) {
        if (r) r->id = s->id;
        return GP_SUBMIT_UNCHANGED; /* nothing to release */
    }
    /* A vendor that ends timed setpoints itself cannot be told "longer": re-asserting one
     * sends it again once half its time has run out, so it never lapses between ticks. */
    int refresh = c->duration_s && s->state == GP_JS_ACCEPTED && (flags & GP_PF_NATIVE_DURATION) &&
                  s->expires_ms && s->expires_ms - now < (int64_t)c->duration_s * 500;
    if (slot_in_force(s, a->slot) && same_cmd(&s->cmd, c) && !refresh) {
        remember(d, a->dev, a->slot);
        /* The strategy changed its mind back: what was queued is no longer wanted. */
        cancel_queued(d, s, "superseded: the command in force was asked for again", now);
        /* Re-asserting a timed setpoint extends it when the core keeps the time. */
        if (c->duration_s && s->state == GP_JS_ACCEPTED && !(flags & GP_PF_NATIVE_DURATION))
            set_expiry(d, s, now + (int64_t)c->duration_s * 1000);
        if (r) r->id = s->id;
        return GP_SUBMIT_UNCHANGED;
    }

    remember(d, a->dev, a->slot);
    if (d->o.dry_run) {
        uint64_t id = journal_new(d, a->dev, c, GP_JS_DRY_RUN, origin, now);
        if (!id) return GP_SUBMIT_FAILED;
        if (r) r->id = id;
        if (c->kind == GP_CMD_RELEASE && a->slot == GP_SLOT_DISPATCH) {
            clear_slot(d, s);
        } else {
            if (s->expires_ms) set_expiry(d, s, 0);
            s->id = id;
            s->state = GP_JS_DRY_RUN;
            s->cmd = *c;
            s->since_ms = now;
            if (c->duration_s) set_expiry(d, s, now + (int64_t)c->duration_s * 1000);
        }
        log_cmd(d, a->dev, id, c, "dry run, not sent");
        return GP_SUBMIT_DRY_RUN;
    }

    uint64_t id = journal_new(d, a->dev, c, GP_JS_QUEUED, origin, now);
    if (!id) return GP_SUBMIT_FAILED;
    if (r) r->id = id;
    int preempt = c->kind == GP_CMD_RELEASE && s->state == GP_JS_PENDING;
    if (slot_busy(s) && !preempt) {
        char why[64];
        snprintf(why, sizeof why, "superseded by #%llu", (unsigned long long)id);
        cancel_queued(d, s, why, now);
        s->queued_id = id;
        s->queued = *c;
        log_cmd(d, a->dev, id, c, "queued behind the running command");
        /* busy = "replace": stop the running vendor task; the new command follows once the
         * stop is confirmed (ADR 3). */
        if (s->state == GP_JS_PENDING && a->slot == GP_SLOT_DISPATCH && d->io.replace_busy &&
            d->io.replace_busy(d->io.ud, dev->adapter))
            stop_task(d, a->dev, now);
        return GP_SUBMIT_QUEUED;
    }
    cancel_queued(d, s, "superseded by a newer command", now);
    live *l = live_add(d, id, a->dev, a->slot);
    l->cmd = *c;
    take_slot(d, l, s, now);
    start_send(d, l, now);
    log_cmd(d, a->dev, id, c, "sent");
    return GP_SUBMIT_SENT;
}

size_t gp_dispatch_submit(gp_dispatch *d, const gp_intent *in, size_t n, const char *origin,
                          int64_t now_ms, gp_submit_result *res, gp_submit_stats *stats)
{
    gp_submit_stats st = {0};
    accepted *acc = gp_xmalloc((n ? n : 1) * sizeof(accepted));
    size_t n_acc = 0;
    int clamped = 0;
    if (res) memset(res, 0, n * sizeof *res);
    for (size_t i = 0; i < n; i++) {
        if (validate(d, &in[i], origin, i, &acc[n_acc], res ? &res[i] : NULL, &clamped)) {
            acc[n_acc].intent = i;
            n_acc++;
        } else {
            st.invalid++;
        }
    }
    clamp_site(d, acc, n_acc, &clamped);
    st.clamped = (size_t)clamped;
    d->quiet_now = n_acc > 20;
    /* Several commands for one device slot in one submit: the last one wins. */
    for (size_t k = 0; k < n_acc; k++)
        gp_idmap_put(&d->last, (uint64_t)acc[k].dev * GP_SLOT_N + (uint64_t)acc[k].slot + 1,
                     (uint32_t)k);

    int outer = d->depth == 0;
    enter(d);
    size_t journaled = 0;
    for (size_t k = 0; k < n_acc; k++) {
        gp_submit_result *r = res ? &res[acc[k].intent] : NULL;
        /* Later commands for the same device slot in one submit win: skip earlier ones. */
        uint32_t last = 0;
        gp_idmap_get(&d->last, (uint64_t)acc[k].dev * GP_SLOT_N + (uint64_t)acc[k].slot + 1, &last);
        if (last != k) {
            if (r)
                say(r, GP_SUBMIT_UNCHANGED, "overridden by a later command for %s",
                    who(d, acc[k].dev));
            st.unchanged++;
            continue;
        }
        int outcome = place(d, &acc[k], origin, now_ms, r);
        if (r) r->outcome = outcome;
        switch (outcome) {
        case GP_SUBMIT_SENT:
            st.sent++;
            journaled++;
            break;
        case GP_SUBMIT_QUEUED:
            st.queued++;
            journaled++;
            break;
        case GP_SUBMIT_DRY_RUN:
            st.dry_run++;
            journaled++;
            break;
        case GP_SUBMIT_UNCHANGED:
            st.unchanged++;
            break;
        default:
            st.failed++;
        }
    }
    d->quiet_now = 0;
    gp_idmap_clear(&d->last);
    free(acc);
    leave(d);
    if (outer && d->commit_failed) {
        /* Nothing left that is not on disk; say so for each command. */
        if (res)
            for (size_t i = 0; i < n; i++)
                if (res[i].outcome == GP_SUBMIT_SENT || res[i].outcome == GP_SUBMIT_QUEUED ||
                    res[i].outcome == GP_SUBMIT_DRY_RUN)
                    say(&res[i], GP_SUBMIT_FAILED, "journal write failed");
        st.failed += journaled;
        st.sent = st.queued = st.dry_run = 0;
        journaled = 0;
    }
    if (stats) *stats = st;
    return journaled;
}

/* ---- completions ---------------------------------------------------------------------- */

/* The slot is free again: send its queued command, if any. */
static void run_queued(gp_dispatch *d, uint32_t devi, int slot, int64_t now)
{
    gp_slot *s = &gp_fleet_dev(d->fleet, devi)->slot[slot];
    if (!s->queued_id) return;
    /* A release does not wait for a running vendor task: it is how the task is stopped. */
    int preempt = s->queued.kind == GP_CMD_RELEASE && s->state == GP_JS_PENDING;
    if (slot_busy(s) && !preempt) return;
    uint64_t id = s->queued_id;
    gp_cmdval c = s->queued;
    s->queued_id = 0;
    memset(&s->queued, 0, sizeof s->queued);
    s->queued.soc_target = NAN;
    if (c.kind == GP_CMD_RELEASE && slot == GP_SLOT_DISPATCH && !slot_in_force(s, slot)) {
        gp_journal_transition(d->journal, id, GP_JS_CANCELLED, now,
                              "nothing left to release: the previous command ended");
        return;
    }
    live *l = live_add(d, id, devi, slot);
    l->cmd = c;
    take_slot(d, l, s, now);
    start_send(d, l, now);
    log_cmd(d, devi, id, &c, "sent (was queued)");
}

/* The previous holder of the slot is over now that `l` took effect. */
/* May move entries of d->lives: callers find `l` again by id afterwards. */
static void retire_prev(gp_dispatch *d, live *l, int64_t now)
{
    uint64_t prev = l->prev.id, id = l->id;
    uint8_t state = l->prev.state;
    int release = l->cmd.kind == GP_CMD_RELEASE;
    l->prev.id = 0;
    if (!prev) return;
    char why[64];
    if (state == GP_JS_PENDING && release) {
        snprintf(why, sizeof why, "stopped by release #%llu", (unsigned long long)id);
        gp_journal_transition(d->journal, prev, GP_JS_CANCELLED, now, why);
        live *p = live_find(d, prev);
        if (p) live_remove(d, p);
    } else if (state == GP_JS_ACCEPTED || state == GP_JS_PENDING) {
        snprintf(why, sizeof why, "superseded by #%llu", (unsigned long long)id);
        gp_journal_transition(d->journal, prev, GP_JS_DONE, now, why);
        /* A superseded task is not polled any more. */
        live *p = state == GP_JS_PENDING ? live_find(d, prev) : NULL;
        if (p) live_remove(d, p);
    }
}

/* The command failed for good: the slot goes back to what was in force before it. */
static void restore_prev(gp_dispatch *d, live *l)
{
    gp_slot *s = &gp_fleet_dev(d->fleet, l->dev)->slot[l->slot];
    if (s->id != l->id) return;
    uint64_t qid = s->queued_id;
    gp_cmdval q = s->queued;
    if (s->expires_ms && d->n_expiring) d->n_expiring--;
    *s = l->prev;
    if (s->expires_ms) d->n_expiring++;
    s->queued_id = qid;
    s->queued = q;
    /* A task that ended while this command was in flight is not in force any more. */
    if (s->id && s->state == GP_JS_PENDING && !live_find(d, s->id)) clear_slot(d, s);
}

static int64_t poll_interval(gp_dispatch *d, unsigned adapter)
{
    int64_t ms = d->io.task_poll_ms ? d->io.task_poll_ms(d->io.ud, adapter) : 0;
    return ms > 0 ? ms : 60000;
}

static void finish(gp_dispatch *d, live *l, gp_jstate state, const char *note, int64_t now,
                   int keep_slot)
{
    uint32_t dev = l->dev;
    int slot = l->slot;
    gp_slot *s = &gp_fleet_dev(d->fleet, dev)->slot[slot];
    gp_journal_transition(d->journal, l->id, state, now, note);
    if (s->id == l->id) {
        if (keep_slot) {
            s->state = (uint8_t)state;
            s->since_ms = now;
        } else {
            clear_slot(d, s);
        }
    }
    live_remove(d, l);
    run_queued(d, dev, slot, now);
}

/* The command ended without taking effect (failed, timed out): the slot goes back to what
 * was in force before it and a queued command may go. */
static void abandon(gp_dispatch *d, live *l, gp_jstate state, const char *why, int64_t now)
{
    uint32_t devi = l->dev;
    int slot = l->slot;
    gp_journal_transition(d->journal, l->id, state, now, why);
    d->n_failures++;
    gp_slot *s = &gp_fleet_dev(d->fleet, devi)->slot[slot];
    if (state == GP_JS_TIMEOUT && s->id == l->id && l->prev.state != GP_JS_PENDING) {
        /* No answer: the vendor may or may not have applied it. Nothing is known to be in
         * force, so the next decision is sent whatever it is. (A running task, by contrast,
         * keeps being polled and tells us itself.) */
        if (l->prev.id && l->prev.state == GP_JS_ACCEPTED) {
            char note[96];
            snprintf(note, sizeof note, "state unknown after #%llu got no answer",
                     (unsigned long long)l->id);
            gp_journal_transition(d->journal, l->prev.id, GP_JS_DONE, now, note);
        }
        clear_slot(d, s);
    } else {
        restore_prev(d, l);
    }
    live_remove(d, l);
    run_queued(d, devi, slot, now);
}

/* Ask adapter a to log in again (once at a time); gp_dispatch_login_done follows. */
static void start_login(gp_dispatch *d, unsigned a, int64_t now)
{
    if (!d->io.login || d->logging_in[a]) return;
    d->logging_in[a] = 1;
    gp_info("dispatch", "%s: authentication expired; logging in again",
            gp_fleet_adapter_id(d->fleet, a));
    if (d->io.login(d->io.ud, a) != 0) {
        d->logging_in[a] = 0;
        gp_dispatch_login_done(d, a, 0, "the plugin cannot log in", now);
    }
}

/* A plugin answered for a command that is not waiting for that answer: a late duplicate, or
 * a plugin bug. Worth a warning, but not one per command of a big batch. */
static void odd_result(gp_dispatch *d, uint64_t id, const char *what)
{
    int level = d->odd_results++ < 5 ? GP_LOG_WARN : GP_LOG_DEBUG;
    gp_log(level, "dispatch",
           "ignoring %s for command #%llu: not waiting for one (late or "
           "duplicate answer, or a plugin bug)",
           what, (unsigned long long)id);
}

void gp_dispatch_command_result(gp_dispatch *d, uint64_t id, const gp_result *r, int64_t now)
{
    live *l = live_find(d, id);
    if (!l || (l->phase != PH_SENT)) {
        odd_result(d, id, "a command result");
        return;
    }
    enter(d);
    gp_device *dev = gp_fleet_dev(d->fleet, l->dev);
    gp_slot *s = &dev->slot[l->slot];
    uint32_t flags = d->io.flags ? d->io.flags(d->io.ud, dev->adapter) : 0;
    const char *msg = r->message && *r->message ? r->message : NULL;
    if (r->status == GP_DONE) {
        retire_prev(d, l, now);
        l = live_find(d, id);
        if (l->cmd.kind == GP_CMD_SETPOINT) {
            gp_journal_transition(d->journal, id, GP_JS_ACCEPTED, now, msg);
            if (s->id == id) {
                s->state = GP_JS_ACCEPTED;
                s->since_ms = now;
                if (l->cmd.duration_s) set_expiry(d, s, now + (int64_t)l->cmd.duration_s * 1000);
            }
            log_cmd(d, l->dev, id, &l->cmd, "accepted");
            uint32_t devi = l->dev;
            int slot = l->slot;
            live_remove(d, l);
            run_queued(d, devi, slot, now);
        } else {
            log_cmd(d, l->dev, id, &l->cmd, "done");
            /* A release or a setting is complete once confirmed. A release leaves nothing
             * in force; a setting stays set (kept for de-duplication). */
            finish(d, l, GP_JS_DONE, msg, now,
                   !(l->cmd.kind == GP_CMD_RELEASE && l->slot == GP_SLOT_DISPATCH));
        }
    } else if (r->status == GP_PENDING && r->vendor_ref && *r->vendor_ref &&
               (flags & GP_PF_TASKS)) {
        retire_prev(d, l, now);
        l = live_find(d, id);
        gp_journal_transition(d->journal, id, GP_JS_ACCEPTED, now, NULL);
        gp_journal_set_vendor_ref(d->journal, id, r->vendor_ref);
        gp_journal_transition(d->journal, id, GP_JS_PENDING, now, r->vendor_ref);
        l->phase = PH_PENDING;
        l->pending_ms = now;
        l->vendor_ref = gp_xstrdup(r->vendor_ref);
        l->next_ms = now + poll_interval(d, dev->adapter);
        if (s->id == id) {
            s->state = GP_JS_PENDING;
            s->since_ms = now;
        }
        char what[160];
        snprintf(what, sizeof what, "pending as vendor task %s", r->vendor_ref);
        log_cmd(d, l->dev, id, &l->cmd, what);
        /* A release that waited for this answer can stop the task now; with busy = replace,
         * so can any newer command that waited. */
        uint32_t devi = l->dev;
        int lslot = l->slot;
        run_queued(d, devi, lslot, now);
        gp_slot *qs = &gp_fleet_dev(d->fleet, devi)->slot[lslot];
        if (qs->queued_id && qs->state == GP_JS_PENDING && lslot == GP_SLOT_DISPATCH &&
            d->io.replace_busy && d->io.replace_busy(d->io.ud, dev->adapter))
            stop_task(d, devi, now);
    } else {
        int code = r->code;
        char why[300];
        if (r->status == GP_PENDING)
            snprintf(why, sizeof why,
                     "plugin answered PENDING without a task reference or task support");
        else
            snprintf(why, sizeof why, "%s", msg ? msg : "failed (no message)");
        if (r->status == GP_FAILED && code == GP_E_AUTH && !l->auth_replayed && d->io.login) {
            l->auth_replayed = 1;
            l->phase = PH_LOGIN;
            start_login(d, dev->adapter, now);
            leave(d);
            return;
        }
        int retry = r->status == GP_FAILED &&
                    (r->retryable || code == GP_E_TRANSPORT || code == GP_E_RATE_LIMIT) &&
                    (int)l->attempts < d->o.max_attempts;
        if (retry) {
            int64_t wait = backoff_ms(d, l->attempts);
            if (code == GP_E_RATE_LIMIT && wait < 10000) wait = 10000;
            char note[400];
            snprintf(note, sizeof note, "attempt %u failed: %s; retrying in %.1f s", l->attempts,
                     why, (double)wait / 1000.0);
            gp_journal_transition(d->journal, id, GP_JS_QUEUED, now, note);
            l->phase = PH_RETRY;
            l->next_ms = now + wait;
            if (s->id == id) s->state = GP_JS_QUEUED;
            gp_warn("dispatch", "%s: #%llu %s", who(d, l->dev), (unsigned long long)id, note);
        } else {
            gp_warn("dispatch", "%s: #%llu failed: %s", who(d, l->dev), (unsigned long long)id,
                    why);
            abandon(d, l, GP_JS_FAILED, why, now);
        }
    }
    leave(d);
}

void gp_dispatch_task_result(gp_dispatch *d, uint64_t id, const gp_result *r, int64_t now)
{
    live *l = live_find(d, id);
    if (!l || l->phase != PH_PENDING) {
        odd_result(d, id, "a task result");
        return;
    }
    enter(d);
    l->polling = 0;
    if (isfinite(r->energy_wh) || r->detail)
        gp_journal_set_result(d->journal, id, r->energy_wh, r->detail);
    const gp_device *dev = gp_fleet_cdev(d->fleet, l->dev);
    const char *msg = r->message && *r->message ? r->message : NULL;
    char note[300];
    switch (r->status) {
    case GP_PENDING:
        l->next_ms = now + poll_interval(d, dev->adapter);
        break;
    case GP_DONE:
        log_cmd(d, l->dev, id, &l->cmd, "task done");
        finish(d, l, GP_JS_DONE, msg ? msg : "vendor task complete", now, 0);
        break;
    case GP_TIMEOUT:
        gp_warn("dispatch", "%s: task #%llu timed out at the vendor", who(d, l->dev),
                (unsigned long long)id);
        d->n_failures++;
        finish(d, l, GP_JS_TIMEOUT, msg ? msg : "the vendor timed the task out", now, 0);
        break;
    default:
        if (r->retryable || r->code == GP_E_TRANSPORT || r->code == GP_E_RATE_LIMIT ||
            r->code == GP_E_AUTH) {
            /* Polling failed, not the task: ask again next time (after a login if the
             * session expired). */
            l->next_ms = now + poll_interval(d, dev->adapter);
            gp_debug("dispatch", "%s: polling task #%llu failed: %s", who(d, l->dev),
                     (unsigned long long)id, msg ? msg : "?");
            if (r->code == GP_E_AUTH) start_login(d, dev->adapter, now);
        } else {
            snprintf(note, sizeof note, "%s", msg ? msg : "the vendor reports the task failed");
            gp_warn("dispatch", "%s: task #%llu failed: %s", who(d, l->dev), (unsigned long long)id,
                    note);
            d->n_failures++;
            finish(d, l, GP_JS_FAILED, note, now, 0);
        }
    }
    leave(d);
}

void gp_dispatch_login_done(gp_dispatch *d, unsigned adapter, int ok, const char *message,
                            int64_t now)
{
    if (adapter < d->n_out) d->logging_in[adapter] = 0;
    enter(d);
    for (size_t i = d->n_lives; i-- > 0;) {
        live *l = &d->lives[i];
        if (l->phase != PH_LOGIN || gp_fleet_cdev(d->fleet, l->dev)->adapter != adapter) continue;
        if (ok) {
            l->attempts--; /* a replay after login is the same attempt */
            start_send(d, l, now);
        } else {
            char why[300];
            snprintf(why, sizeof why, "login failed: %s", message ? message : "?");
            abandon(d, l, GP_JS_FAILED, why, now);
        }
    }
    leave(d);
}

/* ---- sweep ---------------------------------------------------------------------------- */

typedef struct poll_item {
    unsigned adapter;
    const char *ref;
    size_t live;
} poll_item;

static int cmp_poll(const void *a, const void *b)
{
    const poll_item *x = a, *y = b;
    if (x->adapter != y->adapter) return x->adapter < y->adapter ? -1 : 1;
    return strcmp(x->ref, y->ref);
}

static void poll_due(gp_dispatch *d, int64_t now)
{
    poll_item *items = NULL;
    size_t n = 0;
    for (size_t i = 0; i < d->n_lives; i++) {
        live *l = &d->lives[i];
        if (l->phase != PH_PENDING) continue;
        /* A poll whose answer never came is forgotten after the command timeout. */
        if (l->polling && now - l->since_ms > d->o.command_timeout_ms) l->polling = 0;
        if (l->polling || l->next_ms > now) continue;
        items = gp_xrealloc(items, (n + 1) * sizeof *items);
        items[n++] = (poll_item){gp_fleet_cdev(d->fleet, l->dev)->adapter, l->vendor_ref, i};
    }
    if (!n) return;
    qsort(items, n, sizeof *items, cmp_poll);
    /* Group by (adapter, vendor_ref): one task_poll per vendor task. Copy the tasks first,
     * since the plugin may answer synchronously and change d->lives. */
    gp_task *tasks = gp_xmalloc(n * sizeof(gp_task));
    char **refs = gp_xmalloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        live *l = &d->lives[items[i].live];
        const gp_device *dev = gp_fleet_cdev(d->fleet, l->dev);
        refs[i] = gp_xstrdup(l->vendor_ref);
        tasks[i] = (gp_task){l->id,
                             {l->dev, dev->local, gp_fleet_vendor(d->fleet, l->dev)},
                             refs[i],
                             (gp_cmd_kind)l->cmd.kind,
                             l->cmd.value};
        l->polling = 1;
        l->since_ms = now;
    }
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1;
             j < n && items[j].adapter == items[i].adapter && strcmp(refs[j], refs[i]) == 0; j++)
            ;
        d->io.poll(d->io.ud, items[i].adapter, tasks + i, j - i);
    }
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    free(tasks);
    free(items);
}

static void expire(gp_dispatch *d, int64_t now)
{
    if (!d->n_expiring) return;
    size_t count = gp_fleet_count(d->fleet);
    gp_intent *rel = NULL;
    size_t n_rel = 0;
    for (size_t i = 0; i < count; i++) {
        gp_device *dev = gp_fleet_dev(d->fleet, i);
        gp_slot *s = &dev->slot[GP_SLOT_DISPATCH];
        if (!s->expires_ms || s->expires_ms > now) continue;
        set_expiry(d, s, 0);
        uint32_t flags = d->io.flags ? d->io.flags(d->io.ud, dev->adapter) : 0;
        if (s->state == GP_JS_DRY_RUN) {
            clear_slot(d, s);
        } else if (s->state == GP_JS_ACCEPTED && (flags & GP_PF_NATIVE_DURATION)) {
            gp_journal_transition(d->journal, s->id, GP_JS_DONE, now, "duration elapsed");
            clear_slot(d, s);
            run_queued(d, (uint32_t)i, GP_SLOT_DISPATCH, now);
        } else if (s->state == GP_JS_ACCEPTED) {
            rel = gp_xrealloc(rel, (n_rel + 1) * sizeof *rel);
            rel[n_rel++] = (gp_intent){
                .device = gp_fleet_id(d->fleet, i), .fields = GP_IF_RELEASE, .release = 1};
        }
    }
    if (n_rel) {
        gp_info("dispatch", "%zu timed setpoint(s) ran out; releasing", n_rel);
        gp_dispatch_submit(d, rel, n_rel, "expiry", now, NULL, NULL);
    }
    free(rel);
}

void gp_dispatch_sweep(gp_dispatch *d, int64_t now)
{
    enter(d);
    for (size_t i = d->n_lives; i-- > 0;) {
        if (i >= d->n_lives) continue; /* removals below may shrink the array */
        live *l = &d->lives[i];
        unsigned ad = gp_fleet_cdev(d->fleet, l->dev)->adapter;
        if (l->phase == PH_SENT && now - l->since_ms > d->o.command_timeout_ms && d->io.waiting &&
            d->io.waiting(d->io.ud, ad)) {
            /* Still queued for the vendor's quota (or its answer is on the way): slow, not
             * lost. The timeout counts from when the adapter has nothing left to wait for. */
            l->since_ms = now;
        } else if (l->phase == PH_PENDING && now - l->pending_ms > d->o.max_task_age_ms) {
            char why[120], dur[32];
            gp_format_duration(d->o.max_task_age_ms, dur, sizeof dur);
            snprintf(why, sizeof why, "no final state from the vendor within %s", dur);
            gp_warn("dispatch", "%s: task #%llu %s", who(d, l->dev), (unsigned long long)l->id,
                    why);
            d->n_failures++;
            finish(d, l, GP_JS_TIMEOUT, why, now, 0);
        } else if (l->phase == PH_SENT && now - l->since_ms > d->o.command_timeout_ms) {
            char why[120], dur[32];
            gp_format_duration(d->o.command_timeout_ms, dur, sizeof dur);
            snprintf(why, sizeof why, "no answer from the adapter within %s", dur);
            gp_warn("dispatch", "%s: #%llu %s", who(d, l->dev), (unsigned long long)l->id, why);
            abandon(d, l, GP_JS_TIMEOUT, why, now);
        } else if (l->phase == PH_RETRY && l->next_ms <= now) {
            start_send(d, l, now);
        }
    }
    poll_due(d, now);
    expire(d, now);
    leave(d);
}

size_t gp_dispatch_release_all(gp_dispatch *d, int64_t now)
{
    size_t count = gp_fleet_count(d->fleet), n = 0;
    gp_intent *rel = NULL;
    for (size_t i = 0; i < count; i++) {
        const gp_device *dev = gp_fleet_cdev(d->fleet, i);
        const gp_slot *s = &dev->slot[GP_SLOT_DISPATCH];
        int forced = (s->id && s->cmd.kind == GP_CMD_SETPOINT &&
                      (s->state == GP_JS_SENT || s->state == GP_JS_ACCEPTED ||
                       s->state == GP_JS_PENDING || s->state == GP_JS_QUEUED)) ||
                     (s->queued_id && s->queued.kind == GP_CMD_SETPOINT);
        if (!forced || !(dev->caps & GP_CAP_SETPOINT)) continue;
        rel = gp_xrealloc(rel, (n + 1) * sizeof *rel);
        rel[n++] =
            (gp_intent){.device = gp_fleet_id(d->fleet, i), .fields = GP_IF_RELEASE, .release = 1};
    }
    if (n) gp_dispatch_submit(d, rel, n, "on_exit", now, NULL, NULL);
    free(rel);
    return n;
}

size_t gp_dispatch_unsettled(const gp_dispatch *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_lives; i++)
        if (d->lives[i].phase != PH_PENDING) n++;
    return n;
}

size_t gp_dispatch_pending_tasks(const gp_dispatch *d)
{
    return d->n_lives - gp_dispatch_unsettled(d);
}

int gp_dispatch_owner(const gp_dispatch *d, uint64_t id)
{
    uint32_t i;
    if (!gp_idmap_get(&d->index, id, &i)) return -1;
    return gp_fleet_cdev(d->fleet, d->lives[i].dev)->adapter;
}

size_t gp_dispatch_failures(const gp_dispatch *d)
{
    return d->n_failures;
}

/* ---- restore -------------------------------------------------------------------------- */

typedef struct saved_row {
    uint64_t id;
    char *device, *vendor_ref;
    gp_cmdval cmd;
    gp_jstate state;
    uint32_t attempts;
    int64_t updated_ms;
} saved_row;

typedef struct collect {
    const char *adapter;
    saved_row *rows;
    size_t n;
} collect;

static int collect_row(void *ud, const gp_jrow *row)
{
    collect *c = ud;
    if (!row->adapter || strcmp(row->adapter, c->adapter) != 0) return 0;
    c->rows = gp_xrealloc(c->rows, (c->n + 1) * sizeof(saved_row));
    c->rows[c->n++] = (saved_row){
        .id = row->id,
        .device = gp_xstrdup(row->device),
        .vendor_ref = gp_xstrdup(row->vendor_ref),
        .cmd = {(uint8_t)row->kind, row->value, row->soc_target, row->duration_s},
        .state = row->state,
        .attempts = row->attempts,
        .updated_ms = row->updated_ms,
    };
    return 0;
}

void gp_dispatch_restore(gp_dispatch *d, unsigned adapter, int64_t now)
{
    collect c = {gp_fleet_adapter_id(d->fleet, adapter), NULL, 0};
    if (gp_journal_each_active(d->journal, collect_row, &c) < 0) {
        gp_err("dispatch", "cannot read the journal to resume %s: %s", c.adapter,
               gp_journal_error(d->journal));
        return;
    }
    size_t resumed = 0, lost = 0;
    /* Queued commands older than this are not sent after a restart. */
    int64_t stale_ms = d->o.command_timeout_ms > 900000 ? d->o.command_timeout_ms : 900000;
    enter(d);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c.n; i++) {
            saved_row *r = &c.rows[i];
            int queued = r->state == GP_JS_QUEUED;
            if (queued != (pass == 1)) continue;
            int64_t di = gp_fleet_find(d->fleet, r->device);
            if (queued && d->o.dry_run) continue; /* a dry run sends nothing, not even these */
            if (r->state == GP_JS_SENT) {
                /* It left, and its answer was lost with the previous process. Sending it
                 * again could apply it twice; the strategy decides afresh instead. What was
                 * in force before it is unknown now. */
                gp_journal_transition(d->journal, r->id, GP_JS_TIMEOUT, now,
                                      "gridpilot stopped before the adapter answered; not "
                                      "re-sent");
                lost++;
                if (di >= 0) {
                    gp_slot *s = &gp_fleet_dev(d->fleet, (size_t)di)
                                      ->slot[gp_slot_of((gp_cmd_kind)r->cmd.kind)];
                    if (s->id && s->state == GP_JS_ACCEPTED) {
                        char note[96];
                        snprintf(note, sizeof note, "state unknown: #%llu was interrupted",
                                 (unsigned long long)r->id);
                        gp_journal_transition(d->journal, s->id, GP_JS_DONE, now, note);
                        clear_slot(d, s);
                    }
                }
                continue;
            }
            if (queued && now - r->updated_ms > stale_ms) {
                /* Decided long before this start: the world has moved on. */
                gp_journal_transition(d->journal, r->id, GP_JS_CANCELLED, now,
                                      "stale: decided before gridpilot stopped");
                continue;
            }
            if (di < 0) {
                gp_journal_transition(d->journal, r->id, queued ? GP_JS_CANCELLED : GP_JS_FAILED,
                                      now, "device no longer reported by its adapter");
                continue;
            }
            int slot = gp_slot_of((gp_cmd_kind)r->cmd.kind);
            gp_slot *s = &gp_fleet_dev(d->fleet, (size_t)di)->slot[slot];
            if (queued) {
                if (slot_busy(s)) {
                    char why[64];
                    snprintf(why, sizeof why, "superseded by #%llu", (unsigned long long)r->id);
                    cancel_queued(d, s, why, now);
                    s->queued_id = r->id;
                    s->queued = r->cmd;
                    run_queued(d, (uint32_t)di, slot, now); /* a release stops a task now */
                } else {
                    live *l = live_add(d, r->id, (uint32_t)di, slot);
                    l->cmd = r->cmd;
                    l->attempts = r->attempts;
                    take_slot(d, l, s, now);
                    start_send(d, l, now);
                }
                resumed++;
                continue;
            }
            if (s->id && s->state == GP_JS_ACCEPTED)
                gp_journal_transition(d->journal, s->id, GP_JS_DONE, now,
                                      "superseded (found on restart)");
            if (s->expires_ms) set_expiry(d, s, 0);
            s->id = r->id;
            s->state = (uint8_t)r->state;
            s->cmd = r->cmd;
            s->since_ms = r->updated_ms;
            if (r->state == GP_JS_ACCEPTED && r->cmd.duration_s)
                set_expiry(d, s, r->updated_ms + (int64_t)r->cmd.duration_s * 1000);
            if (r->state == GP_JS_PENDING) {
                live *l = live_add(d, r->id, (uint32_t)di, slot);
                l->cmd = r->cmd;
                l->attempts = r->attempts;
                l->phase = PH_PENDING;
                l->pending_ms = r->updated_ms;
                l->vendor_ref = gp_xstrdup(r->vendor_ref ? r->vendor_ref : "");
                l->next_ms = now; /* poll right away: it may have finished meanwhile */
            }
            resumed++;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        free(c.rows[i].device);
        free(c.rows[i].vendor_ref);
    }
    free(c.rows);
    if (resumed || lost)
        gp_info("dispatch", "%s: resumed %zu command(s) from the journal%s", c.adapter, resumed,
                lost ? "; some were interrupted before an answer (marked timeout)" : "");
    leave(d);
}

/* ---- life cycle ----------------------------------------------------------------------- */

gp_dispatch *gp_dispatch_new(gp_fleet *f, gp_journal *j, const gp_dispatch_opts *o,
                             const gp_dispatch_io *io)
{
    gp_dispatch *d = gp_xcalloc(1, sizeof *d);
    d->fleet = f;
    d->journal = j;
    d->o = *o;
    if (d->o.max_attempts < 1) d->o.max_attempts = 1;
    if (d->o.command_timeout_ms <= 0) d->o.command_timeout_ms = 120000;
    if (d->o.max_task_age_ms <= 0) d->o.max_task_age_ms = 48LL * 3600 * 1000;
    d->io = *io;
    d->n_out = gp_fleet_adapter_count(f);
    d->out = gp_xcalloc(d->n_out ? d->n_out : 1, sizeof(outbox));
    d->logging_in = gp_xcalloc(d->n_out ? d->n_out : 1, 1);
    d->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)gp_wall_ms();
    return d;
}

void gp_dispatch_free(gp_dispatch *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n_lives; i++)
        free(d->lives[i].vendor_ref);
    free(d->lives);
    gp_idmap_clear(&d->index);
    for (size_t a = 0; a < d->n_out; a++)
        free(d->out[a].cmds);
    free(d->out);
    free(d->logging_in);
    free(d->undo);
    free(d->created);
    gp_idmap_clear(&d->last);
    free(d);
}
