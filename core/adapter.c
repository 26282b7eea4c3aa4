/* Adapter instances: plugin life cycle, discovery, telemetry polling, login replay. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "quota.h"
#include "runtime.h"
#include "str.h"
#include "timer.h"
#include "timeutil.h"

#define DISCOVER_RETRY_MIN_MS 10000
#define DISCOVER_RETRY_MAX_MS 600000

/* What the quota queue sends through: the core's HTTP client with this adapter's options. */
static int send_http(void *ctx, const gp_http_req *req, gp_http_cb cb, void *ud)
{
    gp_hctx *h = ctx;
    h->last_activity_ms = gp_now_ms();
    return gp_http_request(gp_rt_http(h->rt), &h->http, h, req, cb, ud);
}

int gp_adapter_waiting_on_vendor(const gp_hctx *h)
{
    return h->quotas && (gp_quotaq_waiting(h->quotas) || gp_quotaq_in_flight(h->quotas));
}

int gp_adapter_stalled(const gp_hctx *h, int64_t now, int64_t limit_ms)
{
    /* Waiting for its quota, or for an answer the HTTP timeout bounds, is progress too: a
     * large account's discovery is paced by its quota. */
    if (gp_adapter_waiting_on_vendor(h)) return 0;
    return now - h->last_activity_ms > limit_ms;
}

gp_hctx *gp_adapter_open(struct gp_rt *rt, unsigned index, const gp_adapter_cfg *cfg,
                         const char *config_dir, char *const *plugin_path, gp_diag *d)
{
    char where[64];
    snprintf(where, sizeof where, "adapters[%u].plugin", index);
    char *file = gp_loader_find(plugin_path, cfg->plugin);
    if (!file) {
        gp_str dirs = {0};
        for (char *const *p = plugin_path; p && *p; p++)
            gp_str_printf(&dirs, "%s%s", dirs.len ? ", " : "", *p);
        gp_diag_add(d, where, "no plugin '%s' found (looked for %s.so in: %s)", cfg->plugin,
                    cfg->plugin, gp_str_cstr(&dirs));
        gp_str_clear(&dirs);
        return NULL;
    }
    gp_hctx *h = gp_xcalloc(1, sizeof *h);
    char err[512];
    if (gp_loader_open(file, gp_host_table(), &h->plugin, err, sizeof err) != 0) {
        gp_diag_add(d, where, "%s", err);
        free(file);
        free(h);
        return NULL;
    }
    free(file);
    if (strcmp(h->plugin.desc.name, cfg->plugin) != 0) {
        gp_diag_add(d, where, "%s is the plugin '%s', not '%s'", h->plugin.path,
                    h->plugin.desc.name, cfg->plugin);
        gp_loader_close(&h->plugin);
        free(h);
        return NULL;
    }
    h->rt = rt;
    h->index = index;
    h->cfg = cfg;
    h->config_dir = config_dir;
    snprintf(h->prefix, sizeof h->prefix, "adapters[%u].config", index);
    h->http = (gp_http_opts){
        .tls_verify = cfg->tls_verify,
        .ca_file = cfg->ca_file,
        .default_timeout_s = (double)cfg->timeout_ms / 1000.0,
        .max_body = 0,
        .who = cfg->id,
    };
    h->discover_backoff_ms = DISCOVER_RETRY_MIN_MS;
    if (rt)
        h->quotas =
            gp_quotaq_new(send_http, h, h->plugin.desc.quotas, h->plugin.desc.n_quotas, cfg->id);
    cJSON *empty = NULL;
    const cJSON *conf = cfg->config;
    if (!conf) conf = empty = cJSON_CreateObject();
    size_t before = d->n;
    h->diag = d;
    h->inst = h->plugin.desc.create(h, (const gp_json *)conf);
    h->diag = NULL;
    cJSON_Delete(empty);
    if (!h->inst) {
        if (d->n == before)
            gp_diag_add(d, h->prefix, "the %s plugin refused its configuration",
                        h->plugin.desc.name);
        gp_adapter_close(h);
        return NULL;
    }
    if (d->n != before) {
        /* A plugin that reported problems but still built an instance: refuse it anyway. */
        h->plugin.desc.destroy(h->inst);
        h->inst = NULL;
        gp_adapter_close(h);
        return NULL;
    }
    return h;
}

void gp_adapter_close(gp_hctx *h)
{
    if (!h) return;
    h->state = GP_AD_CLOSING;
    gp_timer_stop(h->retry_timer);
    gp_timer_stop(h->poll_timer);
    gp_timer_stop(h->start_timer);
    gp_timer_stop(h->settle_timer);
    h->retry_timer = h->poll_timer = h->start_timer = h->settle_timer = NULL;
    gp_timer_stop(h->login_timer);
    h->login_timer = NULL;
    free(h->login_msg);
    if (h->quotas) gp_quotaq_abort(h->quotas);
    if (h->rt && gp_rt_http(h->rt)) gp_http_cancel_owner(gp_rt_http(h->rt), h);
    gp_host_stop_timers(h); /* as the ABI promises: before destroy() */
    if (h->inst) h->plugin.desc.destroy(h->inst);
    gp_loader_close(&h->plugin);
    for (size_t i = 0; i < h->n_owned; i++)
        free(h->owned[i]);
    free(h->owned);
    free(h->devs);
    free(h->reads);
    gp_idmap_clear(&h->seen);
    gp_quotaq_free(h->quotas);
    free(h);
}

/* ---- discovery ------------------------------------------------------------------------ */

static void start_discovery(void *ud)
{
    gp_hctx *h = ud;
    h->last_activity_ms = gp_now_ms();
    h->start_timer = h->retry_timer = NULL;
    h->state = GP_AD_DISCOVERING;
    h->n_devs = 0; /* re-discovery announces them again (indices are kept by the fleet) */
    gp_idmap_clear(&h->seen);
    gp_info(h->cfg->id, "discovering devices (%s plugin %s)", h->plugin.desc.name,
            h->plugin.desc.version);
    h->plugin.desc.discover(h->inst);
}

void gp_adapter_start(gp_hctx *h)
{
    /* From the loop, never inline: the plugin may answer synchronously. */
    h->start_timer = gp_timer_start(0, start_discovery, h);
}

void gp_adapter_retry_discovery(gp_hctx *h)
{
    char dur[32];
    gp_format_duration(h->discover_backoff_ms, dur, sizeof dur);
    gp_info(h->cfg->id, "retrying discovery in %s", dur);
    h->retry_timer = gp_timer_start((double)h->discover_backoff_ms / 1000.0, start_discovery, h);
    h->discover_backoff_ms *= 2;
    if (h->discover_backoff_ms > DISCOVER_RETRY_MAX_MS)
        h->discover_backoff_ms = DISCOVER_RETRY_MAX_MS;
}

/* ---- telemetry ------------------------------------------------------------------------ */

static void poll_timer_cb(void *ud)
{
    gp_hctx *h = ud;
    h->poll_timer = NULL;
    gp_adapter_read_all(h);
    if (h->state == GP_AD_READY)
        h->poll_timer = gp_timer_start((double)h->cfg->poll_ms / 1000.0, poll_timer_cb, h);
}

void gp_adapter_stop_polling(gp_hctx *h)
{
    gp_timer_stop(h->poll_timer);
    h->poll_timer = NULL;
}

static gp_read_op *find_read(gp_hctx *h, uint64_t op)
{
    for (size_t i = 0; i < h->n_reads; i++)
        if (h->reads[i].op == op) return &h->reads[i];
    return NULL;
}

static void drop_read(gp_hctx *h, gp_read_op *r)
{
    *r = h->reads[--h->n_reads];
}

/* Issue a read of devs[first .. first+count) as operation `op` (already recorded). */
static void issue_read(gp_hctx *h, uint64_t op, size_t first, size_t count)
{
    gp_fleet *f = gp_rt_fleet(h->rt);
    gp_target *t = gp_xmalloc((count ? count : 1) * sizeof(gp_target));
    for (size_t i = 0; i < count; i++) {
        uint32_t di = h->devs[first + i];
        t[i] = (gp_target){di, gp_fleet_cdev(f, di)->local, gp_fleet_vendor(f, di)};
    }
    h->plugin.desc.read(h->inst, op, t, count);
    free(t);
}

static void read_settled(gp_hctx *h)
{
    if (h->n_reads || h->first_read_done) return;
    h->first_read_done = 1;
    gp_rt_adapter_read(h->rt, h);
}

void gp_adapter_read_all(gp_hctx *h)
{
    if (h->state != GP_AD_READY) return;
    const gp_plugin_desc *p = &h->plugin.desc;
    if (!(p->caps & GP_CAP_READ) || !p->read || (p->flags & GP_PF_PUSH_TELEMETRY) || !h->n_devs) {
        read_settled(h);
        return;
    }
    int64_t now = gp_now_ms();
    /* A read that never finished is given up after two poll periods (at least a minute),
     * unless its requests still wait for the vendor's quota: then it is just slow, and a new
     * read would only queue behind it. */
    int64_t limit = 2 * h->cfg->poll_ms > 60000 ? 2 * h->cfg->poll_ms : 60000;
    int waiting = h->quotas && gp_quotaq_waiting(h->quotas);
    for (size_t i = h->n_reads; i-- > 0 && !waiting;)
        if (now - h->reads[i].started_ms > limit) {
            gp_warn(h->cfg->id, "read #%llu got no answer; giving up on it",
                    (unsigned long long)h->reads[i].op);
            drop_read(h, &h->reads[i]);
        }
    if (h->n_reads) {
        gp_debug(h->cfg->id, "previous read still running; skipping this poll");
        return;
    }
    size_t batch = p->max_batch ? p->max_batch : h->n_devs;
    /* Record every batch first: the plugin may complete one before we issue the next. */
    size_t first_op = h->n_reads;
    for (size_t first = 0; first < h->n_devs; first += batch) {
        if (h->n_reads == h->cap_reads) {
            h->cap_reads = h->cap_reads ? h->cap_reads * 2 : 8;
            h->reads = gp_xrealloc(h->reads, h->cap_reads * sizeof(gp_read_op));
        }
        size_t count = h->n_devs - first < batch ? h->n_devs - first : batch;
        h->reads[h->n_reads++] = (gp_read_op){++h->next_op, first, count, now, 0};
    }
    size_t n_ops = h->n_reads - first_op;
    gp_read_op *ops = gp_xmalloc(n_ops * sizeof(gp_read_op));
    memcpy(ops, h->reads + first_op, n_ops * sizeof(gp_read_op));
    for (size_t i = 0; i < n_ops && h->state == GP_AD_READY; i++)
        issue_read(h, ops[i].op, ops[i].first, ops[i].count);
    free(ops);
}

void gp_adapter_read_done(gp_hctx *h, uint64_t op, const gp_result *r)
{
    gp_read_op *ro = find_read(h, op);
    if (!ro) {
        gp_debug(h->cfg->id, "late or unknown read #%llu ignored", (unsigned long long)op);
        return;
    }
    if (r->status == GP_DONE) {
        if (h->read_error_logged) gp_info(h->cfg->id, "reads work again");
        h->read_error_logged = 0;
        drop_read(h, ro);
        read_settled(h);
        return;
    }
    if (r->code == GP_E_AUTH && !ro->replayed && h->plugin.desc.login) {
        ro->replayed = 1;
        ro->started_ms = gp_now_ms();
        gp_info(h->cfg->id, "authentication expired during a read; logging in again");
        if (gp_adapter_login(h) == 0) return; /* replayed in login_done */
    }
    if (!h->read_error_logged)
        gp_warn(h->cfg->id, "read failed: %s", r->message ? r->message : "(no message)");
    h->read_error_logged = 1;
    /* The vendor could not tell us: these devices are unreachable for now. */
    gp_fleet *f = gp_rt_fleet(h->rt);
    for (size_t i = 0; i < ro->count; i++)
        gp_fleet_dev(f, h->devs[ro->first + i])->online = 0;
    drop_read(h, ro);
    read_settled(h);
}

/* ---- login ---------------------------------------------------------------------------- */

/*
 * A login runs in three steps, each from the loop so that no plugin call is re-entered: the
 * plugin's login() is called from a timer (not from inside the read or HTTP callback that
 * found the session expired); its login_done() (or the deadline) only records the outcome;
 * a timer then replays what waited for it.
 */
static void login_settle(void *ud)
{
    gp_hctx *h = ud;
    h->login_timer = NULL;
    h->logging_in = 0;
    int ok = h->login_ok;
    char *msg = h->login_msg;
    h->login_msg = NULL;
    if (!ok) gp_err(h->cfg->id, "login failed: %s", msg ? msg : "(no message)");
    /* Reads waiting for the login: replay them (once) or give up. */
    for (size_t i = h->n_reads; i-- > 0;) {
        if (i >= h->n_reads || h->reads[i].replayed != 1) continue;
        if (ok) {
            h->reads[i].replayed = 2; /* a second AUTH failure is final */
            issue_read(h, h->reads[i].op, h->reads[i].first, h->reads[i].count);
        } else {
            gp_result fail = {.size = sizeof fail,
                              .status = GP_FAILED,
                              .code = GP_E_AUTH,
                              .message = "login failed",
                              .energy_wh = NAN};
            gp_adapter_read_done(h, h->reads[i].op, &fail);
        }
    }
    gp_dispatch_login_done(gp_rt_dispatch(h->rt), h->index, ok, msg, gp_now_ms());
    free(msg);
}

static void login_answered(gp_hctx *h, int ok, const char *message)
{
    if (!h->logging_in || h->login_answered) return; /* late, or after the deadline */
    h->login_answered = 1;
    h->login_ok = ok;
    h->login_msg = gp_xstrdup(message);
    gp_timer_stop(h->login_timer);
    h->login_timer = gp_timer_start(0, login_settle, h);
}

static void login_deadline(void *ud)
{
    gp_hctx *h = ud;
    h->login_timer = NULL;
    /* Waiting for the login quota (Huawei: one a minute), or for the answer of a request the
     * HTTP timeout bounds, is not a hang: look again later. */
    if (gp_adapter_waiting_on_vendor(h)) {
        h->login_timer = gp_timer_start((double)h->cfg->timeout_ms * 2 / 1000.0, login_deadline, h);
        return;
    }
    char msg[96], dur[32];
    gp_format_duration(2 * h->cfg->timeout_ms, dur, sizeof dur);
    snprintf(msg, sizeof msg, "login did not finish within %s", dur);
    login_answered(h, 0, msg);
}

static void login_start(void *ud)
{
    gp_hctx *h = ud;
    /* A login is one or two requests; twice the request timeout is plenty. */
    h->login_timer = gp_timer_start((double)h->cfg->timeout_ms * 2 / 1000.0, login_deadline, h);
    h->plugin.desc.login(h->inst);
}

int gp_adapter_login(gp_hctx *h)
{
    if (!h->plugin.desc.login || h->state == GP_AD_CLOSING) return -1;
    if (h->logging_in) return 0;
    h->logging_in = 1;
    h->login_answered = 0;
    h->login_timer = gp_timer_start(0, login_start, h);
    return 0;
}

void gp_adapter_login_done(gp_hctx *h, const gp_result *r)
{
    login_answered(h, r->status == GP_DONE, r->message);
}

/* ---- commands and tasks --------------------------------------------------------------- */

void gp_adapter_send(gp_hctx *h, const gp_cmd *cmds, size_t n)
{
    const gp_plugin_desc *p = &h->plugin.desc;
    if (h->state != GP_AD_READY || !p->command) {
        gp_result fail = {.size = sizeof fail,
                          .status = GP_FAILED,
                          .code = GP_E_TRANSPORT,
                          .retryable = 1,
                          .message = "adapter not ready",
                          .energy_wh = NAN};
        for (size_t i = 0; i < n; i++)
            gp_dispatch_command_result(gp_rt_dispatch(h->rt), cmds[i].id, &fail, gp_now_ms());
        return;
    }
    size_t batch = p->max_batch ? p->max_batch : n;
    for (size_t i = 0; i < n && h->state == GP_AD_READY; i += batch)
        p->command(h->inst, cmds + i, n - i < batch ? n - i : batch);
}

void gp_adapter_poll_tasks(gp_hctx *h, const gp_task *tasks, size_t n)
{
    if (h->state != GP_AD_READY || !h->plugin.desc.task_poll) {
        gp_result again = {.size = sizeof again,
                           .status = GP_FAILED,
                           .code = GP_E_TRANSPORT,
                           .retryable = 1,
                           .message = "adapter not ready",
                           .energy_wh = NAN};
        for (size_t i = 0; i < n; i++)
            gp_dispatch_task_result(gp_rt_dispatch(h->rt), tasks[i].cmd_id, &again, gp_now_ms());
        return;
    }
    h->plugin.desc.task_poll(h->inst, tasks, n);
}

int64_t gp_adapter_task_poll_ms(const gp_hctx *h)
{
    if (h->cfg->task_poll_ms > 0) return h->cfg->task_poll_ms;
    double s = h->plugin.desc.task_poll_s;
    return s > 0 ? (int64_t)(s * 1000.0) : 60000;
}

void gp_adapter_begin_polling(gp_hctx *h)
{
    gp_timer_stop(h->poll_timer);
    h->poll_timer = gp_timer_start(0, poll_timer_cb, h);
}
