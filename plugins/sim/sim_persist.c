/*
 * The sim plugin's state in the host's kv store, so a restarted process continues where the
 * last one stopped (SoC, forced mode, running and ended tasks, energy counters).
 *
 * Keys: "snapshot" holds every device (written at most every `snapshot` of sim time and in
 * destroy); "d/<id>" holds one device, written when a command or the end of a forced period
 * changed it, and deleted once a snapshot covers it; "t/<n>" holds an ended task until it is
 * pruned. On load the newer of the snapshot and a device's own record wins.
 */
#include <math.h>
#include <string.h>

#include "sim.h"

#define H sim_host

/* Doubles are written with 17 digits so a restore is exact. */
static void put_state(gp_str *b, const sim *s, uint32_t i)
{
    const sim_dev *d = &s->dev[i];
    H->str_printf(b, "\"soc\":%.17g,\"smin\":%.17g,\"on\":%d,\"mode\":%d,\"set\":%.17g",
                  d->ph.stored_wh, d->ph.soc_min_pct, d->ph.on, d->ph.mode, d->ph.set_w);
    H->str_printf(b, ",\"until\":%lld", (long long)d->until_ms);
    if (isnan(d->ph.soc_target))
        H->str_printf(b, ",\"tgt\":null");
    else
        H->str_printf(b, ",\"tgt\":%.17g", d->ph.soc_target);
    if (d->last_ms == SIM_NOT_STARTED)
        H->str_printf(b, ",\"last\":null");
    else
        H->str_printf(b, ",\"last\":%lld", (long long)d->last_ms);
    if (d->task)
        H->str_printf(b, ",\"task\":%llu,\"tstart\":%lld,\"tdl\":%lld,\"twh\":%.17g",
                      (unsigned long long)d->task, (long long)d->task_start_ms,
                      (long long)d->task_deadline_ms, d->ph.forced_wh);
    H->str_printf(b, ",\"c\":[");
    for (int k = 0; k < SIM_NCTR; k++)
        H->str_printf(b, "%s%.17g", k ? "," : "", d->ph.ctr[k]);
    H->str_printf(b, "]");
}

static void dev_key(const sim *s, uint32_t i, char *key, size_t len)
{
    snprintf(key, len, "d/%s", sim_dev_id(s, i));
}

void sim_persist_device(sim *s, uint32_t i)
{
    char key[80];
    dev_key(s, i, key, sizeof key);
    gp_str *b = H->str_new();
    H->str_printf(b, "{");
    put_state(b, s, i);
    H->str_printf(b, "}");
    size_t len = 0;
    const char *data = H->str_data(b, &len);
    if (H->kv_set(s->h, key, data, len) != 0)
        H->log(s->h, GP_LOG_WARN, "sim: cannot save the state of %s", sim_dev_id(s, i));
    H->str_free(b);
    s->dev[i].dirty = 0;
    s->dev[i].has_key = 1;
    s->changed = 1;
}

void sim_persist_task(sim *s, const sim_task *t)
{
    char key[40];
    snprintf(key, sizeof key, "t/%llu", (unsigned long long)t->n);
    gp_str *b = H->str_new();
    H->str_printf(b, "{\"dev\":");
    H->str_json(b, t->dev < s->n_dev ? sim_dev_id(s, t->dev) : "");
    H->str_printf(b, ",\"start\":%lld,\"end\":%lld,\"wh\":%.17g}", (long long)t->start_ms,
                  (long long)t->end_ms, t->wh);
    size_t len = 0;
    const char *data = H->str_data(b, &len);
    if (H->kv_set(s->h, key, data, len) != 0)
        H->log(s->h, GP_LOG_WARN, "sim: cannot save task sim-%llu", (unsigned long long)t->n);
    H->str_free(b);
}

void sim_persist_task_delete(sim *s, uint64_t n)
{
    char key[40];
    snprintf(key, sizeof key, "t/%llu", (unsigned long long)n);
    H->kv_set(s->h, key, NULL, 0);
}

void sim_persist_snapshot(sim *s, int64_t now, int force)
{
    if (!s->changed) return;
    if (!force && now - s->snap_ms < s->snapshot_ms) return;
    gp_str *b = H->str_new();
    H->str_printf(b, "{\"v\":1,\"devices\":[");
    for (uint32_t i = 0; i < s->n_dev; i++) {
        H->str_printf(b, "%s{\"id\":", i ? "," : "");
        H->str_json(b, sim_dev_id(s, i));
        H->str_printf(b, ",");
        put_state(b, s, i);
        H->str_printf(b, "}");
    }
    H->str_printf(b, "]}");
    size_t len = 0;
    const char *data = H->str_data(b, &len);
    int rc = H->kv_set(s->h, "snapshot", data, len);
    H->str_free(b);
    if (rc != 0) {
        H->log(s->h, GP_LOG_WARN, "sim: cannot save the state snapshot");
        return;
    }
    /* The snapshot covers every device now; their own records are stale. */
    for (uint32_t i = 0; i < s->n_dev; i++) {
        if (!s->dev[i].has_key) continue;
        char key[80];
        dev_key(s, i, key, sizeof key);
        H->kv_set(s->h, key, NULL, 0);
        s->dev[i].has_key = 0;
    }
    s->changed = 0;
    s->snap_ms = now;
}

/* ---- loading -------------------------------------------------------------------------- */

static int num(const gp_json *o, const char *key, double *out)
{
    const gp_json *v = H->json_get(o, key);
    if (H->json_type(v) != GP_JSON_NUMBER) return -1;
    *out = H->json_num(v);
    return isfinite(*out) ? 0 : -1;
}

/* A number, or NAN for null. */
static int num_or_null(const gp_json *o, const char *key, double *out)
{
    const gp_json *v = H->json_get(o, key);
    if (H->json_type(v) == GP_JSON_NULL) {
        *out = NAN;
        return 0;
    }
    return num(o, key, out);
}

/* Decode a saved state into device i when it is well-formed and (if newer_only) not older
 * than what the device has. Returns 0 when applied. */
static int restore(sim *s, uint32_t i, const gp_json *o, int newer_only)
{
    sim_dev d = s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    double soc, smin, on, mode, set, until, tgt, last, task = 0, tstart = 0, tdl = 0, twh = 0;
    const gp_json *c = H->json_get(o, "c");
    int bad = num(o, "soc", &soc) || num(o, "smin", &smin) || num(o, "on", &on) ||
              num(o, "mode", &mode) || num(o, "set", &set) || num(o, "until", &until) ||
              num_or_null(o, "tgt", &tgt) || num_or_null(o, "last", &last) ||
              H->json_type(c) != GP_JSON_ARRAY || H->json_len(c) != SIM_NCTR;
    if (!bad && H->json_get(o, "task"))
        bad = num(o, "task", &task) || num(o, "tstart", &tstart) || num(o, "tdl", &tdl) ||
              num(o, "twh", &twh) || task < 1 || task > 9007199254740992.0;
    for (int k = 0; !bad && k < SIM_NCTR; k++) {
        double v = H->json_num(H->json_at(c, (size_t)k));
        if (!isfinite(v) || v < 0) bad = 1;
        d.ph.ctr[k] = v;
    }
    if (!bad && (smin < 0 || smin > 100 || (on != 0 && on != 1) || (mode != 0 && mode != 1) ||
                 until < 0 || (!isnan(tgt) && (tgt < 0 || tgt > 100))))
        bad = 1;
    if (bad) {
        H->log(s->h, GP_LOG_WARN, "sim: ignoring malformed saved state of %s", sim_dev_id(s, i));
        return -1;
    }
    int64_t saved_last = isnan(last) ? SIM_NOT_STARTED : (int64_t)last;
    if (newer_only && s->dev[i].last_ms != SIM_NOT_STARTED && saved_last < s->dev[i].last_ms)
        return -1;
    /* The config may have changed since (a smaller battery): stay inside it. */
    double cap = t->phys.capacity_wh;
    d.ph.stored_wh = soc < 0 ? 0 : soc > cap ? cap : soc;
    d.ph.soc_min_pct = smin > t->phys.soc_max_pct ? t->phys.soc_max_pct : smin;
    d.ph.on = (uint8_t)on;
    d.ph.mode = (uint8_t)mode;
    d.ph.set_w = set;
    d.until_ms = (int64_t)until;
    d.ph.soc_target = tgt;
    d.last_ms = saved_last;
    d.task = (uint64_t)task;
    d.task_start_ms = (int64_t)tstart;
    d.task_deadline_ms = (int64_t)tdl;
    d.ph.forced_wh = twh < 0 ? 0 : twh;
    if (d.ph.mode != SIM_FORCED && d.task) d.task = 0; /* cannot happen when we wrote it */
    d.dirty = 0;
    s->dev[i] = d;
    return 0;
}

static gp_json *load_json(sim *s, const char *key)
{
    size_t len = 0;
    char *text = H->kv_get(s->h, key, &len);
    if (!text) return NULL;
    char err[160];
    gp_json *j = H->json_parse(text, len, err, sizeof err);
    H->free(text);
    if (!j) H->log(s->h, GP_LOG_WARN, "sim: ignoring the saved %s: %s", key, err);
    return j;
}

void sim_persist_load(sim *s)
{
    size_t restored = 0;
    gp_json *snap = load_json(s, "snapshot");
    const gp_json *arr = H->json_get(snap, "devices");
    for (size_t k = 0; k < H->json_len(arr); k++) {
        const gp_json *o = H->json_at(arr, k);
        const char *id = H->json_str(H->json_get(o, "id"));
        if (!id) continue;
        /* Usually the same order as ours: try that before searching. */
        long i = k < s->n_dev && strcmp(sim_dev_id(s, (uint32_t)k), id) == 0
                     ? (long)k
                     : sim_find_device(s, id);
        if (i >= 0 && restore(s, (uint32_t)i, o, 0) == 0) restored++;
    }
    H->json_free(snap);
    for (uint32_t i = 0; i < s->n_dev; i++) {
        char key[80];
        dev_key(s, i, key, sizeof key);
        gp_json *o = load_json(s, key);
        if (!o) continue;
        s->dev[i].has_key = 1;
        if (restore(s, i, o, 1) == 0) restored++;
        H->json_free(o);
    }
    if (restored)
        H->log(s->h, GP_LOG_INFO, "sim: restored the saved state of %zu device record(s)",
               restored);
}
