/* The gp_host services table: what plugins may ask of the core. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "path.h"
#include "quota.h"
#include "runtime.h"
#include "secret.h"
#include "str.h"
#include "timer.h"
#include "timeutil.h"

/* ---- plugin-filled structs of another minor version ------------------------------------ */

/* Copy the first `size` bytes the plugin knows about over a default-initialised struct. */
#define NORM(in, out, dflt)                                                                        \
    do {                                                                                           \
        *(out) = (dflt);                                                                           \
        size_t n_ = (in)->size && (in)->size < sizeof *(out) ? (in)->size : sizeof *(out);         \
        memcpy((out), (in), n_);                                                                   \
        (out)->size = sizeof *(out);                                                               \
    } while (0)

void gp_host_norm_result(const gp_result *in, gp_result *out)
{
    gp_result d = {.size = sizeof d, .energy_wh = NAN};
    NORM(in, out, d);
}

static void norm_reading(const gp_reading *in, gp_reading *out)
{
    gp_reading d = gp_reading_unknown(0);
    NORM(in, out, d);
}

static void norm_info(const gp_device_info *in, gp_device_info *out)
{
    gp_device_info d = {.size = sizeof d,
                        .capacity_wh = NAN,
                        .max_charge_w = NAN,
                        .max_discharge_w = NAN,
                        .soc_min_pct = NAN,
                        .soc_max_pct = NAN};
    NORM(in, out, d);
}

static const char *own(gp_hctx *h, char *s)
{
    if (!s) return NULL;
    h->owned = gp_xrealloc(h->owned, (h->n_owned + 1) * sizeof(char *));
    h->owned[h->n_owned++] = s;
    return s;
}

/* ---- logging, clock, timers ---------------------------------------------------------- */

static void h_log(gp_hctx *h, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(level, h && h->cfg ? h->cfg->id : "plugin", fmt, ap);
    va_end(ap);
}

static int64_t h_now_ms(gp_hctx *h)
{
    (void)h;
    return gp_now_ms();
}

/* A plugin's timer, kept on its adapter's list so that closing the adapter stops it: the
 * plugin's destroy() frees what the callback would touch. The plugin's handle is this
 * record. */
typedef struct plugin_timer {
    gp_hctx *h;
    gp_timer_cb cb;
    void *ud;
    gp_timer *t;
    size_t at; /* index in h->timers */
} plugin_timer;

static void unlist_timer(plugin_timer *pt)
{
    gp_hctx *h = pt->h;
    h->timers[pt->at] = h->timers[--h->n_timers];
    ((plugin_timer *)h->timers[pt->at])->at = pt->at;
}

static void plugin_timer_fired(void *ud)
{
    plugin_timer *pt = ud;
    gp_timer_cb cb = pt->cb;
    void *cb_ud = pt->ud;
    unlist_timer(pt);
    free(pt);
    cb(cb_ud);
}

static gp_timer *h_timer_start(gp_hctx *h, double after_s, gp_timer_cb cb, void *ud)
{
    if (!h || !h->rt || h->state == GP_AD_CLOSING || !cb) return NULL;
    plugin_timer *pt = gp_xmalloc(sizeof *pt);
    *pt = (plugin_timer){h, cb, ud, NULL, h->n_timers};
    if (h->n_timers == h->cap_timers) {
        h->cap_timers = h->cap_timers ? h->cap_timers * 2 : 16;
        h->timers = gp_xrealloc(h->timers, h->cap_timers * sizeof(void *));
    }
    h->timers[h->n_timers++] = pt;
    pt->t = gp_timer_start(after_s, plugin_timer_fired, pt);
    return (gp_timer *)pt;
}

static void h_timer_stop(gp_hctx *h, gp_timer *t)
{
    (void)h;
    plugin_timer *pt = (plugin_timer *)t;
    if (!pt) return;
    gp_timer_stop(pt->t);
    unlist_timer(pt);
    free(pt);
}

void gp_host_stop_timers(gp_hctx *h)
{
    while (h->n_timers)
        h_timer_stop(h, (gp_timer *)h->timers[h->n_timers - 1]);
    free(h->timers);
    h->timers = NULL;
    h->cap_timers = 0;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static int h_http(gp_hctx *h, const gp_http_req *req, gp_http_cb cb, void *ud)
{
    if (!h || !h->rt || h->state == GP_AD_CLOSING || !req || !cb) return -1;
    /* A plugin built against an older minor has a shorter request: zero the rest. */
    gp_http_req r = {0};
    size_t n = req->size && req->size < sizeof r ? req->size : sizeof r;
    memcpy(&r, req, n);
    r.size = sizeof r;
    return gp_quotaq_request(h->quotas, &r, cb, ud);
}

/* ---- configuration -------------------------------------------------------------------- */

static const char *h_adapter_id(gp_hctx *h)
{
    return h && h->cfg ? h->cfg->id : "";
}

static void full_path(gp_hctx *h, const char *path, char *buf, size_t len)
{
    if (!path || !*path)
        snprintf(buf, len, "%s", h->prefix);
    else if (path[0] == '[')
        snprintf(buf, len, "%s%s", h->prefix, path);
    else
        snprintf(buf, len, "%s.%s", h->prefix, path);
}

static void h_config_error(gp_hctx *h, const char *path, const char *fmt, ...)
{
    char where[512];
    full_path(h, path, where, sizeof where);
    gp_str msg = {0};
    va_list ap;
    va_start(ap, fmt);
    gp_str_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (h->diag)
        gp_diag_add(h->diag, where, "%s", gp_str_cstr(&msg));
    else
        gp_warn(h->cfg->id, "%s: %s", where, gp_str_cstr(&msg));
    gp_str_clear(&msg);
}

static int h_config_check_keys(gp_hctx *h, const gp_json *obj, const char *path,
                               const char *const *allowed)
{
    int bad = 0;
    size_t n = gp_json_len(obj);
    if (gp_json_type(obj) != GP_JSON_OBJECT) return 0;
    for (size_t i = 0; i < n; i++) {
        const gp_json *m = gp_json_at(obj, i);
        const char *k = gp_json_key(m);
        if (!k) continue;
        int repeated = gp_json_repeated_key(obj, m);
        if (!repeated && gp_secret_key_allowed(k, allowed)) continue;
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path ? path : "", path && *path ? "." : "", k);
        h_config_error(h, sub, "%s",
                       repeated ? "given twice (only one is used: remove the other)"
                                : "unknown key");
        bad++;
    }
    return bad;
}

static const char *h_config_secret(gp_hctx *h, const gp_json *obj, const char *key, int required)
{
    if (!h || !key) return NULL;
    gp_diag local = {0};
    gp_diag *d = h->diag ? h->diag : &local;
    char *v = gp_secret_resolve(gp_json_cj(obj), key, h->config_dir, h->prefix, required, d);
    gp_diag_clear(&local);
    return own(h, v);
}

static const char *h_resolve_path(gp_hctx *h, const char *path)
{
    if (!h || !path) return NULL;
    return own(h, gp_path_resolve(h->config_dir, path));
}

/* ---- text building -------------------------------------------------------------------- */

static void h_str_printf(gp_str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_str_vprintf(s, fmt, ap);
    va_end(ap);
}

static const char *h_str_data(const gp_str *s, size_t *len)
{
    if (len) *len = s->len;
    return gp_str_cstr(s);
}

/* ---- results -------------------------------------------------------------------------- */

static int64_t h_device_add(gp_hctx *h, const gp_device_info *info)
{
    if (!h || !h->rt || !info || h->state != GP_AD_DISCOVERING) {
        if (h) gp_warn(h->cfg->id, "plugin bug: device_add outside discovery; ignored");
        return -1;
    }
    h->last_activity_ms = gp_now_ms();
    gp_device_info in;
    norm_info(info, &in);
    if (in.caps & ~(uint32_t)(GP_CAP_READ | GP_CAP_WRITE_MASK)) {
        gp_warn(h->cfg->id, "device '%s' claims unknown capability bits; ignoring them",
                in.vendor_id ? in.vendor_id : "");
        in.caps &= GP_CAP_READ | GP_CAP_WRITE_MASK;
    }
    /* A device cannot have a capability its plugin does not implement. */
    in.caps &= h->plugin.desc.caps;
    char err[200];
    int existed = 0;
    int64_t idx = gp_fleet_add(gp_rt_fleet(h->rt), h->index, &in, &existed, err, sizeof err);
    if (idx < 0) {
        gp_warn(h->cfg->id, "device not added: %s", err);
        return -1;
    }
    if (gp_idmap_get(&h->seen, (uint64_t)idx + 1, NULL)) {
        gp_warn(h->cfg->id, "plugin bug: device '%s' announced twice; keeping one",
                gp_fleet_id(gp_rt_fleet(h->rt), (size_t)idx));
        return idx;
    }
    gp_idmap_put(&h->seen, (uint64_t)idx + 1, 1);
    if (h->n_devs == h->cap_devs) {
        h->cap_devs = h->cap_devs ? h->cap_devs * 2 : 64;
        h->devs = gp_xrealloc(h->devs, h->cap_devs * sizeof(uint32_t));
    }
    h->devs[h->n_devs++] = (uint32_t)idx;
    return idx;
}

static void h_discovered(gp_hctx *h, int ok, const char *message)
{
    if (!h || !h->rt || h->state != GP_AD_DISCOVERING) return;
    gp_idmap_clear(&h->seen);
    if (ok) {
        h->state = GP_AD_READY;
        gp_info(h->cfg->id, "discovered %zu device(s)%s%s", h->n_devs, message ? ": " : "",
                message ? message : "");
    } else {
        h->state = GP_AD_FAILED;
        gp_err(h->cfg->id, "discovery failed: %s", message ? message : "(no message)");
    }
    gp_rt_adapter_discovered(h->rt, h, ok);
}

static int own_device(gp_hctx *h, uint32_t device)
{
    gp_fleet *f = gp_rt_fleet(h->rt);
    return device < gp_fleet_count(f) && gp_fleet_cdev(f, device)->adapter == h->index;
}

static void h_reading(gp_hctx *h, uint32_t device, const gp_reading *r)
{
    if (!h || !h->rt || !r) return;
    if (!own_device(h, device)) {
        gp_warn(h->cfg->id, "plugin bug: reading for device handle %u it does not own", device);
        return;
    }
    gp_reading in;
    norm_reading(r, &in);
    gp_fleet *f = gp_rt_fleet(h->rt);
    gp_fleet_reading(f, device, &in, gp_now_ms());
    if (in.extra && gp_json_type(in.extra) == GP_JSON_OBJECT) {
        char *text = cJSON_PrintUnformatted(gp_json_cj(in.extra));
        gp_fleet_set_extra(f, device, text);
        cJSON_free(text);
    } else {
        gp_fleet_set_extra(f, device, NULL);
    }
}

static void h_read_done(gp_hctx *h, uint64_t op, const gp_result *r)
{
    if (!h || !h->rt || !r) return;
    h->last_activity_ms = gp_now_ms();
    gp_result in;
    gp_host_norm_result(r, &in);
    gp_adapter_read_done(h, op, &in);
}

static void h_command_result(gp_hctx *h, uint64_t cmd_id, const gp_result *r)
{
    if (!h || !h->rt || !r) return;
    gp_result in;
    gp_host_norm_result(r, &in);
    gp_deferred_result(gp_rt_deferred(h->rt), h->index, 0, cmd_id, &in);
}

static void h_task_result(gp_hctx *h, uint64_t cmd_id, const gp_result *r)
{
    if (!h || !h->rt || !r) return;
    gp_result in;
    gp_host_norm_result(r, &in);
    gp_deferred_result(gp_rt_deferred(h->rt), h->index, 1, cmd_id, &in);
}

static void h_login_done(gp_hctx *h, const gp_result *r)
{
    if (!h || !h->rt || !r) return;
    gp_result in;
    gp_host_norm_result(r, &in);
    gp_adapter_login_done(h, &in);
}

/* ---- persistence ---------------------------------------------------------------------- */

static uint64_t h_next_request_id(gp_hctx *h)
{
    if (!h || !h->rt) return 0;
    return gp_journal_seq_next(gp_rt_journal(h->rt), "request_id");
}

static int h_kv_set(gp_hctx *h, const char *key, const void *val, size_t len)
{
    if (!h || !h->rt || !key) return -1;
    return gp_deferred_kv_set(gp_rt_deferred(h->rt), h->cfg->id, key, val, len);
}

static void *h_kv_get(gp_hctx *h, const char *key, size_t *len)
{
    if (!h || !h->rt || !key) return NULL;
    return gp_deferred_kv_get(gp_rt_deferred(h->rt), h->cfg->id, key, len);
}

static void h_free(void *p)
{
    free(p);
}

static void h_rate_limited(gp_hctx *h, const char *endpoint, double retry_after_s)
{
    if (h && h->quotas) gp_quotaq_limited(h->quotas, endpoint, retry_after_s);
}

static const gp_host host_table = {
    .size = sizeof(gp_host),
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .log = h_log,
    .now_ms = h_now_ms,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .http = h_http,
    .http_header = gp_http_header,
    .adapter_id = h_adapter_id,
    .config_error = h_config_error,
    .config_check_keys = h_config_check_keys,
    .config_secret = h_config_secret,
    .resolve_path = h_resolve_path,
    .json_parse = gp_json_parse,
    .json_free = gp_json_free,
    .json_type = gp_json_type,
    .json_get = gp_json_get,
    .json_len = gp_json_len,
    .json_at = gp_json_at,
    .json_key = gp_json_key,
    .json_num = gp_json_num,
    .json_str = gp_json_str,
    .json_bool = gp_json_bool,
    .str_new = gp_str_new,
    .str_free = gp_str_free,
    .str_printf = h_str_printf,
    .str_json = gp_str_json,
    .str_data = h_str_data,
    .device_add = h_device_add,
    .discovered = h_discovered,
    .reading = h_reading,
    .read_done = h_read_done,
    .command_result = h_command_result,
    .task_result = h_task_result,
    .login_done = h_login_done,
    .next_request_id = h_next_request_id,
    .kv_set = h_kv_set,
    .kv_get = h_kv_get,
    .free = h_free,
    .parse_duration_ms = gp_parse_duration_ms,
    .rate_limited = h_rate_limited,
};

const gp_host *gp_host_table(void)
{
    return &host_table;
}
