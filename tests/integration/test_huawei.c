/*
 * gridpilot + the huawei plugin against the Huawei SmartPVMS emulator, over HTTPS on
 * loopback. Both run on an emulated clock 60 times faster than the wall clock (the emulator's
 * --speed/--anchor, gridpilot's GRIDPILOT_TIME_SCALE/ANCHOR), so the seed's per-minute quotas
 * and 3-minute task refreshes take seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "emu_client.h"
#include "harness.h"

#define note(...) fprintf(stderr, __VA_ARGS__)
#define SPEED     "60"
#define CA        GP_IT_SRCDIR "/tests/fixtures/tls/ca.pem"
#define CERT      GP_IT_SRCDIR "/tests/fixtures/tls/server.pem"
#define KEY       GP_IT_SRCDIR "/tests/fixtures/tls/server.key"

typedef struct hw {
    it_env *t;
    it_emu emu;
    char anchor[32];
} hw;

static int hw_setup(void **state)
{
    it_setup(state);
    hw *h = calloc(1, sizeof *h);
    h->t = *state;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(h->anchor, sizeof h->anchor, "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    /* Inherited by every gridpilot the test starts. */
    setenv("GRIDPILOT_TIME_SCALE", SPEED, 1);
    setenv("GRIDPILOT_TIME_ANCHOR", h->anchor, 1);
    setenv("FUSION_PASSWORD", "vpp-secret", 1);
    *state = h;
    return 0;
}

static int hw_teardown(void **state)
{
    hw *h = *state;
    it_emu_stop(&h->emu);
    unsetenv("GRIDPILOT_TIME_SCALE");
    unsetenv("GRIDPILOT_TIME_ANCHOR");
    void *t = h->t;
    free(h);
    return it_teardown(&t);
}

static void start_emu(hw *h, const char *plants)
{
    it_emu_start(&h->emu, h->t->dir, "--vendor", "huawei", "--port", "0", "--plants", plants,
                 "--seed", "7", "--speed", SPEED, "--anchor", h->anchor, "--tls-cert", CERT,
                 "--tls-key", KEY, NULL);
}

/* The config: the emulator's URL, its CA, a strategy file s.lua; `extra` adds top-level keys
 * and `adapter_extra` adapter keys. */
static void config(hw *h, const char *extra, const char *adapter_extra)
{
    it_write(h->t, "gridpilot.json",
             "{\"plugin_path\": [\"%s\"], \"state_dir\": \"var\", \"tick\": \"1m\",\n"
             " \"on_exit\": \"hold\", \"strategy\": {\"file\": \"s.lua\"}%s%s,\n"
             /* Emulated time runs 60x faster than HTTP timeouts: give answers room. */
             " \"dispatch\": {\"command_timeout\": \"30m\"},\n"
             " \"adapters\": [{\"id\": \"fusion\", \"plugin\": \"huawei\", \"poll\": \"1m\","
             " \"task_poll\": \"3m\", \"timeout\": \"20s\", \"ca_file\": \"%s\"%s%s,\n"
             "   \"config\": {\"base_url\": \"%s\", \"username\": \"vpp\","
             " \"password_env\": \"FUSION_PASSWORD\"}}]}\n",
             GP_IT_PLUGINS, extra ? ", " : "", extra ? extra : "", CA, adapter_extra ? ", " : "",
             adapter_extra ? adapter_extra : "", h->emu.url);
}

static void strategy(hw *h, const char *body)
{
    it_write(h->t, "s.lua",
             "return { decide = function(ctx)\n"
             "  local c = {}\n"
             "  for _, d in ipairs(ctx.devices) do\n"
             "    if d.caps.setpoint then c[#c + 1] = %s end\n"
             "  end\n"
             "  return c\n"
             "end }\n",
             body);
}

/* Requests of the emulator's log whose path ends with suffix. */
static cJSON *requests(hw *h, const char *suffix)
{
    cJSON *all = it_emu_call(&h->emu, "GET", "requests", NULL);
    cJSON *out = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const char *p = cJSON_GetObjectItem(r, "path")->valuestring;
        size_t lp = strlen(p), ls = strlen(suffix);
        if (lp >= ls && strcmp(p + lp - ls, suffix) == 0)
            cJSON_AddItemToArray(out, cJSON_Duplicate(r, 1));
    }
    cJSON_Delete(all);
    return out;
}

static int answer_code(const cJSON *req)
{
    const cJSON *c = cJSON_GetObjectItem(req, "failCode");
    return cJSON_IsNumber(c) ? c->valueint : -1;
}

static cJSON *body_of(const cJSON *req)
{
    return cJSON_Parse(cJSON_GetObjectItem(req, "body")->valuestring);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* 250 plants charged with the same parameters: 3 calls of 100/100/50 plants, each its own
 * requestID, every plant pending under its call's requestID. */
static void dispatch_250_plants_in_3_calls(void **state)
{
    hw *h = *state;
    start_emu(h, "250");
    config(h, NULL, NULL);
    strategy(h, "{ device = d.id, setpoint_w = -3000, duration_s = 1800 }");
    char *out, *err;
    /* -v: per-command lines (at debug for big batches) give the latency figure below. */
    assert_int_equal(it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", "-v", NULL),
                     0);
    cJSON *calls = requests(h, "/vpp/chargeAndDischarge");
    assert_int_equal(cJSON_GetArraySize(calls), 3);
    int sizes[3], total = 0;
    double ids[3];
    for (int i = 0; i < 3; i++) {
        cJSON *b = body_of(cJSON_GetArrayItem(calls, i));
        const char *codes = cJSON_GetObjectItem(b, "plantCodes")->valuestring;
        sizes[i] = 1;
        for (const char *p = codes; *p; p++)
            sizes[i] += *p == ',';
        total += sizes[i];
        ids[i] = cJSON_GetObjectItem(b, "requestID")->valuedouble;
        assert_int_equal(cJSON_GetObjectItem(b, "dispatchSwitch")->valueint, 1);
        assert_int_equal(cJSON_GetObjectItem(b, "controlType")->valueint, 2);
        assert_int_equal(cJSON_GetObjectItem(b, "dispatchTime")->valueint, 30);
        assert_int_equal(cJSON_GetObjectItem(b, "powerDispatch")->valueint, 3000);
        assert_int_equal(answer_code(cJSON_GetArrayItem(calls, i)), 0);
        cJSON_Delete(b);
    }
    assert_int_equal(total, 250);
    assert_true(sizes[0] <= 100 && sizes[1] <= 100 && sizes[2] <= 100);
    assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    cJSON_Delete(calls);
    assert_int_equal(it_count_tasks(h->t, "pending", NULL, NULL), 250);

    /* Decision to pending, from gridpilot's own log (its timestamps are wall-clock time). */
    const char *first = strstr(err, "-> sent (#");
    const char *last = NULL;
    for (const char *p = err; (p = strstr(p, "pending as vendor task")); p++)
        last = p;
    if (first && last) {
        while (first > err && first[-1] != '\n')
            first--;
        while (last > err && last[-1] != '\n')
            last--;
        int h1, m1, h2, m2;
        double s1, s2;
        if (sscanf(first + 11, "%d:%d:%lfZ", &h1, &m1, &s1) == 3 &&
            sscanf(last + 11, "%d:%d:%lfZ", &h2, &m2, &s2) == 3) {
            double ms = ((h2 - h1) * 3600 + (m2 - m1) * 60 + (s2 - s1)) * 1000.0;
            note("# decision to pending (vendor accepted) for 250 plants in 3 calls: %.1f ms\n",
                 ms);
        }
    }
    free(out), free(err);
}

static int all_done(it_env *t, void *ud)
{
    return it_count_tasks(t, "done", "kind", "setpoint") == *(int *)ud;
}

/* Restart while tasks are pending: polling resumes with the same requestIDs, and no second
 * chargeAndDischarge is sent. */
static void restart_resumes_same_request_ids(void **state)
{
    hw *h = *state;
    start_emu(h, "20");
    config(h, NULL, NULL);
    /* Whichever way each battery can go at this time of (emulated) day. */
    strategy(h, "{ device = d.id, setpoint_w = ((d.soc_pct or 50) > 50) and 3000 or -3000, "
                "duration_s = 600 }");
    char *out, *err;
    assert_int_equal(it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", NULL), 0);
    free(out), free(err);
    /* Remember each command's vendor reference (one per chargeAndDischarge call). */
    cJSON *pending = it_tasks(h->t, "pending");
    assert_int_equal(cJSON_GetArraySize(pending), 20);
    int sends = it_emu_count(&h->emu, "/vpp/chargeAndDischarge");
    assert_true(sends >= 1 && sends <= 2); /* charging and discharging plants */

    /* The restarted daemon's strategy has nothing to ask: only the journal drives it. */
    it_write(h->t, "s.lua", "return { decide = function(ctx) return {} end }\n");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    int want = 20;
    it_wait_for(h->t, 90, all_done, &want, "the 20 resumed tasks to finish");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);
    /* Nothing was sent again... */
    assert_int_equal(it_emu_count(&h->emu, "/vpp/chargeAndDischarge"), sends);
    /* ...every task was polled under its original requestID... */
    cJSON *polls = requests(h, "/vpp/chargeAndDischargeStatus");
    assert_true(cJSON_GetArraySize(polls) >= sends);
    const cJSON *r, *q;
    cJSON_ArrayForEach(r, polls)
    {
        cJSON *b = body_of(r);
        char got[32];
        snprintf(got, sizeof got, "%.0f", cJSON_GetObjectItem(b, "requestID")->valuedouble);
        int known = 0;
        cJSON_ArrayForEach(q, pending) known |=
            strcmp(cJSON_GetObjectItem(q, "vendor_ref")->valuestring, got) == 0;
        assert_true(known);
        cJSON_Delete(b);
    }
    cJSON_Delete(polls);
    /* ...and ended done under it, sent once, with the vendor's energy. */
    cJSON *done = it_tasks(h->t, "done");
    int moved = 0;
    cJSON_ArrayForEach(r, done)
    {
        int same = 0;
        cJSON_ArrayForEach(q, pending) same |=
            cJSON_GetObjectItem(q, "id")->valueint == cJSON_GetObjectItem(r, "id")->valueint &&
            strcmp(cJSON_GetObjectItem(q, "vendor_ref")->valuestring,
                   cJSON_GetObjectItem(r, "vendor_ref")->valuestring) == 0;
        assert_true(same);
        assert_int_equal(cJSON_GetObjectItem(r, "attempts")->valueint, 1);
        /* 10 min at 3 kW is 500 Wh (AC); less for a battery that reached its bound. */
        double wh = cJSON_GetObjectItem(r, "energy_wh")->valuedouble;
        assert_true(wh >= 0 && wh <= 501);
        moved += wh > 0;
    }
    assert_true(moved >= 10);
    cJSON_Delete(done);
    cJSON_Delete(pending);
}

typedef struct count_goal {
    hw *h;
    const char *suffix;
    int n;
} count_goal;

static int emu_count_reached(it_env *t, void *ud)
{
    count_goal *g = ud;
    return it_emu_count(&g->h->emu, g->suffix) >= g->n;
}

/* A session that expires mid-run: one login, and the refused call is made again. */
static void relogin_once_on_305(void **state)
{
    hw *h = *state;
    start_emu(h, "10");
    config(h, NULL, NULL);
    strategy(h, "{ device = d.id, setpoint_w = -3000, duration_s = 3600 }");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    count_goal first_read = {h, "/vpp/plantRealtimeKpi", 1};
    it_wait_for(h->t, 60, emu_count_reached, &first_read, "the first read");
    assert_int_equal(it_emu_count(&h->emu, "/login"), 1);
    int reads_before = it_emu_count(&h->emu, "/vpp/plantRealtimeKpi");
    cJSON_Delete(it_emu_call(&h->emu, "POST", "tokens/expire", "{}"));
    /* The next read meets 305; a login follows, then the read again. */
    count_goal again = {h, "/vpp/plantRealtimeKpi", reads_before + 2};
    it_wait_for(h->t, 60, emu_count_reached, &again, "the read after the re-login");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);
    cJSON *all = it_emu_call(&h->emu, "GET", "requests", NULL);
    /* Whichever call met the expired session first is made again after one login. */
    char refused[128] = "";
    int logins_after = 0, ok_after_login = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const char *path = cJSON_GetObjectItem(r, "path")->valuestring;
        if (!refused[0] && answer_code(r) == 305) snprintf(refused, sizeof refused, "%s", path);
        if (refused[0] && strstr(path, "/login")) logins_after++;
        if (logins_after && strcmp(path, refused) == 0 && answer_code(r) == 0) ok_after_login = 1;
    }
    cJSON_Delete(all);
    assert_true(refused[0]);
    assert_int_equal(logins_after, 1); /* exactly one re-login */
    assert_true(ok_after_login);
    assert_int_equal(it_emu_count(&h->emu, "/login"), 2);
}

/* The vendor answers 407 once: the command waits and goes again; nothing is lost. */
static void rate_limit_answer_backs_off(void **state)
{
    hw *h = *state;
    start_emu(h, "10");
    config(h, NULL, NULL);
    strategy(h, "{ device = d.id, setpoint_w = -3000, duration_s = 3600 }");
    cJSON_Delete(it_emu_call(&h->emu, "POST", "faults",
                             "{\"path\": \"chargeAndDischarge\", \"kind\": \"failcode\", "
                             "\"failcode\": 407, \"count\": 1}"));
    char *out, *err;
    assert_int_equal(it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", NULL), 0);
    assert_non_null(strstr(err, "too many requests"));
    free(out), free(err);
    cJSON *calls = requests(h, "/vpp/chargeAndDischarge");
    assert_int_equal(cJSON_GetArraySize(calls), 2);
    assert_int_equal(answer_code(cJSON_GetArrayItem(calls, 0)), 407);
    assert_int_equal(answer_code(cJSON_GetArrayItem(calls, 1)), 0);
    cJSON_Delete(calls);
    cJSON *rows = it_tasks(h->t, "pending");
    assert_int_equal(cJSON_GetArraySize(rows), 10);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "attempts")->valueint, 2);
    cJSON_Delete(rows);
}

static int all_timeout(it_env *t, void *ud)
{
    return it_count_tasks(t, "timeout", NULL, NULL) == *(int *)ud;
}

/* A task the vendor gives up on after 24 h ends `timeout`. */
static void vendor_timeout_ends_timeout(void **state)
{
    hw *h = *state;
    start_emu(h, "5");
    config(h, NULL, NULL);
    /* 10 W towards the far end of the battery, whichever it is at this time of (emulated)
     * day: far more than 24 h. */
    strategy(h, "((d.soc_pct or 50) > 50) and { device = d.id, setpoint_w = 10, soc_target = 0 } "
                "or { device = d.id, setpoint_w = -10, soc_target = 100 }");
    char *out, *err;
    assert_int_equal(it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", NULL), 0);
    free(out), free(err);
    assert_int_equal(it_count_tasks(h->t, "pending", NULL, NULL), 5);
    cJSON_Delete(it_emu_call(&h->emu, "POST", "clock", "{\"advance_s\": 90000}"));
    it_write(h->t, "s.lua", "return { decide = function(ctx) return {} end }\n");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    int want = 5;
    it_wait_for(h->t, 60, all_timeout, &want, "the vendor's timeout");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);
}

typedef struct log_goal {
    const char *file, *text;
} log_goal;

static int log_has(it_env *t, void *ud)
{
    log_goal *g = ud;
    return it_contains(g->file, g->text);
}

typedef struct lines_goal {
    const char *file, *text;
    int n;
} lines_goal;

static int log_count_reached(it_env *t, void *ud)
{
    lines_goal *g = ud;
    return it_count_lines(g->file, g->text) >= g->n;
}

/* Malformed and truncated answers: a clear error, no crash, and the next read works. */
static void malformed_and_truncated_answers(void **state)
{
    hw *h = *state;
    start_emu(h, "5");
    config(h, NULL, NULL);
    strategy(h, "nil");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    count_goal first_read = {h, "/vpp/plantRealtimeKpi", 1};
    it_wait_for(h->t, 60, emu_count_reached, &first_read, "the first read");
    cJSON_Delete(it_emu_call(&h->emu, "POST", "faults",
                             "{\"path\": \"plantRealtimeKpi\", \"kind\": \"malformed\"}"));
    log_goal bad = {p.err, "read failed"};
    it_wait_for(h->t, 60, log_has, &bad, "the malformed answer to be reported");
    log_goal ok = {p.err, "reads work again"};
    it_wait_for(h->t, 60, log_has, &ok, "reads to recover");
    cJSON_Delete(it_emu_call(&h->emu, "POST", "faults",
                             "{\"path\": \"plantRealtimeKpi\", \"kind\": \"truncated\"}"));
    /* A second failure and a second recovery. */
    int twice = 2;
    lines_goal second = {p.err, "reads work again", twice};
    it_wait_for(h->t, 60, log_count_reached, &second, "reads to recover from the truncation");
    assert_int_equal(it_count_lines(p.err, "read failed"), 2);
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);
    char *err = it_read(p.err);
    /* One line naming the API and what was wrong. */
    assert_non_null(strstr(err, "plantRealtimeKpi"));
    free(err);
}

static int emulated_minutes(hw *h)
{
    cJSON *c = it_emu_call(&h->emu, "GET", "clock", NULL);
    double now = cJSON_GetObjectItem(c, "now_ms")->valuedouble;
    cJSON_Delete(c);
    return (int)((now - strtod(h->anchor, NULL)) / 60000.0);
}

static int minutes_passed(it_env *t, void *ud)
{
    hw *h = ud;
    return emulated_minutes(h) >= 15;
}

/* 500 plants for 15 emulated minutes with the seed's real quotas: not one 407. Every plant
 * gets its own setpoint (500 requests per change: more than the 100 per minute allowed), the
 * direction flips every 3 minutes and the adapter replaces running tasks, so commands, stops,
 * reads and task polls compete for the quotas. */
static void quotas_hold_at_500_plants(void **state)
{
    hw *h = *state;
    start_emu(h, "500");
    config(h, NULL, "\"busy\": \"replace\"");
    strategy(h, "{ device = d.id, setpoint_w = ((math.floor(ctx.now / 180) % 2 == 0) and -1 or 1)"
                " * (1000 + tonumber(d.vendor:match('%d+')) % 500), duration_s = 1800 }");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    it_wait_for(h->t, 120, minutes_passed, h, "15 emulated minutes");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 60), 0);
    cJSON *stats = it_emu_call(&h->emu, "GET", "stats", NULL);
    char *text = cJSON_PrintUnformatted(stats);
    note("# emulator stats after 15 emulated minutes at 500 plants: %s\n", text);
    free(text);
    /* Per API: calls per emulated minute, and no 407 anywhere. */
    int minutes = emulated_minutes(h);
    const cJSON *api;
    int total_407 = 0, commands = 0;
    const cJSON *apis = cJSON_GetObjectItem(stats, "apis");
    assert_non_null(apis);
    cJSON_ArrayForEach(api, apis)
    {
        const cJSON *calls = cJSON_GetObjectItem(api, "calls");
        const cJSON *limited = cJSON_GetObjectItem(api, "limited"); /* 407 answers */
        assert_true(cJSON_IsNumber(limited));
        total_407 += limited->valueint;
        if (cJSON_IsNumber(calls))
            note("#   %-28s %6.1f calls/min\n", api->string, calls->valuedouble / minutes);
        if (api->string && strstr(api->string, "chargeAndDischarge") &&
            !strstr(api->string, "Status") && cJSON_IsNumber(calls))
            commands += calls->valueint;
    }
    cJSON_Delete(stats);
    assert_int_equal(total_407, 0);
    /* The pressure was real: far more than the first 100 commands went out, paced. */
    note("# chargeAndDischarge calls: %d in %d emulated minutes\n", commands, minutes);
    assert_true(commands > 300);
    assert_true(commands <= 100 * (minutes + 1));
    assert_true(it_count_tasks(h->t, NULL, "origin", "replace") > 0);
}

/* Replace every `from` in text by `to` (malloc'd). */
static char *replace_all(const char *text, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    for (const char *p = text; (p = strstr(p, from)); p += lf)
        n++;
    char *out = malloc(strlen(text) + n * (lt > lf ? lt - lf : 0) + 1), *o = out;
    for (const char *p = text;;) {
        const char *hit = strstr(p, from);
        size_t k = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(o, p, k);
        o += k;
        if (!hit) break;
        memcpy(o, to, lt);
        o += lt;
        p = hit + lf;
    }
    *o = '\0';
    return out;
}

/* The shipped example config, pointed at this test's emulator and folder (its own port and
 * state_dir would collide with other runs), checks clean and dispatches. */
static void example_config_runs(void **state)
{
    hw *h = *state;
    start_emu(h, "3");
    char *text = it_read(GP_IT_SRCDIR "/examples/huawei.json");
    assert_non_null(text);
    char *a = replace_all(text, "https://127.0.0.1:27200", h->emu.url);
    /* The plugins under test, not whatever a demo build left in build/. */
    char *b = replace_all(a, "\"../build/plugins\"", "\"" GP_IT_PLUGINS "\"");
    char *c = replace_all(b, "\"../", "\"" GP_IT_SRCDIR "/");
    char *d = replace_all(c, "\"var/huawei\"", "\"var\"");
    /* A fixed discharge target: the example's wave charges or discharges by the wall clock,
     * and full batteries take no charge. */
    char *e = replace_all(d, "\"amplitude_w\": 20000, \"period_s\": 3600", "\"target_w\": 3000");
    assert_non_null(strstr(e, "\"target_w\": 3000"));
    it_write(h->t, "gridpilot.json", "%s", e);
    free(text), free(a), free(b), free(c), free(d), free(e);
    char *out, *err;
    assert_int_equal(it_run(h->t, 30, &out, &err, "check", "-c", h->t->cfg, NULL), 0);
    free(out), free(err);
    assert_int_equal(
        it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", "--dry-run", NULL), 0);
    assert_non_null(strstr(err, "ready: 3 device(s), 3 online"));
    /* The example strategy has work; how many batteries share it depends on their SoC (the
     * emulated time of day follows the wall clock: one may be empty), and each gets one
     * dry-run command. */
    const char *shared = strstr(err, "shared by ");
    assert_non_null(shared);
    int n = atoi(shared + strlen("shared by "));
    assert_true(n >= 1 && n <= 3);
    free(out), free(err);
    assert_int_equal(it_count_tasks(h->t, "dry_run", NULL, NULL), n);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, hw_setup, hw_teardown)
    const struct CMUnitTest tests[] = {
        T(dispatch_250_plants_in_3_calls),
        T(restart_resumes_same_request_ids),
        T(relogin_once_on_305),
        T(rate_limit_answer_backs_off),
        T(vendor_timeout_ends_timeout),
        T(malformed_and_truncated_answers),
        T(quotas_hold_at_500_plants),
        T(example_config_runs),
    };
    if (getenv("GP_IT_ONLY")) cmocka_set_test_filter(getenv("GP_IT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
