/*
 * gridpilot's sim plugin: simulated home batteries with PV and load behind the plugin ABI,
 * for `simulate`, dry runs, demos and tests. This file holds the descriptor and the
 * operations; the physics, configuration, commands, tasks and persistence live beside it.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define H sim_host

const gp_host *sim_host;

/* ---- completions delayed by `latency` ------------------------------------------------- */

enum { P_READ, P_CMD, P_POLL };

/* A task poll copied out of the borrowed gp_task. */
typedef struct poll_item {
    uint64_t cmd_id;
    uint32_t local;
    char *ref; /* owned */
} poll_item;

struct sim_pending {
    sim_pending *next;
    sim *s;
    int kind;
    uint64_t op;
    size_t n;
    gp_target *targets;  /* P_READ, owned; vendor_id NULL */
    sim_answer *answers; /* P_CMD, owned */
    poll_item *polls;    /* P_POLL, owned */
};

static void pending_free(sim_pending *p)
{
    for (size_t k = 0; p->polls && k < p->n; k++)
        free(p->polls[k].ref);
    free(p->targets);
    free(p->answers);
    free(p->polls);
    free(p);
}

/* ---- per operation -------------------------------------------------------------------- */

/* At the first operation, check restored state against the clock: state saved "in the
 * future" means the clock was wound back (a new simulation over an old state_dir). */
static void begin(sim *s, int64_t now)
{
    if (s->started) return;
    s->started = 1;
    s->snap_ms = s->prune_ms = now;
    int future = 0;
    for (uint32_t i = 0; i < s->n_dev && !future; i++)
        future = s->dev[i].last_ms != SIM_NOT_STARTED && s->dev[i].last_ms > now;
    if (!future) return;
    H->log(s->h, GP_LOG_WARN,
           "sim: the saved state is later than the clock (time went back): starting afresh");
    for (uint32_t i = 0; i < s->n_dev; i++)
        sim_dev_reset(s, i);
    s->n_ended = 0;
}

static void end_op(sim *s, int64_t now)
{
    sim_persist_snapshot(s, now, 0);
    if (now - s->prune_ms >= 3600000) {
        sim_task_prune(s, now);
        s->prune_ms = now;
    }
}

static const char *mode_name(const sim_dev *d)
{
    return !d->ph.on ? "off" : d->ph.mode == SIM_FORCED ? "forced" : "self";
}

/* Append `"name":x` with x in fixed point to 1e-9 (trailing zeros dropped): the energy
 * counters of every device at every read; printf's %g was most of a simulation's read time.
 * Values beyond 9e9 (int64 range at 9 decimals) fall back to %.12g. Returns the new end. */
static char *put_num(char *p, const char *end, const char *name, double x)
{
    int n = snprintf(p, (size_t)(end - p), ",\"%s\":", name);
    if (n < 0 || n >= end - p) return p;
    p += n;
    if (!(fabs(x) < 9e9)) {
        n = snprintf(p, (size_t)(end - p), "%.12g", x);
        return n > 0 && n < end - p ? p + n : p;
    }
    if (end - p < 32) return p;
    if (x < 0) *p++ = '-';
    long long v = llround(fabs(x) * 1e9);
    long long ip = v / 1000000000LL, fp = v % 1000000000LL;
    char digits[24];
    int k = 0;
    do
        digits[k++] = (char)('0' + ip % 10);
    while ((ip /= 10) > 0);
    while (k)
        *p++ = digits[--k];
    if (fp) {
        *p++ = '.';
        char frac[9];
        for (int j = 8; j >= 0; j--, fp /= 10)
            frac[j] = (char)('0' + fp % 10);
        int last = 8;
        while (frac[last] == '0')
            last--;
        memcpy(p, frac, (size_t)last + 1);
        p += last + 1;
    }
    return p;
}

static void report(sim *s, uint32_t device, uint32_t i, int64_t now)
{
    const sim_dev *d = &s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    int battery = t->phys.capacity_wh > 0;
    sim_power pw;
    sim_instant(s, i, now, &pw);
    char task[40] = "null", text[1024], err[128];
    if (d->task) snprintf(task, sizeof task, "\"sim-%llu\"", (unsigned long long)d->task);
    static const char *const names[] = {"import_wh", "export_wh",    "pv_wh",  "load_wh",
                                        "charge_wh", "discharge_wh", "loss_wh"};
    static const int ctr[] = {SIM_IMPORT, SIM_EXPORT,    SIM_PV,  SIM_LOAD,
                              SIM_CHARGE, SIM_DISCHARGE, SIM_LOSS};
    const char *end = text + sizeof text - 2;
    char *p =
        text + snprintf(text, sizeof text, "{\"mode\":\"%s\",\"task\":%s", mode_name(d), task);
    p = put_num(p, end, "stored_wh", d->ph.stored_wh);
    for (size_t k = 0; k < sizeof ctr / sizeof *ctr; k++)
        p = put_num(p, end, names[k], d->ph.ctr[ctr[k]]);
    *p++ = '}';
    *p = '\0';
    int len = (int)(p - text);
    gp_json *extra = H->json_parse(text, (size_t)len, err, sizeof err);
    gp_reading r = {
        .size = sizeof(gp_reading),
        .ts_ms = now,
        .online = 1,
        .soc_pct = battery ? 100.0 * d->ph.stored_wh / t->phys.capacity_wh : NAN,
        .battery_w = pw.battery_w,
        .pv_w = pw.pv_w,
        .load_w = pw.load_w,
        .grid_w = pw.grid_w,
        .capacity_wh = t->phys.capacity_wh,
        .max_charge_w = battery ? t->phys.max_charge_w : 0,
        .max_discharge_w = battery ? t->phys.max_discharge_w : 0,
        .soc_min_pct = battery ? d->ph.soc_min_pct : NAN,
        .soc_max_pct = battery ? t->phys.soc_max_pct : NAN,
        .extra = extra,
    };
    H->reading(s->h, device, &r);
    H->json_free(extra);
}

static void do_read(sim *s, uint64_t op, const gp_target *targets, size_t n)
{
    int64_t now = H->now_ms(s->h);
    begin(s, now);
    for (size_t k = 0; k < n; k++) {
        uint32_t i = targets[k].local;
        const char *vid = targets[k].vendor_id;
        if (i >= s->n_dev || (vid && *vid && strcmp(vid, sim_dev_id(s, i)) != 0)) {
            /* Not reported: the host marks it stale, which is what an unknown device is. */
            H->log(s->h, GP_LOG_WARN, "sim: read of unknown device (local %u, id \"%s\")", i,
                   vid ? vid : "");
            continue;
        }
        sim_advance(s, i, now);
        report(s, targets[k].device, i, now);
    }
    gp_result r = {.size = sizeof(gp_result), .status = GP_DONE, .energy_wh = NAN};
    H->read_done(s->h, op, &r);
    end_op(s, now);
}

static void emit_answers(sim *s, const sim_answer *ans, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char ref[40];
        snprintf(ref, sizeof ref, "sim-%llu", (unsigned long long)ans[k].ref);
        gp_result r = {
            .size = sizeof(gp_result),
            .status = ans[k].status,
            .code = ans[k].code,
            .retryable = 0,
            .message = ans[k].msg[0] ? ans[k].msg : NULL,
            .vendor_ref = ans[k].status == GP_PENDING ? ref : NULL,
            .energy_wh = NAN,
        };
        H->command_result(s->h, ans[k].id, &r);
    }
}

/* The running task n: on the polled device, or (should the host mix up targets) any. */
static long running_on(sim *s, uint32_t local, uint64_t n, int64_t now)
{
    if (local < s->n_dev) {
        sim_advance(s, local, now);
        if (s->dev[local].task == n) return local;
    }
    for (uint32_t i = 0; i < s->n_dev; i++) {
        if (s->dev[i].task != n) continue;
        sim_advance(s, i, now);
        return s->dev[i].task == n ? (long)i : -1;
    }
    return -1;
}

static void poll_one(sim *s, uint64_t cmd_id, uint32_t local, const char *ref, int64_t now)
{
    gp_result r = {.size = sizeof(gp_result), .vendor_ref = ref, .energy_wh = NAN};
    char msg[160];
    uint64_t n = sim_task_ref(ref);
    long i = n ? running_on(s, local, n, now) : -1;
    sim_task *t = n && i < 0 ? sim_task_find(s, n) : NULL;
    if (i >= 0) {
        r.status = GP_PENDING;
        r.energy_wh = s->dev[i].ph.forced_wh;
    } else if (t) {
        r.status = GP_DONE;
        r.energy_wh = t->wh;
        if (!t->reported_ms) t->reported_ms = now;
    } else {
        snprintf(msg, sizeof msg, "sim: unknown task %.100s", ref ? ref : "(null)");
        r.status = GP_FAILED;
        r.code = GP_E_PROTOCOL;
        r.message = msg;
    }
    H->task_result(s->h, cmd_id, &r);
}

static void do_poll(sim *s, const poll_item *items, size_t n)
{
    int64_t now = H->now_ms(s->h);
    begin(s, now);
    for (size_t k = 0; k < n; k++)
        poll_one(s, items[k].cmd_id, items[k].local, items[k].ref, now);
    end_op(s, now);
}

static void fire(void *ud)
{
    sim_pending *p = ud;
    sim *s = p->s;
    for (sim_pending **pp = &s->queue; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->kind == P_READ)
        do_read(s, p->op, p->targets, p->n);
    else if (p->kind == P_CMD)
        emit_answers(s, p->answers, p->n);
    else
        do_poll(s, p->polls, p->n);
    pending_free(p);
}

static sim_pending *defer(sim *s, int kind, uint64_t op, size_t n)
{
    sim_pending *p = sim_xcalloc(1, sizeof(*p));
    p->s = s;
    p->kind = kind;
    p->op = op;
    p->n = n;
    p->next = s->queue;
    s->queue = p;
    return p;
}

static void arm(sim *s, sim_pending *p)
{
    if (!H->timer_start(s->h, (double)s->latency_ms / 1000.0, fire, p)) {
        /* Without a timer the answer would never come; deliver it late rather than never. */
        H->log(s->h, GP_LOG_WARN, "sim: no timer for the latency; answering now");
        fire(p);
    }
}

/* ---- the operations ------------------------------------------------------------------- */

static void *sim_create(gp_hctx *h, const gp_json *config)
{
    sim *s = sim_config_build(h, config);
    if (!s) return NULL;
    sim_persist_load(s);
    H->log(h, GP_LOG_DEBUG, "sim: %zu device(s) from %zu template(s), seed %lld, %s", s->n_dev,
           s->n_tmpl, (long long)s->world.seed, s->async ? "async" : "sync");
    return s;
}

static void sim_destroy(void *inst)
{
    sim *s = inst;
    if (!s) return;
    /* The host stopped our timers already; what they would have answered is dropped. */
    while (s->queue) {
        sim_pending *p = s->queue;
        s->queue = p->next;
        pending_free(p);
    }
    if (s->started) sim_persist_snapshot(s, H->now_ms(s->h), 1);
    sim_free(s);
}

static void sim_discover(void *inst)
{
    sim *s = inst;
    for (uint32_t i = 0; i < s->n_dev; i++) {
        const sim_tmpl *t = sim_tmpl_of(s, i);
        int battery = t->phys.capacity_wh > 0;
        gp_device_info info = {
            .size = sizeof(gp_device_info),
            .vendor_id = sim_dev_id(s, i),
            .local = i,
            .caps = battery ? GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD |
                                  GP_CAP_ONOFF
                            : GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_ONOFF,
            .capacity_wh = t->phys.capacity_wh,
            .max_charge_w = battery ? t->phys.max_charge_w : 0,
            .max_discharge_w = battery ? t->phys.max_discharge_w : 0,
            .soc_min_pct = battery ? s->dev[i].ph.soc_min_pct : NAN,
            .soc_max_pct = battery ? t->phys.soc_max_pct : NAN,
            .model = battery ? "sim battery with PV" : "sim PV inverter",
        };
        H->device_add(s->h, &info);
    }
    H->discovered(s->h, 1, NULL);
}

static void sim_read(void *inst, uint64_t op, const gp_target *targets, size_t n)
{
    sim *s = inst;
    if (s->latency_ms <= 0) {
        do_read(s, op, targets, n);
        return;
    }
    sim_pending *p = defer(s, P_READ, op, n);
    p->targets = sim_xcalloc(n, sizeof(gp_target));
    for (size_t k = 0; k < n; k++) {
        p->targets[k] = targets[k];
        p->targets[k].vendor_id = NULL; /* borrowed for the call only; local is enough */
    }
    arm(s, p);
}

static void sim_command(void *inst, const gp_cmd *cmds, size_t n)
{
    sim *s = inst;
    int64_t now = H->now_ms(s->h);
    begin(s, now);
    sim_answer *ans = sim_xcalloc(n, sizeof(sim_answer));
    for (size_t k = 0; k < n; k++)
        sim_cmd_apply(s, &cmds[k], now, &ans[k]);
    end_op(s, now);
    if (s->latency_ms <= 0) {
        emit_answers(s, ans, n);
        free(ans);
        return;
    }
    sim_pending *p = defer(s, P_CMD, 0, n);
    p->answers = ans;
    arm(s, p);
}

static void sim_task_poll(void *inst, const gp_task *tasks, size_t n)
{
    sim *s = inst;
    poll_item *items = sim_xcalloc(n, sizeof(poll_item));
    for (size_t k = 0; k < n; k++) {
        const char *ref = tasks[k].vendor_ref ? tasks[k].vendor_ref : "";
        size_t len = strlen(ref) + 1;
        items[k].cmd_id = tasks[k].cmd_id;
        items[k].local = tasks[k].target.local;
        items[k].ref = memcpy(sim_xcalloc(len, 1), ref, len);
    }
    if (s->latency_ms <= 0) {
        do_poll(s, items, n);
        for (size_t k = 0; k < n; k++)
            free(items[k].ref);
        free(items);
        return;
    }
    sim_pending *p = defer(s, P_POLL, 0, n);
    p->polls = items;
    arm(s, p);
}

static const gp_plugin_desc sim_desc = {
    .magic = GP_PLUGIN_MAGIC,
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .size = sizeof(gp_plugin_desc),
    .name = "sim",
    .version = "1.0.0",
    .description = "simulated home batteries with PV and load (physics model for simulate and "
                   "tests)",
    .caps = GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF,
    .flags = GP_PF_TASKS | GP_PF_NATIVE_DURATION,
    .task_poll_s = 5,
    .max_batch = 0,
    .quotas = NULL,
    .n_quotas = 0,
    .create = sim_create,
    .destroy = sim_destroy,
    .discover = sim_discover,
    .read = sim_read,
    .command = sim_command,
    .task_poll = sim_task_poll,
    .login = NULL,
};

GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host);
GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host)
{
    /* Everything the plugin calls sits before `reserved` in ABI 1.0. */
    if (!host || host->abi_major != GP_ABI_MAJOR || host->size < offsetof(gp_host, reserved))
        return NULL;
    sim_host = host;
    return &sim_desc;
}
