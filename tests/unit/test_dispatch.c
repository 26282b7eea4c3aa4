/* Dispatch: validation, clamping, de-duplication, queueing behind tasks, results, retries,
 * login replay, polling, expiry, dry run and restore — against a real journal and a fake
 * adapter layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "fleet.h"
#include "journal.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

typedef struct sent_cmd {
    unsigned adapter;
    gp_cmd cmd;
    char vendor[32];
} sent_cmd;

typedef struct fx {
    char dir[64];
    gp_fleet *fleet;
    gp_journal *j;
    gp_dispatch *d;
    sent_cmd sent[256];
    size_t n_sent, send_calls;
    gp_task polled[64];
    char refs[64][32];
    size_t n_polled, poll_calls;
    int logins, fatal, replace, waiting;
    uint32_t flags[2];
} fx;

enum { AD_A = 0, AD_H = 1 }; /* a: synchronous vendor; h: tasks + native duration */

static void io_send(void *ud, unsigned a, const gp_cmd *cmds, size_t n)
{
    fx *f = ud;
    f->send_calls++;
    for (size_t i = 0; i < n; i++) {
        sent_cmd *s = &f->sent[f->n_sent++];
        s->adapter = a;
        s->cmd = cmds[i];
        snprintf(s->vendor, sizeof s->vendor, "%s", cmds[i].target.vendor_id);
    }
}

static void io_poll(void *ud, unsigned a, const gp_task *t, size_t n)
{
    fx *f = ud;
    f->poll_calls++;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->refs[f->n_polled], 32, "%s", t[i].vendor_ref);
        f->polled[f->n_polled] = t[i];
        f->polled[f->n_polled].vendor_ref = f->refs[f->n_polled];
        f->n_polled++;
    }
}

static int io_login(void *ud, unsigned a)
{
    ((fx *)ud)->logins++;
    return 0;
}

static uint32_t io_flags(void *ud, unsigned a)
{
    return ((fx *)ud)->flags[a];
}

static int64_t io_poll_ms(void *ud, unsigned a)
{
    return 180000; /* Huawei-like: every 3 minutes */
}

static int io_waiting(void *ud, unsigned a)
{
    return ((fx *)ud)->waiting;
}

static int io_replace(void *ud, unsigned a)
{
    return ((fx *)ud)->replace;
}

static void io_fatal(void *ud, const char *why)
{
    ((fx *)ud)->fatal++;
}

static void add_dev(fx *f, unsigned ad, const char *vendor, uint32_t caps, double cap_wh)
{
    gp_device_info info = {.size = sizeof info,
                           .vendor_id = vendor,
                           .caps = caps,
                           .capacity_wh = cap_wh,
                           .max_charge_w = 5000,
                           .max_discharge_w = 5000,
                           .soc_min_pct = 10,
                           .soc_max_pct = 95};
    char err[100];
    int64_t idx = gp_fleet_add(f->fleet, ad, &info, NULL, err, sizeof err);
    assert_true(idx >= 0);
    gp_reading r = {.size = sizeof r,
                    .online = 1,
                    .soc_pct = 50,
                    .battery_w = 0,
                    .pv_w = 0,
                    .load_w = 0,
                    .grid_w = 0,
                    .capacity_wh = NAN,
                    .max_charge_w = NAN,
                    .max_discharge_w = NAN,
                    .soc_min_pct = NAN,
                    .soc_max_pct = NAN};
    gp_fleet_reading(f->fleet, (size_t)idx, &r, T0);
}

static gp_dispatch *new_dispatch_limits(fx *f, int dry_run, double import_limit,
                                        double export_limit)
{
    gp_dispatch_opts o = {.dry_run = dry_run,
                          .site_import_w = import_limit,
                          .site_export_w = export_limit,
                          .max_attempts = 3,
                          .command_timeout_ms = 120000};
    gp_dispatch_io io = {f,          io_send,  io_poll,    io_login,  io_flags,
                         io_poll_ms, io_fatal, io_replace, io_waiting};
    return gp_dispatch_new(f->fleet, f->j, &o, &io);
}

static gp_dispatch *new_dispatch(fx *f, int dry_run, double import_limit)
{
    return new_dispatch_limits(f, dry_run, import_limit, INFINITY);
}

static void build(fx *f)
{
    f->fleet = gp_fleet_new();
    gp_fleet_add_adapter(f->fleet, "a", 60000);
    gp_fleet_add_adapter(f->fleet, "h", 60000);
    uint32_t all = GP_CAP_READ | GP_CAP_WRITE_MASK;
    add_dev(f, AD_A, "b1", all, 10000);
    add_dev(f, AD_A, "b2", all, 10000);
    add_dev(f, AD_A, "b3", all, 10000);
    add_dev(f, AD_A, "pv", GP_CAP_READ | GP_CAP_SETPOINT, 0);
    add_dev(f, AD_H, "p1", all, 10000);
    add_dev(f, AD_H, "p2", all, 10000);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/gp-dispatch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    f->j = gp_journal_open(f->dir, 0, err, sizeof err);
    assert_non_null(f->j);
    f->flags[AD_A] = 0;
    f->flags[AD_H] = GP_PF_TASKS | GP_PF_NATIVE_DURATION;
    build(f);
    f->d = new_dispatch(f, 0, INFINITY);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    gp_dispatch_free(f->d);
    gp_fleet_free(f->fleet);
    gp_journal_close(f->j);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static gp_intent sp(const char *dev, double w)
{
    return (gp_intent){.device = dev, .fields = GP_IF_SETPOINT, .setpoint_w = w};
}

static gp_intent rel(const char *dev)
{
    return (gp_intent){.device = dev, .fields = GP_IF_RELEASE, .release = 1};
}

static gp_submit_result submit1(fx *f, gp_intent in, int64_t now)
{
    gp_submit_result r;
    gp_dispatch_submit(f->d, &in, 1, "strategy", now, &r, NULL);
    return r;
}

static void answer(fx *f, uint64_t id, gp_status st, int code, int retryable, const char *ref,
                   int64_t now)
{
    gp_result r = {.size = sizeof r,
                   .status = st,
                   .code = code,
                   .retryable = retryable,
                   .message = st == GP_FAILED ? "vendor said no" : NULL,
                   .vendor_ref = ref,
                   .energy_wh = NAN};
    gp_dispatch_command_result(f->d, id, &r, now);
}

static void task(fx *f, uint64_t id, gp_status st, double energy, int64_t now)
{
    gp_result r = {.size = sizeof r, .status = st, .energy_wh = energy};
    gp_dispatch_task_result(f->d, id, &r, now);
}

typedef struct row {
    int found;
    gp_jstate state;
    uint32_t attempts;
    char ref[32], error[200], origin[16];
    double value, energy;
} row;

static int grab(void *ud, const gp_jrow *r)
{
    row *o = ud;
    o->found = 1;
    o->state = r->state;
    o->attempts = r->attempts;
    o->value = r->value;
    o->energy = r->energy_wh;
    snprintf(o->ref, sizeof o->ref, "%s", r->vendor_ref ? r->vendor_ref : "");
    snprintf(o->error, sizeof o->error, "%s", r->error ? r->error : "");
    snprintf(o->origin, sizeof o->origin, "%s", r->origin ? r->origin : "");
    return 0;
}

static row get(fx *f, uint64_t id)
{
    row o = {0};
    assert_int_equal(gp_journal_get(f->j, id, grab, &o), 1);
    return o;
}

static gp_slot *slot(fx *f, const char *dev)
{
    int64_t i = gp_fleet_find(f->fleet, dev);
    assert_true(i >= 0);
    return &gp_fleet_dev(f->fleet, (size_t)i)->slot[GP_SLOT_DISPATCH];
}

static size_t count_rows(fx *f)
{
    uint64_t c[GP_JS_COUNT];
    assert_int_equal(gp_journal_count(f->j, c), 0);
    size_t n = 0;
    for (int i = 0; i < GP_JS_COUNT; i++)
        n += c[i];
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void sends_then_accepts(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("a/b1", -3000), T0);
    assert_int_equal(r.outcome, GP_SUBMIT_SENT);
    assert_int_equal(f->n_sent, 1);
    assert_string_equal(f->sent[0].vendor, "b1");
    assert_int_equal(f->sent[0].cmd.kind, GP_CMD_SETPOINT);
    assert_true(f->sent[0].cmd.value == -3000);
    assert_int_equal(f->sent[0].cmd.attempt, 1);
    assert_int_equal(f->sent[0].cmd.id, r.id);
    row w = get(f, r.id);
    assert_int_equal(w.state, GP_JS_SENT);
    assert_int_equal(w.attempts, 1);
    assert_string_equal(w.origin, "strategy");
    assert_int_equal(gp_dispatch_unsettled(f->d), 1);
    answer(f, r.id, GP_DONE, 0, 0, NULL, T0 + 100);
    assert_int_equal(get(f, r.id).state, GP_JS_ACCEPTED);
    assert_int_equal(slot(f, "a/b1")->state, GP_JS_ACCEPTED);
    assert_int_equal(slot(f, "a/b1")->id, r.id);
    assert_int_equal(gp_dispatch_unsettled(f->d), 0);
    /* A late duplicate answer changes nothing. */
    answer(f, r.id, GP_FAILED, GP_E_REJECTED, 0, NULL, T0 + 200);
    assert_int_equal(get(f, r.id).state, GP_JS_ACCEPTED);
}

static void clamps_to_limits(void **state)
{
    fx *f = *state;
    gp_intent in[3] = {sp("a/b1", -8000), sp("a/pv", -100), sp("a/b2", 1000)};
    in[2].fields |= GP_IF_SOC_TARGET;
    in[2].soc_target = 5;
    gp_submit_result r[3];
    gp_submit_stats st;
    gp_dispatch_submit(f->d, in, 3, "strategy", T0, r, &st);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.clamped, 3);
    assert_true(f->sent[0].cmd.value == -5000);
    assert_non_null(strstr(r[0].message, "max_charge_w"));
    assert_true(f->sent[1].cmd.value == 0);
    assert_non_null(strstr(r[1].message, "PV output cap"));
    assert_true(f->sent[2].cmd.soc_target == 10);
    assert_non_null(strstr(r[2].message, "soc_target 5.0% clamped to 10.0%"));
}

static void refuses_invalid(void **state)
{
    fx *f = *state;
    gp_intent in[6] = {
        sp("a/nope", -1000),
        {.device = "a/pv", .fields = GP_IF_DOD, .dod = 20},
        {.device = "a/b1", .fields = GP_IF_SETPOINT | GP_IF_DOD, .setpoint_w = 1, .dod = 2},
        {.device = "a/b1", .fields = GP_IF_DURATION, .duration_s = 60},
        sp("a/b1", NAN),
        {.device = "a/b1", .error = "command 6: unknown key 'setpiont_w'"},
    };
    gp_submit_result r[6];
    gp_submit_stats st;
    assert_int_equal(gp_dispatch_submit(f->d, in, 6, "strategy", T0, r, &st), 0);
    assert_int_equal(st.invalid, 6);
    assert_int_equal(f->n_sent, 0);
    assert_int_equal(count_rows(f), 0);
    assert_non_null(strstr(r[0].message, "unknown device 'a/nope'"));
    assert_non_null(strstr(r[1].message, "no dod capability"));
    assert_non_null(strstr(r[2].message, "exactly one of"));
    assert_non_null(strstr(r[3].message, "exactly one of"));
    assert_non_null(strstr(r[4].message, "finite"));
    assert_non_null(strstr(r[5].message, "setpiont_w"));
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].outcome, GP_SUBMIT_INVALID);
}

static int last_note(void *ud, gp_jstate st, int64_t at_ms, const char *note)
{
    (void)st, (void)at_ms;
    snprintf(ud, 200, "%s", note ? note : "");
    return 0;
}

static void drops_identical(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r.id, GP_DONE, 0, 0, NULL, T0);
    assert_int_equal(submit1(f, sp("a/b1", -3000), T0 + 1000).outcome, GP_SUBMIT_UNCHANGED);
    assert_int_equal(submit1(f, sp("a/b1", -3000.3), T0 + 2000).outcome, GP_SUBMIT_UNCHANGED);
    assert_int_equal(f->n_sent, 1);
    /* Nothing in force: a release has nothing to do. */
    assert_int_equal(submit1(f, rel("a/b2"), T0).outcome, GP_SUBMIT_UNCHANGED);
    /* A different value goes out and supersedes the first. */
    gp_submit_result r2 = submit1(f, sp("a/b1", -3100), T0 + 3000);
    assert_int_equal(r2.outcome, GP_SUBMIT_SENT);
    answer(f, r2.id, GP_DONE, 0, 0, NULL, T0 + 3100);
    row w = get(f, r.id);
    assert_int_equal(w.state, GP_JS_DONE);
    char want[64];
    snprintf(want, sizeof want, "superseded by #%llu", (unsigned long long)r2.id);
    assert_int_equal(count_rows(f), 2);
    /* The superseded command's last transition note says why. */
    char note[200] = "";
    assert_true(gp_journal_history(f->j, r.id, last_note, note) > 0);
    assert_string_equal(note, want);
    assert_int_equal(slot(f, "a/b1")->id, r2.id);
}

static void failure_restores_previous(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r1.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result r2 = submit1(f, sp("a/b1", 2000), T0 + 1000);
    answer(f, r2.id, GP_FAILED, GP_E_REJECTED, 0, NULL, T0 + 1100);
    row w2 = get(f, r2.id);
    assert_int_equal(w2.state, GP_JS_FAILED);
    assert_string_equal(w2.error, "vendor said no");
    /* The vendor still runs the first command: it is in force again. */
    assert_int_equal(slot(f, "a/b1")->id, r1.id);
    assert_int_equal(slot(f, "a/b1")->state, GP_JS_ACCEPTED);
    assert_int_equal(get(f, r1.id).state, GP_JS_ACCEPTED);
    assert_int_equal(submit1(f, sp("a/b1", -3000), T0 + 2000).outcome, GP_SUBMIT_UNCHANGED);
}

static void retries_with_backoff(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r.id, GP_FAILED, GP_E_TRANSPORT, 1, NULL, T0);
    row w = get(f, r.id);
    assert_int_equal(w.state, GP_JS_QUEUED);
    assert_non_null(strstr(w.error, "retrying in"));
    gp_dispatch_sweep(f->d, T0 + 500); /* backoff is at least 1.5 s */
    assert_int_equal(f->n_sent, 1);
    gp_dispatch_sweep(f->d, T0 + 70000);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.attempt, 2);
    assert_int_equal(f->sent[1].cmd.id, r.id);
    answer(f, r.id, GP_FAILED, GP_E_TRANSPORT, 1, NULL, T0 + 70000);
    gp_dispatch_sweep(f->d, T0 + 200000);
    assert_int_equal(f->n_sent, 3);
    answer(f, r.id, GP_FAILED, GP_E_TRANSPORT, 1, NULL, T0 + 200000);
    /* max_attempts (3) used up. */
    w = get(f, r.id);
    assert_int_equal(w.state, GP_JS_FAILED);
    assert_int_equal(w.attempts, 3);
    gp_dispatch_sweep(f->d, T0 + 900000);
    assert_int_equal(f->n_sent, 3);
}

static void queues_behind_running_task(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    answer(f, r1.id, GP_PENDING, 0, 0, "req-7", T0 + 100);
    row w = get(f, r1.id);
    assert_int_equal(w.state, GP_JS_PENDING);
    assert_string_equal(w.ref, "req-7");
    /* Never a second task on a device whose task still runs: the newest command waits. */
    gp_submit_result r2 = submit1(f, sp("h/p1", 3000), T0 + 1000);
    assert_int_equal(r2.outcome, GP_SUBMIT_QUEUED);
    gp_submit_result r3 = submit1(f, sp("h/p1", 2000), T0 + 2000);
    assert_int_equal(r3.outcome, GP_SUBMIT_QUEUED);
    assert_int_equal(f->n_sent, 1);
    assert_int_equal(get(f, r2.id).state, GP_JS_CANCELLED);
    assert_non_null(strstr(get(f, r2.id).error, "superseded"));
    /* Asking again for what is queued changes nothing. */
    assert_int_equal(submit1(f, sp("h/p1", 2000), T0 + 3000).outcome, GP_SUBMIT_UNCHANGED);
    task(f, r1.id, GP_DONE, 1234.5, T0 + 300000);
    row d1 = get(f, r1.id);
    assert_int_equal(d1.state, GP_JS_DONE);
    assert_true(d1.energy == 1234.5);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.id, r3.id);
    assert_int_equal(get(f, r3.id).state, GP_JS_SENT);
}

static void release_stops_task(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    answer(f, r1.id, GP_PENDING, 0, 0, "req-8", T0);
    gp_submit_result r2 = submit1(f, rel("h/p1"), T0 + 1000);
    assert_int_equal(r2.outcome, GP_SUBMIT_SENT);
    answer(f, r2.id, GP_DONE, 0, 0, NULL, T0 + 1100);
    row w = get(f, r1.id);
    assert_int_equal(w.state, GP_JS_CANCELLED);
    assert_non_null(strstr(w.error, "stopped by release"));
    assert_int_equal(get(f, r2.id).state, GP_JS_DONE);
    assert_int_equal(slot(f, "h/p1")->id, 0); /* nothing in force */
    assert_int_equal(gp_dispatch_pending_tasks(f->d), 0);
}

static void polls_by_vendor_ref(void **state)
{
    fx *f = *state;
    gp_intent in[2] = {sp("h/p1", -4000), sp("h/p2", -4000)};
    gp_submit_result r[2];
    gp_dispatch_submit(f->d, in, 2, "strategy", T0, r, NULL);
    assert_int_equal(f->send_calls, 1); /* one batch for the adapter */
    answer(f, r[0].id, GP_PENDING, 0, 0, "req-9", T0);
    answer(f, r[1].id, GP_PENDING, 0, 0, "req-9", T0);
    gp_dispatch_sweep(f->d, T0 + 60000);
    assert_int_equal(f->poll_calls, 0); /* the 3-minute cadence */
    gp_dispatch_sweep(f->d, T0 + 180000);
    assert_int_equal(f->poll_calls, 1);
    assert_int_equal(f->n_polled, 2);
    assert_string_equal(f->refs[0], "req-9");
    task(f, r[0].id, GP_PENDING, NAN, T0 + 180000);
    task(f, r[1].id, GP_TIMEOUT, NAN, T0 + 180000);
    assert_int_equal(get(f, r[1].id).state, GP_JS_TIMEOUT);
    /* Still polling the first, not before its next turn. */
    gp_dispatch_sweep(f->d, T0 + 200000);
    assert_int_equal(f->poll_calls, 1);
    gp_dispatch_sweep(f->d, T0 + 360000);
    assert_int_equal(f->poll_calls, 2);
    assert_int_equal(f->polled[2].cmd_id, r[0].id);
}

static void login_then_one_replay(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r.id, GP_FAILED, GP_E_AUTH, 0, NULL, T0);
    assert_int_equal(f->logins, 1);
    assert_int_equal(f->n_sent, 1);
    gp_dispatch_login_done(f->d, AD_A, 1, NULL, T0 + 10);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.attempt, 1); /* a replay, not a new attempt */
    answer(f, r.id, GP_FAILED, GP_E_AUTH, 0, NULL, T0 + 20);
    assert_int_equal(f->logins, 1); /* never loops on logins */
    assert_int_equal(get(f, r.id).state, GP_JS_FAILED);
}

static void times_out_without_answer(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r1.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result r2 = submit1(f, sp("a/b1", 1000), T0 + 1000);
    gp_dispatch_sweep(f->d, T0 + 60000);
    assert_int_equal(get(f, r2.id).state, GP_JS_SENT);
    gp_dispatch_sweep(f->d, T0 + 122000);
    row w = get(f, r2.id);
    assert_int_equal(w.state, GP_JS_TIMEOUT);
    assert_non_null(strstr(w.error, "no answer"));
    assert_int_equal(slot(f, "a/b1")->id, 0); /* unknown: see timeout_leaves_state_unknown */
}

static void duration_expiry(void **state)
{
    fx *f = *state;
    /* Core-timed: the core releases when the duration runs out. */
    gp_intent in = sp("a/b1", -3000);
    in.fields |= GP_IF_DURATION;
    in.duration_s = 60;
    gp_submit_result r = submit1(f, in, T0);
    answer(f, r.id, GP_DONE, 0, 0, NULL, T0);
    gp_dispatch_sweep(f->d, T0 + 30000);
    assert_int_equal(f->n_sent, 1);
    /* Re-asserting it extends it, without a send. */
    assert_int_equal(submit1(f, in, T0 + 30000).outcome, GP_SUBMIT_UNCHANGED);
    gp_dispatch_sweep(f->d, T0 + 80000);
    assert_int_equal(f->n_sent, 1);
    gp_dispatch_sweep(f->d, T0 + 91000);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.kind, GP_CMD_RELEASE);
    row w = get(f, f->sent[1].cmd.id);
    assert_string_equal(w.origin, "expiry");
    answer(f, f->sent[1].cmd.id, GP_DONE, 0, 0, NULL, T0 + 91100);
    assert_int_equal(get(f, r.id).state, GP_JS_DONE);

    /* Vendor-timed: the core only records the end. */
    gp_intent hin = sp("h/p1", -3000);
    hin.fields |= GP_IF_DURATION;
    hin.duration_s = 60;
    gp_submit_result h = submit1(f, hin, T0);
    answer(f, h.id, GP_DONE, 0, 0, NULL, T0);
    size_t before = f->n_sent;
    gp_dispatch_sweep(f->d, T0 + 61000);
    assert_int_equal(f->n_sent, before);
    row hw = get(f, h.id);
    assert_int_equal(hw.state, GP_JS_DONE);
    assert_string_equal(hw.error, "");
}

static void dry_run_sends_nothing(void **state)
{
    fx *f = *state;
    gp_dispatch_free(f->d);
    f->d = new_dispatch(f, 1, INFINITY);
    gp_intent in[3] = {sp("a/b1", -3000), sp("h/p1", 2000), rel("a/b2")};
    gp_submit_result r[3];
    gp_submit_stats st;
    gp_dispatch_submit(f->d, in, 3, "strategy", T0, r, &st);
    assert_int_equal(st.dry_run, 2);
    assert_int_equal(st.unchanged, 1);
    assert_int_equal(f->n_sent, 0);
    assert_int_equal(get(f, r[0].id).state, GP_JS_DRY_RUN);
    /* The same decision next tick is not printed again. */
    gp_dispatch_submit(f->d, in, 2, "strategy", T0 + 60000, r, &st);
    assert_int_equal(st.unchanged, 2);
    gp_dispatch_sweep(f->d, T0 + 600000);
    assert_int_equal(f->n_sent + f->poll_calls, 0);
}

static void site_import_limit(void **state)
{
    fx *f = *state;
    gp_dispatch_free(f->d);
    f->d = new_dispatch(f, 0, 4000);
    gp_intent in[2] = {sp("a/b1", -5000), sp("a/b2", -5000)};
    gp_submit_stats st;
    gp_dispatch_submit(f->d, in, 2, "strategy", T0, NULL, &st);
    assert_int_equal(st.sent, 2);
    assert_true(st.clamped >= 2);
    assert_true(fabs(f->sent[0].cmd.value + 2000) < 1e-6);
    assert_true(fabs(f->sent[1].cmd.value + 2000) < 1e-6);
}

static void site_export_limit(void **state)
{
    fx *f = *state;
    gp_dispatch_free(f->d);
    f->d = new_dispatch_limits(f, 0, INFINITY, 4000);
    /* Two batteries discharging 5 kW each into a site with nothing else: 10 kW of export
     * less the 1 kW a third one charges, against a 4 kW limit: the two are scaled to 2.5 kW. */
    gp_intent in[3] = {sp("a/b1", 5000), sp("a/b2", 5000), sp("a/b3", -1000)};
    gp_submit_stats st;
    gp_dispatch_submit(f->d, in, 3, "strategy", T0, NULL, &st);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.clamped, 2);
    assert_true(fabs(f->sent[0].cmd.value - 2500) < 1e-6);
    assert_true(fabs(f->sent[1].cmd.value - 2500) < 1e-6);
    assert_true(fabs(f->sent[2].cmd.value + 1000) < 1e-6);
}

static void last_command_wins(void **state)
{
    fx *f = *state;
    gp_intent in[3] = {sp("a/b1", -1000), sp("a/b2", 500), sp("a/b1", -2000)};
    gp_submit_result r[3];
    gp_dispatch_submit(f->d, in, 3, "strategy", T0, r, NULL);
    assert_int_equal(r[0].outcome, GP_SUBMIT_UNCHANGED);
    assert_non_null(strstr(r[0].message, "overridden"));
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->send_calls, 1);
    assert_true(f->sent[1].cmd.value == -2000);
}

static void settings_use_their_own_slot(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    answer(f, r1.id, GP_PENDING, 0, 0, "req-1", T0);
    /* A DoD change does not wait for the charge task. */
    gp_submit_result r2 =
        submit1(f, (gp_intent){.device = "h/p1", .fields = GP_IF_DOD, .dod = 80}, T0 + 10);
    assert_int_equal(r2.outcome, GP_SUBMIT_SENT);
    answer(f, r2.id, GP_DONE, 0, 0, NULL, T0 + 20);
    assert_int_equal(get(f, r2.id).state, GP_JS_DONE);
    /* And the same DoD again is not re-sent: the setting stays in force. */
    assert_int_equal(
        submit1(f, (gp_intent){.device = "h/p1", .fields = GP_IF_DOD, .dod = 80}, T0 + 30).outcome,
        GP_SUBMIT_UNCHANGED);
}

static void restore_after_restart(void **state)
{
    fx *f = *state;
    /* Previous process: one task pending, one accepted setpoint, one sent without answer, one
     * command queued behind the task. */
    gp_submit_result p = submit1(f, sp("h/p1", -4000), T0);
    answer(f, p.id, GP_PENDING, 0, 0, "req-42", T0);
    gp_submit_result q = submit1(f, sp("h/p1", 1000), T0 + 10);
    assert_int_equal(q.outcome, GP_SUBMIT_QUEUED);
    gp_submit_result a = submit1(f, sp("a/b1", -3000), T0);
    answer(f, a.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result s = submit1(f, sp("a/b2", -3000), T0);
    gp_dispatch_free(f->d);
    gp_fleet_free(f->fleet);

    /* New process: fresh fleet and dispatcher on the same journal. */
    f->n_sent = f->send_calls = f->poll_calls = f->n_polled = 0;
    build(f);
    f->d = new_dispatch(f, 0, INFINITY);
    gp_dispatch_restore(f->d, AD_A, T0 + 60000);
    gp_dispatch_restore(f->d, AD_H, T0 + 60000);
    assert_int_equal(f->n_sent, 0); /* nothing re-sent */
    row ws = get(f, s.id);
    assert_int_equal(ws.state, GP_JS_TIMEOUT);
    assert_non_null(strstr(ws.error, "not re-sent"));
    assert_int_equal(slot(f, "a/b1")->id, a.id);
    assert_int_equal(submit1(f, sp("a/b1", -3000), T0 + 61000).outcome, GP_SUBMIT_UNCHANGED);
    /* The queued command came back too: asking for it again changes nothing. */
    assert_int_equal(submit1(f, sp("h/p1", 1000), T0 + 61000).outcome, GP_SUBMIT_UNCHANGED);
    /* The pending task is polled right away under its old reference. */
    gp_dispatch_sweep(f->d, T0 + 61000);
    assert_int_equal(f->poll_calls, 1);
    assert_string_equal(f->refs[0], "req-42");
    assert_int_equal(f->polled[0].cmd_id, p.id);
    task(f, p.id, GP_DONE, 500, T0 + 62000);
    /* Then the queued command goes out, exactly once. */
    assert_int_equal(f->n_sent, 1);
    assert_int_equal(f->sent[0].cmd.id, q.id);
    assert_int_equal(get(f, p.id).state, GP_JS_DONE);
}

static void release_all_on_exit(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r1.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result r2 = submit1(f, sp("h/p1", -3000), T0);
    answer(f, r2.id, GP_PENDING, 0, 0, "req-3", T0);
    size_t n = gp_dispatch_release_all(f->d, T0 + 1000);
    assert_int_equal(n, 2);
    assert_int_equal(f->n_sent, 4);
    assert_int_equal(f->sent[2].cmd.kind, GP_CMD_RELEASE);
    assert_int_equal(f->sent[3].cmd.kind, GP_CMD_RELEASE);
    assert_string_equal(get(f, f->sent[2].cmd.id).origin, "on_exit");
}

static void release_waits_for_answer_then_stops_task(void **state)
{
    fx *f = *state;
    /* A release decided while the setpoint is still unanswered waits... */
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    gp_submit_result r2 = submit1(f, rel("h/p1"), T0 + 10);
    assert_int_equal(r2.outcome, GP_SUBMIT_QUEUED);
    assert_int_equal(f->n_sent, 1);
    /* ...and goes out as soon as the answer says a vendor task runs. */
    answer(f, r1.id, GP_PENDING, 0, 0, "req-5", T0 + 20);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.kind, GP_CMD_RELEASE);
    assert_true(f->sent[1].cmd.value == 0); /* the ABI's value for a release */
    answer(f, r2.id, GP_DONE, 0, 0, NULL, T0 + 30);
    assert_int_equal(get(f, r1.id).state, GP_JS_CANCELLED);
    assert_int_equal(gp_dispatch_pending_tasks(f->d), 0);
}

static void timeout_leaves_state_unknown(void **state)
{
    fx *f = *state;
    gp_submit_result r1 = submit1(f, sp("a/b1", -3000), T0);
    answer(f, r1.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result r2 = submit1(f, sp("a/b1", 1000), T0 + 1000);
    gp_dispatch_sweep(f->d, T0 + 122000);
    assert_int_equal(get(f, r2.id).state, GP_JS_TIMEOUT);
    /* The vendor may have applied #2: #1 is not assumed in force any more... */
    row w1 = get(f, r1.id);
    assert_int_equal(w1.state, GP_JS_DONE);
    assert_int_equal(slot(f, "a/b1")->id, 0);
    /* ...so the strategy's next decision goes out, even the old value. */
    assert_int_equal(submit1(f, sp("a/b1", -3000), T0 + 123000).outcome, GP_SUBMIT_SENT);
    assert_int_equal(gp_dispatch_failures(f->d), 1);
}

static void native_duration_refreshed(void **state)
{
    fx *f = *state;
    gp_intent in = sp("h/p1", -3000);
    in.fields |= GP_IF_DURATION;
    in.duration_s = 600;
    gp_submit_result r = submit1(f, in, T0);
    answer(f, r.id, GP_DONE, 0, 0, NULL, T0);
    /* Re-asserted early: nothing to do. */
    assert_int_equal(submit1(f, in, T0 + 60000).outcome, GP_SUBMIT_UNCHANGED);
    /* Re-asserted with less than half its time left: sent again so it does not lapse. */
    gp_submit_result r2 = submit1(f, in, T0 + 310000);
    assert_int_equal(r2.outcome, GP_SUBMIT_SENT);
    answer(f, r2.id, GP_DONE, 0, 0, NULL, T0 + 310000);
    assert_int_equal(get(f, r.id).state, GP_JS_DONE);
}

/* busy = "replace": a different command stops the running task, then goes out. */
static void replace_stops_task_first(void **state)
{
    fx *f = *state;
    f->replace = 1;
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    answer(f, r1.id, GP_PENDING, 0, 0, "req-1", T0);
    gp_submit_result r2 = submit1(f, sp("h/p1", 2000), T0 + 1000);
    assert_int_equal(r2.outcome, GP_SUBMIT_QUEUED);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.kind, GP_CMD_RELEASE);
    uint64_t rel = f->sent[1].cmd.id;
    assert_string_equal(get(f, rel).origin, "replace");
    /* Another change while the stop is in flight only replaces what waits. */
    gp_submit_result r3 = submit1(f, sp("h/p1", 3000), T0 + 1500);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(get(f, r2.id).state, GP_JS_CANCELLED);
    answer(f, rel, GP_DONE, 0, 0, NULL, T0 + 2000);
    assert_int_equal(get(f, r1.id).state, GP_JS_CANCELLED);
    assert_int_equal(f->n_sent, 3);
    assert_int_equal(f->sent[2].cmd.id, r3.id);
    assert_true(f->sent[2].cmd.value == 3000);
}

/* A command whose request still waits for the vendor's quota is slow, not lost. */
static void quota_wait_is_not_a_timeout(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("a/b1", -3000), T0);
    f->waiting = 1;
    gp_dispatch_sweep(f->d, T0 + 300000);
    assert_int_equal(get(f, r.id).state, GP_JS_SENT);
    f->waiting = 0;
    gp_dispatch_sweep(f->d, T0 + 360000);
    assert_int_equal(get(f, r.id).state, GP_JS_SENT); /* the timeout restarted at 300 s */
    gp_dispatch_sweep(f->d, T0 + 421000);
    assert_int_equal(get(f, r.id).state, GP_JS_TIMEOUT);
}

/* busy = replace also when the older command only turns out to be a task later. */
static void replace_after_late_pending(void **state)
{
    fx *f = *state;
    f->replace = 1;
    gp_submit_result r1 = submit1(f, sp("h/p1", -4000), T0);
    gp_submit_result r2 = submit1(f, sp("h/p1", 2000), T0 + 100); /* r1 unanswered: waits */
    assert_int_equal(r2.outcome, GP_SUBMIT_QUEUED);
    assert_int_equal(f->n_sent, 1);
    answer(f, r1.id, GP_PENDING, 0, 0, "req-1", T0 + 200);
    assert_int_equal(f->n_sent, 2);
    assert_int_equal(f->sent[1].cmd.kind, GP_CMD_RELEASE);
    answer(f, f->sent[1].cmd.id, GP_DONE, 0, 0, NULL, T0 + 300);
    assert_int_equal(f->n_sent, 3);
    assert_int_equal(f->sent[2].cmd.id, r2.id);
}

/* A vendor task that never ends is given up after max_task_age (48 h). */
static void task_age_limit(void **state)
{
    fx *f = *state;
    gp_submit_result r = submit1(f, sp("h/p1", -4000), T0);
    answer(f, r.id, GP_PENDING, 0, 0, "req-1", T0);
    for (int64_t t = T0; t < T0 + 47LL * 3600000; t += 3600000) {
        gp_dispatch_sweep(f->d, t);
        for (size_t i = 0; i < f->n_polled; i++)
            task(f, f->polled[i].cmd_id, GP_PENDING, NAN, t);
        f->n_polled = 0;
    }
    assert_int_equal(get(f, r.id).state, GP_JS_PENDING);
    gp_dispatch_sweep(f->d, T0 + 49LL * 3600000);
    row w = get(f, r.id);
    assert_int_equal(w.state, GP_JS_TIMEOUT);
    assert_non_null(strstr(w.error, "no final state from the vendor within 2d"));
}

static void restore_rules(void **state)
{
    fx *f = *state;
    /* A queued command long ago, an accepted one, then a newer one whose answer was lost. */
    gp_submit_result p = submit1(f, sp("h/p1", -4000), T0);
    answer(f, p.id, GP_PENDING, 0, 0, "req-1", T0);
    gp_submit_result q = submit1(f, sp("h/p1", 1000), T0 + 10);
    gp_submit_result a = submit1(f, sp("a/b1", -3000), T0);
    answer(f, a.id, GP_DONE, 0, 0, NULL, T0);
    gp_submit_result s = submit1(f, sp("a/b1", 2000), T0 + 100);
    gp_dispatch_free(f->d);
    gp_fleet_free(f->fleet);

    /* A dry run after the restart sends nothing, not even what was queued. */
    f->n_sent = 0;
    build(f);
    f->d = new_dispatch(f, 1, INFINITY);
    gp_dispatch_restore(f->d, AD_H, T0 + 60000);
    gp_dispatch_restore(f->d, AD_A, T0 + 60000);
    assert_int_equal(f->n_sent, 0);
    assert_int_equal(get(f, q.id).state, GP_JS_QUEUED);
    /* The lost answer leaves b1's state unknown: #a is not in force any more. */
    assert_int_equal(get(f, s.id).state, GP_JS_TIMEOUT);
    assert_int_equal(get(f, a.id).state, GP_JS_DONE);
    assert_int_equal(slot(f, "a/b1")->id, 0);
    gp_dispatch_free(f->d);
    gp_fleet_free(f->fleet);

    /* A real run an hour later: the queued command is stale, never sent. */
    build(f);
    f->d = new_dispatch(f, 0, INFINITY);
    gp_dispatch_restore(f->d, AD_H, T0 + 3600000);
    assert_int_equal(f->n_sent, 0);
    row wq = get(f, q.id);
    assert_int_equal(wq.state, GP_JS_CANCELLED);
    assert_non_null(strstr(wq.error, "stale"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(sends_then_accepts),
        T(clamps_to_limits),
        T(refuses_invalid),
        T(drops_identical),
        T(failure_restores_previous),
        T(retries_with_backoff),
        T(queues_behind_running_task),
        T(release_stops_task),
        T(polls_by_vendor_ref),
        T(login_then_one_replay),
        T(times_out_without_answer),
        T(duration_expiry),
        T(dry_run_sends_nothing),
        T(site_import_limit),
        T(site_export_limit),
        T(last_command_wins),
        T(settings_use_their_own_slot),
        T(restore_after_restart),
        T(release_all_on_exit),
        T(release_waits_for_answer_then_stops_task),
        T(timeout_leaves_state_unknown),
        T(native_duration_refreshed),
        T(restore_rules),
        T(replace_stops_task_first),
        T(quota_wait_is_not_a_timeout),
        T(replace_after_late_pending),
        T(task_age_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
