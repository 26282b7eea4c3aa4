/* `gridpilot run`: the daemon on one libev loop. */
#include "daemon.h"

#include <ev.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gp_config.h"
#include "log.h"
#include "path.h"
#include "runtime.h"
#include "str.h"
#include "timer.h"
#include "timeutil.h"

enum phase { RT_STARTING = 0, RT_RUNNING, RT_STOPPING, RT_DONE };

struct gp_rt {
    gp_config *cfg;
    gp_run_opts o;
    gp_fleet *fleet;
    gp_journal *journal;
    gp_http *http;
    gp_dispatch *dispatch;
    gp_deferred *deferred;
    gp_strategy *strategy;
    gp_tariff *tariff;
    gp_hctx **ad;
    size_t n_ad;
    uint8_t *settled; /* per adapter: discovery failed, or first read finished */
    int phase, ready, ticked, exit_code;
    int virt; /* simulate: driven step by step on the virtual clock (no tick, poll, sweep) */
    uint64_t strategy_failures; /* ticks whose strategy call failed */
    const gp_metric *metrics;   /* the last tick's gp.metric figures; borrowed from strategy */
    size_t n_metrics;
    int64_t pruned_ms; /* simulate: when the journal was last pruned */
    gp_timer *tick_timer, *sweep_timer, *for_timer, *deadline, *ready_timer, *startup_timer;
    ev_signal sig_int, sig_term, sig_hup;
    uint64_t ticks;
    int64_t tick_due; /* the boundary the tick timer stands for */
};

/* ---- accessors for the adapter layer ---------------------------------------------------- */

gp_dispatch *gp_rt_dispatch(struct gp_rt *rt)
{
    return rt->dispatch;
}
gp_deferred *gp_rt_deferred(struct gp_rt *rt)
{
    return rt->deferred;
}
gp_fleet *gp_rt_fleet(struct gp_rt *rt)
{
    return rt->fleet;
}
gp_journal *gp_rt_journal(struct gp_rt *rt)
{
    return rt->journal;
}
gp_http *gp_rt_http(struct gp_rt *rt)
{
    return rt->http;
}
int gp_rt_dry_run(const struct gp_rt *rt)
{
    return rt->o.dry_run;
}

/* ---- dispatch io: the adapters ---------------------------------------------------------- */

static void io_send(void *ud, unsigned a, const gp_cmd *cmds, size_t n)
{
    struct gp_rt *rt = ud;
    if (rt->ad[a]) gp_adapter_send(rt->ad[a], cmds, n);
}

static void io_poll(void *ud, unsigned a, const gp_task *tasks, size_t n)
{
    struct gp_rt *rt = ud;
    if (rt->ad[a]) gp_adapter_poll_tasks(rt->ad[a], tasks, n);
}

static int io_login(void *ud, unsigned a)
{
    struct gp_rt *rt = ud;
    return rt->ad[a] ? gp_adapter_login(rt->ad[a]) : -1;
}

static uint32_t io_flags(void *ud, unsigned a)
{
    struct gp_rt *rt = ud;
    return rt->ad[a] ? rt->ad[a]->plugin.desc.flags : 0;
}

static int io_waiting(void *ud, unsigned a)
{
    struct gp_rt *rt = ud;
    return rt->ad[a] ? gp_adapter_waiting_on_vendor(rt->ad[a]) : 0;
}

static int io_replace_busy(void *ud, unsigned a)
{
    struct gp_rt *rt = ud;
    return rt->cfg->adapters[a].busy_replace;
}

static void finish(struct gp_rt *rt);

static void io_fatal(void *ud, const char *why)
{
    struct gp_rt *rt = ud;
    gp_err("core",
           "the journal cannot be written (%s): stopping; nothing was sent that is not "
           "journaled, and the next start resumes from the journal",
           why);
    rt->exit_code = 1;
    finish(rt);
}

static int64_t io_task_poll_ms(void *ud, unsigned a)
{
    struct gp_rt *rt = ud;
    return rt->ad[a] ? gp_adapter_task_poll_ms(rt->ad[a]) : 0;
}

static void reload(struct gp_rt *rt);

/* ---- stopping ------------------------------------------------------------------------- */

static void finish(struct gp_rt *rt)
{
    if (rt->phase == RT_DONE) return;
    rt->phase = RT_DONE;
    ev_break(gp_loop(), EVBREAK_ALL);
}

static void deadline_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->deadline = NULL;
    size_t left = gp_dispatch_unsettled(rt->dispatch);
    if (left) {
        gp_warn("core", "%zu command(s) still without an answer; they stay in the journal", left);
        if (rt->o.once) rt->exit_code = 1;
    }
    finish(rt);
}

static void stop_ticking(struct gp_rt *rt)
{
    gp_timer_stop(rt->tick_timer);
    rt->tick_timer = NULL;
    for (size_t i = 0; i < rt->n_ad; i++)
        if (rt->ad[i]) gp_adapter_stop_polling(rt->ad[i]);
}

static void shutdown_rt(struct gp_rt *rt, const char *why)
{
    if (rt->phase == RT_STOPPING) {
        gp_warn("core", "%s again: exiting now", why);
        finish(rt);
        return;
    }
    if (rt->phase == RT_DONE) return;
    rt->phase = RT_STOPPING;
    gp_info("core", "%s: stopping", why);
    stop_ticking(rt);
    gp_timer_stop(rt->for_timer);
    rt->for_timer = NULL;
    if (rt->cfg->on_exit == GP_ON_EXIT_RELEASE && !rt->o.dry_run) {
        gp_info("core", "on_exit release: returning forced devices to their own mode");
        if (!gp_dispatch_release_all(rt->dispatch, gp_now_ms()))
            gp_info("core", "on_exit release: nothing was in force");
    } else if (rt->cfg->on_exit == GP_ON_EXIT_HOLD) {
        gp_info("core", "on_exit hold: commands stay in force");
    }
    if (!gp_dispatch_unsettled(rt->dispatch)) {
        finish(rt);
        return;
    }
    gp_timer_stop(rt->deadline);
    rt->deadline = gp_timer_start((double)rt->cfg->release_timeout_ms / 1000.0, deadline_cb, rt);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct gp_rt *rt = w->data;
    if (w->signum == SIGHUP) {
        reload(rt);
        return;
    }
    shutdown_rt(rt, w->signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void for_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->for_timer = NULL;
    char d[32];
    gp_format_duration(rt->o.for_ms, d, sizeof d);
    char why[64];
    snprintf(why, sizeof why, "ran for %s", d);
    shutdown_rt(rt, why);
}

/* ---- ticks ---------------------------------------------------------------------------- */

static void fmt_kw(char *buf, size_t len, double w)
{
    if (!isfinite(w))
        snprintf(buf, len, "?");
    else
        snprintf(buf, len, "%+.1f kW", w / 1000.0);
}

static void log_strategy_error(const char *err)
{
    /* One event: the error and its traceback (one JSON record, or prefixed text lines). */
    gp_err("strategy", "error, nothing dispatched this tick: %s", err);
}

/* One tick at time `now` (the tick's boundary, which the strategy sees as ctx.now). */
static void do_tick(struct gp_rt *rt, int64_t now)
{
    rt->ticks++;
    rt->ticked = 1;
    gp_fleet_refresh_online(rt->fleet, now);
    gp_site site;
    gp_fleet_site(rt->fleet, &site);
    char soc[16], pv[24], load[24], bat[24], grid[24];
    snprintf(soc, sizeof soc, isfinite(site.soc_pct) ? "%.1f%%" : "?", site.soc_pct);
    fmt_kw(pv, sizeof pv, site.pv_w);
    fmt_kw(load, sizeof load, site.load_w);
    fmt_kw(bat, sizeof bat, site.battery_w);
    fmt_kw(grid, sizeof grid, site.grid_w);
    gp_str line = {0};
    gp_str_printf(&line, "tick %llu: %u/%u online, SoC %s, pv %s, load %s, battery %s, grid %s",
                  (unsigned long long)rt->ticks, site.online, site.devices, soc, pv, load, bat,
                  grid);
    if (rt->strategy) {
        int64_t tick_ms = rt->virt ? rt->o.step_ms : rt->cfg->tick_ms;
        gp_tick_in in = {now, (double)tick_ms / 1000.0, rt->o.dry_run, rt->fleet, rt->tariff};
        gp_tick_out out = {0};
        char err[4096];
        int rc = gp_strategy_tick(rt->strategy, &in, &out, err, sizeof err);
        rt->metrics = out.metrics;
        rt->n_metrics = out.n_metrics;
        if (rc != 0) {
            /* A simulation repeats a broken strategy 100,000 times: the first few say it. */
            rt->strategy_failures++;
            if (!rt->virt || rt->strategy_failures <= 3) log_strategy_error(err);
            if (rt->virt && rt->strategy_failures == 3)
                gp_warn("strategy", "further strategy errors are counted in the report, not "
                                    "logged");
            if (rt->o.once) rt->exit_code = 1;
            gp_str_printf(&line, "; strategy failed");
        } else {
            gp_submit_stats st;
            gp_dispatch_submit(rt->dispatch, out.intents, out.n, "strategy", now, NULL, &st);
            gp_str_printf(&line, "; strategy %.1f ms, %zu command(s)", out.elapsed_ms, out.n);
            if (st.sent) gp_str_printf(&line, ", %zu sent", st.sent);
            if (st.queued) gp_str_printf(&line, ", %zu queued", st.queued);
            if (st.dry_run) gp_str_printf(&line, ", %zu dry-run", st.dry_run);
            if (st.unchanged) gp_str_printf(&line, ", %zu unchanged", st.unchanged);
            if (st.invalid) gp_str_printf(&line, ", %zu invalid", st.invalid);
            if (st.clamped) gp_str_printf(&line, ", %zu clamped", st.clamped);
            if (st.failed) gp_str_printf(&line, ", %zu not journaled", st.failed);
            for (size_t i = 0; i < out.n_metrics; i++)
                gp_str_printf(&line, "%s%s=%.6g", i ? " " : "; ", out.metrics[i].name,
                              out.metrics[i].value);
        }
    }
    /* A simulation runs hundreds of thousands of ticks: their lines are for -v. */
    gp_log(rt->virt ? GP_LOG_DEBUG : GP_LOG_INFO, "core", "%s", gp_str_cstr(&line));
    gp_str_clear(&line);
}

static void tick_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->tick_timer = NULL;
    if (rt->phase != RT_RUNNING) return;
    /* A timer fires a little early or late: the strategy sees the boundary it stands for, so
     * it never reads the previous tariff slot's price. */
    int64_t fired = gp_now_ms(), due = rt->tick_due;
    do_tick(rt, due && llabs(fired - due) < rt->cfg->tick_ms / 2 ? due : fired);
    /* Ticks fall on multiples of the tick period (a 60 s tick runs on the minute), which is
     * what tariff slots and human readers expect. */
    int64_t now = gp_now_ms(), t = rt->cfg->tick_ms;
    /* Round to the nearest boundary first: a timer that fires a few ms early must not
     * schedule the boundary it was meant for. */
    int64_t next = ((now + t / 2) / t + 1) * t;
    rt->tick_due = next;
    rt->tick_timer = gp_timer_start((double)(next - now) / 1000.0, tick_cb, rt);
}

static void sweep_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->sweep_timer = NULL;
    if (rt->phase == RT_DONE) return;
    gp_dispatch_sweep(rt->dispatch, gp_now_ms());
    size_t unsettled = gp_dispatch_unsettled(rt->dispatch);
    if ((rt->o.once && rt->ticked && rt->phase != RT_STOPPING) || rt->phase == RT_STOPPING) {
        if (!unsettled) {
            if (rt->o.once && rt->phase != RT_STOPPING) {
                size_t failed = gp_dispatch_failures(rt->dispatch);
                if (failed) {
                    gp_warn("core", "%zu command(s) failed or got no answer (see gridpilot tasks)",
                            failed);
                    rt->exit_code = 1;
                }
                size_t p = gp_dispatch_pending_tasks(rt->dispatch);
                if (p)
                    gp_info("core", "%zu vendor task(s) still pending; the next run polls them", p);
            }
            finish(rt);
            return;
        }
    }
    /* Short period while waiting to exit, relaxed otherwise. */
    double period = rt->o.once || rt->phase == RT_STOPPING ? 0.1 : 1.0;
    rt->sweep_timer = gp_timer_start(period, sweep_cb, rt);
}

static void on_ready(struct gp_rt *rt)
{
    rt->ready = 1;
    gp_site site;
    gp_fleet_refresh_online(rt->fleet, gp_now_ms());
    gp_fleet_site(rt->fleet, &site);
    gp_info("core", "ready: %u device(s), %u online; %s", site.devices, site.online,
            rt->o.dry_run ? "DRY RUN: commands are journaled and printed, never sent"
                          : "dispatching");
    if (rt->phase != RT_RUNNING || rt->virt) return;
    if (rt->o.once) {
        do_tick(rt, gp_now_ms());
        rt->deadline =
            gp_timer_start((double)rt->cfg->command_timeout_ms / 1000.0 + 5, deadline_cb, rt);
        return;
    }
    rt->tick_timer = gp_timer_start(0, tick_cb, rt);
}

static void ready_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->ready_timer = NULL;
    gp_timer_stop(rt->startup_timer);
    rt->startup_timer = NULL;
    on_ready(rt);
}

/* Every adapter found its devices and read them once (or failed): the first tick may run.
 * From the loop, never from inside the plugin call that settled the last adapter. */
static void check_ready(struct gp_rt *rt)
{
    if (rt->ready || rt->ready_timer) return;
    for (size_t i = 0; i < rt->n_ad; i++)
        if (!rt->settled[i]) return;
    rt->ready_timer = gp_timer_start(0, ready_cb, rt);
}

/* An adapter whose discovery or first read makes no progress (nothing sent, nothing
 * answered, no request waiting for its quota) for a command timeout must not hold the others
 * back. Slow is fine: a large Huawei account discovers one page of plants per minute. */
static void startup_deadline_cb(void *ud)
{
    struct gp_rt *rt = ud;
    rt->startup_timer = NULL;
    int64_t now = gp_now_ms(), limit = rt->cfg->command_timeout_ms;
    int waiting = 0;
    for (size_t i = 0; i < rt->n_ad; i++) {
        if (rt->settled[i]) continue;
        if (rt->ad[i] && !gp_adapter_stalled(rt->ad[i], now, limit)) {
            waiting = 1;
            continue;
        }
        gp_warn(rt->cfg->adapters[i].id,
                "no progress for a while and no devices read yet; starting without it (it "
                "joins when it answers)");
        rt->settled[i] = 1;
        if (rt->o.once) rt->exit_code = 1;
    }
    if (waiting)
        rt->startup_timer = gp_timer_start((double)limit / 4000.0, startup_deadline_cb, rt);
    check_ready(rt);
}

static void after_discovery(void *ud)
{
    gp_hctx *h = ud;
    struct gp_rt *rt = h->rt;
    h->settle_timer = NULL;
    if (rt->phase == RT_DONE) return;
    if (h->state == GP_AD_READY) {
        gp_dispatch_restore(rt->dispatch, h->index, gp_now_ms());
        if (rt->virt) {
            gp_adapter_read_all(h); /* the first reading; the driver reads at every step */
        } else if (rt->phase == RT_RUNNING) {
            gp_adapter_begin_polling(h);
        }
        return;
    }
    if (rt->o.once)
        rt->exit_code = 1;
    else if (rt->phase == RT_RUNNING)
        gp_adapter_retry_discovery(h);
    rt->settled[h->index] = 1;
    check_ready(rt);
}

void gp_rt_adapter_discovered(struct gp_rt *rt, struct gp_hctx *h, int ok)
{
    (void)rt;
    (void)ok; /* h->state says it */
    /* Restoring sends commands: do it from the loop, not inside the plugin's discover(). */
    gp_timer_stop(h->settle_timer);
    h->settle_timer = gp_timer_start(0, after_discovery, h);
}

void gp_rt_adapter_read(struct gp_rt *rt, struct gp_hctx *h)
{
    rt->settled[h->index] = 1;
    check_ready(rt);
}

/* ---- reload (SIGHUP) -------------------------------------------------------------------- */

static gp_strategy *load_strategy(const gp_config *c, char *err, size_t len)
{
    gp_strategy_opts so = {c->strategy_file, c->strategy_params, c->strategy_timeout_ms,
                           c->strategy_memory};
    return gp_strategy_load(&so, err, len);
}

static void reload(struct gp_rt *rt)
{
    gp_info("core", "SIGHUP: reloading the strategy and tariff from %s", rt->cfg->path);
    gp_diag d = {0};
    gp_config *c = gp_config_load(rt->cfg->path, 0, &d);
    if (!c) {
        for (size_t i = 0; i < d.n; i++)
            gp_err("core", "reload refused, keeping the current strategy: %s: %s", rt->cfg->path,
                   d.lines[i]);
        gp_diag_clear(&d);
        return;
    }
    gp_strategy *s = NULL;
    if (c->has_strategy) {
        char err[4096];
        s = load_strategy(c, err, sizeof err);
        if (!s) {
            gp_err("core", "reload refused, keeping the current strategy: %s", err);
            gp_config_free(c);
            return;
        }
    }
    gp_strategy_free(rt->strategy);
    rt->strategy = s;
    rt->metrics = NULL; /* they lived in the old strategy */
    rt->n_metrics = 0;
    gp_tariff_free(rt->tariff);
    rt->tariff = c->tariff; /* read and checked with the config */
    c->tariff = NULL;
    gp_info("core", "strategy %s", s ? "reloaded" : "removed (monitoring only)");
    gp_config_free(c);
}

/* ---- run ------------------------------------------------------------------------------ */

static void free_rt(struct gp_rt *rt)
{
    /* Results that arrived in the last loop iteration, while every adapter is still open. */
    if (rt->deferred) gp_deferred_apply(rt->deferred);
    for (size_t i = 0; i < rt->n_ad; i++) {
        gp_hctx *h = rt->ad[i];
        rt->ad[i] = NULL; /* nothing is sent to an adapter being closed */
        gp_adapter_close(h);
    }
    /* What plugins reported or stored while closing still reaches the journal. */
    gp_deferred_free(rt->deferred);
    gp_timer_stop_all();
    free(rt->ad);
    free(rt->settled);
    gp_http_free(rt->http);
    gp_dispatch_free(rt->dispatch);
    gp_strategy_free(rt->strategy);
    gp_tariff_free(rt->tariff);
    gp_journal_close(rt->journal);
    gp_fleet_free(rt->fleet);
    gp_config_free(rt->cfg);
    ev_signal_stop(gp_loop(), &rt->sig_int);
    ev_signal_stop(gp_loop(), &rt->sig_term);
    ev_signal_stop(gp_loop(), &rt->sig_hup);
}

/* Build the runtime from a loaded config (taken): strategy, tariff, journal, fleet,
 * dispatcher and adapters. NULL with *code set (the reason printed) on failure. */
static struct gp_rt *rt_open(gp_config *cfg, const gp_run_opts *o, int *code)
{
    struct gp_rt *rt = gp_xcalloc(1, sizeof *rt);
    rt->o = *o;
    rt->cfg = cfg;
    rt->virt = o->virt;
    gp_diag d = {0};
    setenv("TZ", rt->cfg->timezone, 1);
    tzset();

    char err[4096];
    if (rt->cfg->has_strategy && !o->no_strategy &&
        !(rt->strategy = load_strategy(rt->cfg, err, sizeof err))) {
        fprintf(stderr, "%s: strategy.file: %s\n", o->config, err);
        gp_config_free(rt->cfg);
        free(rt);
        *code = 2;
        return NULL;
    }
    rt->tariff = rt->cfg->tariff;
    rt->cfg->tariff = NULL;

    /* Before the adapters: plugins may read their persisted state when created. */
    const char *state_dir = o->state_dir ? o->state_dir : rt->cfg->state_dir;
    if (!o->state_dir && !gp_path_dir_usable(state_dir, err, sizeof err)) {
        /* The config's fault, said as `check` says it: exit 2, not a runtime failure. */
        fprintf(stderr, "%s: state_dir: journal folder cannot be used: %s\n", o->config, err);
        *code = 2;
    } else if (!(rt->journal = gp_journal_open(state_dir, 0, err, sizeof err))) {
        gp_err("core", "cannot open the journal: %s", err);
        *code = 1;
    }
    if (!rt->journal) {
        gp_strategy_free(rt->strategy);
        gp_tariff_free(rt->tariff);
        gp_config_free(rt->cfg);
        free(rt);
        return NULL;
    }
    /* A simulation's journal is started afresh every time: nothing to make durable. */
    if (o->virt) gp_journal_set_volatile(rt->journal);
    /* Vendors refuse a request id they have seen (Huawei 20048), and they remember ids a
     * wiped state_dir or a second installation on the same account forgets. Starting each
     * process above the wall clock in ms keeps ids unique as long as fewer than one is used
     * per millisecond on average, far above any vendor quota. */
    gp_journal_seq_floor(rt->journal, "request_id", (uint64_t)gp_wall_ms());
    rt->fleet = gp_fleet_new();
    rt->n_ad = rt->cfg->n_adapters;
    rt->ad = gp_xcalloc(rt->n_ad ? rt->n_ad : 1, sizeof(gp_hctx *));
    rt->settled = gp_xcalloc(rt->n_ad ? rt->n_ad : 1, 1);
    for (size_t i = 0; i < rt->n_ad; i++) {
        const gp_adapter_cfg *ac = &rt->cfg->adapters[i];
        /* Telemetry is stale after three missed polls (at least 30 s). */
        int64_t stale = 3 * ac->poll_ms > 30000 ? 3 * ac->poll_ms : 30000;
        if (o->virt && stale < 3 * o->step_ms) stale = 3 * o->step_ms;
        gp_fleet_add_adapter(rt->fleet, ac->id, stale);
    }
    gp_dispatch_opts dopts = {
        .dry_run = o->dry_run,
        .site_import_w = rt->cfg->site_import_w,
        .site_export_w = rt->cfg->site_export_w,
        .max_attempts = rt->cfg->max_attempts,
        .command_timeout_ms = rt->cfg->command_timeout_ms,
        .max_task_age_ms = rt->cfg->max_task_age_ms,
    };
    gp_dispatch_io io = {rt,       io_send,         io_poll,   io_login, io_flags, io_task_poll_ms,
                         io_fatal, io_replace_busy, io_waiting};
    rt->dispatch = gp_dispatch_new(rt->fleet, rt->journal, &dopts, &io);
    rt->deferred = gp_deferred_new(rt->dispatch, rt->journal);
    rt->http = gp_http_new(gp_loop());

    /* Plugins may read their persisted state (kv) when created. */
    char **path = gp_loader_search_path(rt->cfg->plugin_path, rt->cfg->n_plugin_path);
    for (size_t i = 0; i < rt->n_ad; i++)
        rt->ad[i] = gp_adapter_open(rt, (unsigned)i, &rt->cfg->adapters[i], rt->cfg->dir, path, &d);
    gp_loader_free_path(path);
    if (d.n) {
        gp_diag_print(&d, o->config);
        gp_diag_clear(&d);
        free_rt(rt);
        free(rt);
        *code = 2;
        return NULL;
    }
    return rt;
}

static void log_journal_counts(struct gp_rt *rt)
{
    uint64_t counts[GP_JS_COUNT];
    if (gp_journal_count(rt->journal, counts) == 0)
        gp_info("core",
                "stopped after %llu tick(s); journal: %llu pending, %llu accepted, "
                "%llu done, %llu failed",
                (unsigned long long)rt->ticks, (unsigned long long)counts[GP_JS_PENDING],
                (unsigned long long)counts[GP_JS_ACCEPTED], (unsigned long long)counts[GP_JS_DONE],
                (unsigned long long)counts[GP_JS_FAILED]);
}

int gp_daemon_run(const gp_run_opts *o)
{
    gp_config *cfg = gp_config_load_reported(o->config);
    if (!cfg) return 2;
    signal(SIGPIPE, SIG_IGN);
    int code = 0;
    struct gp_rt *rt = rt_open(cfg, o, &code);
    if (!rt) return code;

    if (rt->cfg->has_api)
        gp_warn("core", "api: the HTTP API is not part of this version yet; ignoring it");
    if (!rt->strategy) gp_warn("core", "no strategy configured: monitoring only");

    ev_signal_init(&rt->sig_int, signal_cb, SIGINT);
    ev_signal_init(&rt->sig_term, signal_cb, SIGTERM);
    ev_signal_init(&rt->sig_hup, signal_cb, SIGHUP);
    rt->sig_int.data = rt->sig_term.data = rt->sig_hup.data = rt;
    ev_signal_start(gp_loop(), &rt->sig_int);
    ev_signal_start(gp_loop(), &rt->sig_term);
    ev_signal_start(gp_loop(), &rt->sig_hup);
    /* Signals should not keep the loop alive on their own. */
    ev_unref(gp_loop());
    ev_unref(gp_loop());
    ev_unref(gp_loop());

    gp_info("core", "gridpilot %s: site '%s', %zu adapter(s), journal %s%s", GP_VERSION,
            rt->cfg->site, rt->n_ad, gp_journal_path(rt->journal), o->dry_run ? ", dry run" : "");
    rt->phase = RT_RUNNING;
    for (size_t i = 0; i < rt->n_ad; i++)
        gp_adapter_start(rt->ad[i]);
    rt->sweep_timer = gp_timer_start(1.0, sweep_cb, rt);
    rt->startup_timer =
        gp_timer_start((double)rt->cfg->command_timeout_ms / 1000.0, startup_deadline_cb, rt);
    if (o->for_ms > 0) rt->for_timer = gp_timer_start((double)o->for_ms / 1000.0, for_cb, rt);

    ev_run(gp_loop(), 0);

    ev_ref(gp_loop());
    ev_ref(gp_loop());
    ev_ref(gp_loop());
    code = rt->exit_code;
    log_journal_counts(rt);
    free_rt(rt);
    free(rt);
    return code;
}

/* ---- virtual driver (simulate) ---------------------------------------------------------- */

struct gp_rt *gp_rt_open_virtual(gp_config *cfg, const gp_run_opts *o, int *code)
{
    gp_run_opts v = *o;
    v.virt = 1;
    return rt_open(cfg, &v, code);
}

int gp_rt_start_virtual(struct gp_rt *rt)
{
    rt->phase = RT_RUNNING;
    for (size_t i = 0; i < rt->n_ad; i++)
        gp_adapter_start(rt->ad[i]);
    /* Discovery and the first reads complete on timers due now (or after a plugin's
     * latency): advance in small steps until every adapter has settled, at most a minute. */
    int64_t t0 = gp_now_ms();
    for (int64_t t = t0; !rt->ready && t <= t0 + 60000; t += 100)
        gp_clock_advance(t);
    return rt->ready && rt->exit_code == 0 ? 0 : -1;
}

void gp_rt_step_read(struct gp_rt *rt)
{
    for (size_t i = 0; i < rt->n_ad; i++)
        if (rt->ad[i] && rt->ad[i]->state == GP_AD_READY) gp_adapter_read_all(rt->ad[i]);
    gp_clock_advance(gp_now_ms());
}

int gp_rt_step_tick(struct gp_rt *rt, int64_t now)
{
    /* A simulated day's final commands leave the journal a day later: a year of 1,000
     * devices would be a hundred million rows. */
    if (!rt->pruned_ms) rt->pruned_ms = now;
    if (now - rt->pruned_ms >= 86400000) {
        gp_journal_prune(rt->journal, now - 86400000);
        rt->pruned_ms = now;
    }
    do_tick(rt, now);
    gp_clock_advance(now);
    gp_dispatch_sweep(rt->dispatch, now);
    gp_clock_advance(now);
    return rt->exit_code;
}

gp_fleet *gp_rt_fleet_of(struct gp_rt *rt)
{
    return rt->fleet;
}

const gp_tariff *gp_rt_tariff(const struct gp_rt *rt)
{
    return rt->tariff;
}

int gp_rt_has_strategy(const struct gp_rt *rt)
{
    return rt->strategy != NULL;
}

uint64_t gp_rt_strategy_failures(const struct gp_rt *rt)
{
    return rt->strategy_failures;
}

const gp_metric *gp_rt_metrics(const struct gp_rt *rt, size_t *n)
{
    *n = rt->n_metrics;
    return rt->metrics;
}

void gp_rt_close(struct gp_rt *rt)
{
    if (!rt) return;
    log_journal_counts(rt);
    free_rt(rt);
    free(rt);
}
