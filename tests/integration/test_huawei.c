/*
 * gridpilot + the huawei plugin against the Huawei SmartPVMS emulator, over HTTPS on
 * loopback. Both run on an emulated clock 60 times faster than the wall clock (the emulator's
 * --speed/--anchor, gridpilot's GRIDPILOT_TIME_SCALE/ANCHOR), so the seed's per-minute quotas
 * and 3-minute task refreshes take seconds. Tests that depend on the batteries' state start
 * that clock at a fixed night-time instant (start_at), so they do not depend on the wall
 * clock's time of day.
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
#include <strings.h>
#include <sys/time.h>

#include "emu_client.h"
#include "harness.h"

#define note(...) fprintf(stderr, __VA_ARGS__)
#define SPEED     "60"
#define SPEED_X   60
#define CA        GP_IT_SRCDIR "/tests/fixtures/tls/ca.pem"
#define CERT      GP_IT_SRCDIR "/tests/fixtures/tls/server.pem"
#define KEY       GP_IT_SRCDIR "/tests/fixtures/tls/server.key"

typedef struct hw {
    it_env *t;
    it_emu emu;
    char anchor[32];
    double t0_ms;     /* emulated time when the test started */
    const char *poll; /* the adapter's telemetry period (borrowed literal) */
} hw;

static int hw_setup(void **state)
{
    it_setup(state);
    hw *h = calloc(1, sizeof *h);
    h->t = *state;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(h->anchor, sizeof h->anchor, "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    h->t0_ms = strtod(h->anchor, NULL);
    h->poll = "1m";
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

/* 2026-06-01T02:19:00Z. The emulated clocks start then instead of at the wall clock's time
 * of day: no sun, every battery of seed 7 between its bounds (plants 1-6 near 17, 45, 63, 51,
 * 30 and 85 %, 5/5/15/10/15/10 kWh), a 5-minute sample a minute later. */
#define NIGHT 1780280340LL
/* 2026-06-01T02:09:00Z: also night, and examples/huawei.json's wave (20 kW, 1 h period) asks
 * for more than its 3 batteries' 15 kW from 02:08 to 02:21. */
#define WAVE_PEAK 1780279740LL

/* Emulated time starts at t0_s (Unix s) for the emulator and every gridpilot the test starts.
 * Both compute anchor + (wall - anchor) * SPEED_X, which is t0 now for this anchor. Call it
 * before start_emu. */
static void start_at(hw *h, long long t0_s)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long wall = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, t0 = t0_s * 1000;
    snprintf(h->anchor, sizeof h->anchor, "%lld", (SPEED_X * wall - t0) / (SPEED_X - 1));
    setenv("GRIDPILOT_TIME_ANCHOR", h->anchor, 1);
    h->t0_ms = (double)t0;
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
             " \"adapters\": [{\"id\": \"fusion\", \"plugin\": \"huawei\", \"poll\": \"%s\","
             " \"task_poll\": \"3m\", \"timeout\": \"20s\", \"ca_file\": \"%s\"%s%s,\n"
             "   \"config\": {\"base_url\": \"%s\", \"username\": \"vpp\","
             " \"password_env\": \"FUSION_PASSWORD\"}}]}\n",
             GP_IT_PLUGINS, extra ? ", " : "", extra ? extra : "", h->poll, CA,
             adapter_extra ? ", " : "", adapter_extra ? adapter_extra : "", h->emu.url);
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

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int path_ends(const cJSON *req, const char *suffix)
{
    const char *p = str_of(req, "path");
    size_t lp = p ? strlen(p) : 0, ls = strlen(suffix);
    return p && lp >= ls && strcmp(p + lp - ls, suffix) == 0;
}

/* A request header of a log entry, its name in any case (borrowed), or NULL. */
static const char *header_of(const cJSON *req, const char *name)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(req, "headers"))
    {
        if (h->string && strcasecmp(h->string, name) == 0 && cJSON_IsString(h))
            return h->valuestring;
    }
    return NULL;
}

/* Entries of a comma-separated id list ("NE=1,NE=2"). */
static int count_ids(const char *ids)
{
    int n = *ids ? 1 : 0;
    for (const char *p = ids; *p; p++)
        n += *p == ',';
    return n;
}

/* Do two id lists hold the same ids, in any order? */
static int same_ids(const char *a, const char *b)
{
    if (count_ids(a) != count_ids(b)) return 0;
    char *copy = strdup(a);
    int same = 1;
    size_t lb = strlen(b);
    for (char *save = NULL, *id = strtok_r(copy, ",", &save); id && same;
         id = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(id);
        const char *at = b;
        same = 0;
        while (!same && (at = strstr(at, id)) != NULL) {
            same = (at == b || at[-1] == ',') && (at + n == b + lb || at[n] == ',');
            at += n;
        }
    }
    free(copy);
    return same;
}

/* The emulator's state of one plant: the plant (p->plants[0]) and its tasks (cJSON_Delete). */
static cJSON *emu_plant(hw *h, const char *code)
{
    char path[64];
    snprintf(path, sizeof path, "state?plant=%s", code);
    cJSON *st = it_emu_call(&h->emu, "GET", path, NULL);
    if (cJSON_GetArraySize(cJSON_GetObjectItem(st, "plants")) != 1)
        fail_msg("the emulator's state has no plant %s", code);
    return st;
}

static const cJSON *plant_of(const cJSON *st)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(st, "plants"), 0);
}

/* The plant's entry in the last task of an emu_plant state whose dispatchSwitch is sw, or
 * NULL; *task gets the task (borrowed from st). */
static const cJSON *task_entry(const cJSON *st, int sw, const cJSON **task)
{
    const char *code = str_of(plant_of(st), "code");
    const cJSON *t, *e, *found = NULL;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(st, "tasks"))
    {
        if ((int)it_num(t, "dispatchSwitch", NULL) == sw) found = t;
    }
    if (task) *task = found;
    if (!found) return NULL;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(found, "plants"))
    {
        if (strcmp(str_of(e, "plantCode"), code) == 0) return e;
    }
    return NULL;
}

/* The first journal row for device (fusion/<code>) of kind, in state (NULL: any) whose value
 * prints as value (NULL: any); borrowed from rows. */
static const cJSON *find_row(const cJSON *rows, const char *code, const char *kind,
                             const char *state, const char *value)
{
    char dev[64];
    snprintf(dev, sizeof dev, "fusion/%s", code);
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        if (strcmp(str_of(r, "device"), dev) != 0 || strcmp(str_of(r, "kind"), kind) != 0) continue;
        if (state && strcmp(str_of(r, "state"), state) != 0) continue;
        if (value) {
            char *v = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "value"));
            int same = strcmp(v, value) == 0;
            cJSON_free(v);
            if (!same) continue;
        }
        return r;
    }
    return NULL;
}

typedef struct want_row {
    const char *code, *kind, *state, *value; /* as find_row */
} want_row;

typedef struct rows_goal {
    const want_row *rows;
    int n;
} rows_goal;

static int rows_present(it_env *t, void *ud)
{
    const rows_goal *g = ud;
    cJSON *rows = it_tasks(t, NULL);
    int ok = 1;
    for (int i = 0; i < g->n && ok; i++)
        ok = find_row(rows, g->rows[i].code, g->rows[i].kind, g->rows[i].state, g->rows[i].value) !=
             NULL;
    cJSON_Delete(rows);
    return ok;
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

    /* Reads too go out in batches of at most 100 plants, and together they cover all 250. */
    cJSON *reads = requests(h, "/vpp/plantRealtimeKpi");
    assert_true(cJSON_GetArraySize(reads) >= 3);
    char seen[250] = {0};
    const cJSON *r;
    cJSON_ArrayForEach(r, reads)
    {
        assert_int_equal(answer_code(r), 0);
        cJSON *b = body_of(r);
        char *codes = strdup(str_of(b, "plantCodes"));
        assert_true(count_ids(codes) >= 1 && count_ids(codes) <= 100);
        for (char *save = NULL, *c = strtok_r(codes, ",", &save); c;
             c = strtok_r(NULL, ",", &save)) {
            long i = strncmp(c, "NE=", 3) == 0 ? strtol(c + 3, NULL, 10) - 33000001 : -1;
            if (i < 0 || i >= 250) fail_msg("a read asked for %s, not one of the 250 plants", c);
            seen[i] = 1;
        }
        free(codes);
        cJSON_Delete(b);
    }
    cJSON_Delete(reads);
    for (int i = 0; i < 250; i++)
        if (!seen[i]) fail_msg("plant NE=%d was never read", 33000001 + i);

    /* Decision to pending, from gridpilot's own log (its timestamps are wall-clock time). The
     * figure is what this test is for: missing lines are a failure, not a skip. */
    const char *first = strstr(err, "-> sent (#");
    const char *last = NULL;
    for (const char *p = err; (p = strstr(p, "pending as vendor task")); p++)
        last = p;
    if (!first || !last)
        fail_msg("gridpilot -v logged no '-> sent (#' or no 'pending as vendor task' line");
    while (first > err && first[-1] != '\n')
        first--;
    while (last > err && last[-1] != '\n')
        last--;
    int h1, m1, h2, m2;
    double s1, s2;
    if (strlen(first) < 11 || strlen(last) < 11 ||
        sscanf(first + 11, "%d:%d:%lfZ", &h1, &m1, &s1) != 3 ||
        sscanf(last + 11, "%d:%d:%lfZ", &h2, &m2, &s2) != 3)
        fail_msg("gridpilot's log lines have no ISO time: '%.40s'", first);
    double ms = ((h2 - h1) * 3600 + (m2 - m1) * 60 + (s2 - s1)) * 1000.0;
    if (ms < 0) ms += 86400000.0; /* across midnight */
    note("# decision to pending (vendor accepted) for 250 plants in 3 calls: %.1f ms\n", ms);
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

/* A session that expires mid-run: the refused call, one login, the same call again with the
 * new token, and the next scheduled call on that token. Reads only, every 2 emulated minutes,
 * so a replay (right after the login) cannot be mistaken for the next scheduled read. */
static void relogin_once_on_305(void **state)
{
    hw *h = *state;
    h->poll = "2m";
    start_emu(h, "10");
    config(h, NULL, NULL);
    strategy(h, "nil");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    count_goal first_read = {h, "/vpp/plantRealtimeKpi", 1};
    it_wait_for(h->t, 60, emu_count_reached, &first_read, "the first read");
    assert_int_equal(it_emu_count(&h->emu, "/login"), 1);
    int reads_before = it_emu_count(&h->emu, "/vpp/plantRealtimeKpi");
    cJSON_Delete(it_emu_call(&h->emu, "POST", "tokens/expire", "{}"));
    /* The refused read, its replay and the next scheduled read. */
    count_goal again = {h, "/vpp/plantRealtimeKpi", reads_before + 3};
    it_wait_for(h->t, 60, emu_count_reached, &again, "the reads after the re-login");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);

    cJSON *all = it_emu_call(&h->emu, "GET", "requests", NULL);
    int n = cJSON_GetArraySize(all), at = -1, refused = 0;
    for (int i = 0; i < n; i++)
        if (answer_code(cJSON_GetArrayItem(all, i)) == 305) {
            if (at < 0) at = i;
            refused++;
        }
    if (at < 0) fail_msg("no request was answered 305 after the sessions expired");
    assert_int_equal(refused, 1);
    assert_true(at + 3 < n);
    const cJSON *no = cJSON_GetArrayItem(all, at), *login = cJSON_GetArrayItem(all, at + 1);
    const cJSON *replay = cJSON_GetArrayItem(all, at + 2), *next = cJSON_GetArrayItem(all, at + 3);
    assert_true(path_ends(no, "/vpp/plantRealtimeKpi"));
    /* Right after the 305: one login, answered. */
    assert_true(path_ends(login, "/login"));
    assert_int_equal(answer_code(login), 0);
    /* Then the same call, same body, with the new token... */
    assert_string_equal(str_of(replay, "path"), str_of(no, "path"));
    assert_string_equal(str_of(replay, "body"), str_of(no, "body"));
    assert_int_equal(answer_code(replay), 0);
    const char *old_token = header_of(no, "XSRF-TOKEN"),
               *new_token = header_of(replay, "XSRF-TOKEN");
    assert_non_null(old_token);
    assert_non_null(new_token);
    assert_string_not_equal(new_token, old_token);
    /* ...at once: well before the next scheduled read would be due. */
    double gap = it_num(replay, "t_ms", NULL) - it_num(no, "t_ms", NULL);
    note("# 305 to replay: %.3f emulated s (reads every 120 s)\n", gap / 1000);
    assert_true(gap < 120000);
    /* The next scheduled read goes out on the same session: no second login. */
    assert_true(path_ends(next, "/vpp/plantRealtimeKpi"));
    assert_int_equal(answer_code(next), 0);
    assert_string_equal(header_of(next, "XSRF-TOKEN"), new_token);
    cJSON_Delete(all);
    assert_int_equal(it_emu_count(&h->emu, "/login"), 2);
}

/* The two emulated clocks (gridpilot's, the emulator's) each round the wall clock to a
 * millisecond before scaling it: they may disagree by a few SPEED_X ms. */
#define CLOCK_SLACK_MS 250

/* The vendor answers 407 once: the command waits out the vendor's minute and goes again;
 * nothing is lost. */
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
    const cJSON *refused = cJSON_GetArrayItem(calls, 0), *retry = cJSON_GetArrayItem(calls, 1);
    assert_int_equal(answer_code(refused), 407);
    assert_int_equal(answer_code(retry), 0);
    /* The backoff (docs/adr/0008-quotas-and-emulated-time.md): a vendor's "too many requests"
     * closes the endpoint for one full quota period (chargeAndDischarge: 60 s) from the 407
     * answer, and the dispatcher retries no sooner than 10 s. The 407 arrived before its
     * answer left, so the retry arrives at least 60 s after it. */
    double gap = it_num(retry, "t_ms", NULL) - it_num(refused, "t_ms", NULL);
    note("# 407 to retry: %.3f emulated s\n", gap / 1000);
    assert_true(gap >= 60000 - CLOCK_SLACK_MS);
    /* The same command went again, and the vendor's task is what the journal polls. */
    cJSON *b1 = body_of(refused), *b2 = body_of(retry);
    assert_true(same_ids(str_of(b1, "plantCodes"), str_of(b2, "plantCodes")));
    assert_int_equal(count_ids(str_of(b2, "plantCodes")), 10);
    char ref[32];
    snprintf(ref, sizeof ref, "%.0f", it_num(b2, "requestID", NULL));
    cJSON_Delete(b1), cJSON_Delete(b2);
    cJSON_Delete(calls);
    cJSON *rows = it_tasks(h->t, NULL);
    assert_int_equal(cJSON_GetArraySize(rows), 10);
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        assert_string_equal(str_of(r, "state"), "pending");
        assert_string_equal(str_of(r, "vendor_ref"), ref);
        assert_int_equal((int)it_num(r, "attempts", NULL), 2);
    }
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
    return (int)((now - h->t0_ms) / 60000.0);
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
    /* Per API: calls per emulated minute, and no 407 nor any other failure anywhere. */
    int minutes = emulated_minutes(h);
    const cJSON *api;
    int total_407 = 0, total_failures = 0, commands = 0;
    const cJSON *apis = cJSON_GetObjectItem(stats, "apis");
    assert_non_null(apis);
    cJSON_ArrayForEach(api, apis)
    {
        const cJSON *calls = cJSON_GetObjectItem(api, "calls");
        const cJSON *limited = cJSON_GetObjectItem(api, "limited");   /* 407 answers */
        const cJSON *failures = cJSON_GetObjectItem(api, "failures"); /* any other error */
        assert_true(cJSON_IsNumber(limited));
        assert_true(cJSON_IsNumber(failures));
        total_407 += limited->valueint;
        total_failures += failures->valueint;
        if (cJSON_IsNumber(calls))
            note("#   %-28s %6.1f calls/min\n", api->string, calls->valuedouble / minutes);
        if (api->string && strstr(api->string, "chargeAndDischarge") &&
            !strstr(api->string, "Status") && cJSON_IsNumber(calls))
            commands += calls->valueint;
    }
    cJSON_Delete(stats);
    assert_int_equal(total_407, 0);
    assert_int_equal(total_failures, 0);
    /* The pressure was real: far more than the first 100 commands went out, paced. */
    note("# chargeAndDischarge calls: %d in %d emulated minutes\n", commands, minutes);
    assert_true(commands > 300);
    assert_true(commands <= 100 * (minutes + 1));
    assert_true(it_count_tasks(h->t, NULL, "origin", "replace") > 0);
}

/* ---- commands other than timed setpoints, and readings ------------------------------------ */

/* A strategy that sends `cmds` (Lua table constructors keyed by plant code) once, at its
 * first tick (`key` names the ctx.state flag, one per file), and logs every device's reading
 * at every tick: "kpi CODE battery_w=.. grid_w=.. pv_w=.. load_w=.. ." */
static void one_shot_strategy(hw *h, const char *key, const char *cmds)
{
    it_write(
        h->t, "s.lua",
        "local want = { %s }\n"
        "return { decide = function(ctx)\n"
        "  local c = {}\n"
        "  for _, d in ipairs(ctx.devices) do\n"
        "    gp.log('info', 'kpi %%s battery_w=%%s grid_w=%%s pv_w=%%s load_w=%%s .', d.vendor,\n"
        "           tostring(d.battery_w), tostring(d.grid_w), tostring(d.pv_w),\n"
        "           tostring(d.load_w))\n"
        "    local w = want[d.vendor]\n"
        "    if w and not ctx.state.%s then\n"
        "      local cmd = w(d)\n"
        "      cmd.device = d.id\n"
        "      c[#c + 1] = cmd\n"
        "    end\n"
        "  end\n"
        "  ctx.state.%s = true\n"
        "  return c\n"
        "end }\n",
        cmds, key, key);
}

/* Release, SoC target, DoD and inverter off/on, each from a strategy to a plant of the
 * emulator: what the vendor received, what it did, and what the journal says. Phase 1: plant 4
 * charges to 2 % above its SoC (SoC control), plant 2 charges for 30 minutes, plant 3 gets DoD
 * 85 %, plant 5's inverter goes off. Phase 2 (SIGHUP, another strategy): plant 2 is released,
 * plant 5's inverter goes on. */
static void release_soc_target_dod_onoff(void **state)
{
    hw *h = *state;
    start_at(h, NIGHT);
    start_emu(h, "5");
    config(h, NULL, NULL);
    one_shot_strategy(
        h, "phase1",
        "['NE=33000004'] = function(d) return { setpoint_w = -5000,"
        " soc_target = math.floor(d.soc_pct) + 2 } end,"
        " ['NE=33000002'] = function(d) return { setpoint_w = -2000, duration_s = 1800 } end,"
        " ['NE=33000003'] = function(d) return { dod = 85 } end,"
        " ['NE=33000005'] = function(d) return { on = false } end");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    static const want_row phase1[] = {{"NE=33000002", "setpoint", "pending", "-2000"},
                                      {"NE=33000003", "dod", "done", "85"},
                                      {"NE=33000005", "on", "done", "false"}};
    rows_goal g1 = {phase1, 3};
    it_wait_for(h->t, 60, rows_present, &g1, "the charge pending, DoD and inverter off done");
    /* The emulator did it: plant 2 forced to charge, plant 3's floor at 15 %, plant 5 off. */
    cJSON *st = emu_plant(h, "NE=33000002");
    assert_string_equal(str_of(plant_of(st), "mode"), "forced");
    assert_int_equal((int)it_num(plant_of(st), "setpoint_w", NULL), -2000);
    cJSON_Delete(st);
    st = emu_plant(h, "NE=33000003");
    assert_int_equal((int)it_num(plant_of(st), "dod", NULL), 85);
    assert_true(fabs(it_num(plant_of(st), "soc_min_pct", NULL) - 15) < 1e-6);
    cJSON_Delete(st);
    st = emu_plant(h, "NE=33000005");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(plant_of(st), "inverter_on")));
    cJSON_Delete(st);

    one_shot_strategy(h, "phase2",
                      "['NE=33000002'] = function(d) return { release = true } end,"
                      " ['NE=33000005'] = function(d) return { on = true } end");
    it_signal(&p, SIGHUP);
    static const want_row phase2[] = {{"NE=33000002", "release", "done", NULL},
                                      {"NE=33000005", "on", "done", "true"},
                                      {"NE=33000004", "setpoint", "done", "-5000"}};
    rows_goal g2 = {phase2, 3};
    it_wait_for(h->t, 60, rows_present, &g2,
                "the release and inverter on done, and the SoC target reached");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);

    cJSON *rows = it_tasks(h->t, NULL);
    assert_int_equal(cJSON_GetArraySize(rows), 6);
    const cJSON *soc_row = find_row(rows, "NE=33000004", "setpoint", "done", "-5000");
    double target = it_num(soc_row, "soc_target", NULL);
    assert_true(target > 10 && target <= 100);
    const cJSON *charge_row = find_row(rows, "NE=33000002", "setpoint", NULL, NULL);
    assert_string_equal(str_of(charge_row, "state"), "cancelled"); /* stopped by the release */
    assert_non_null(str_of(charge_row, "error"));
    assert_non_null(strstr(str_of(charge_row, "error"), "stopped by release"));

    /* chargeAndDischarge: the SoC-control charge and the timed charge, then the stop. */
    cJSON *calls = requests(h, "/vpp/chargeAndDischarge");
    assert_int_equal(cJSON_GetArraySize(calls), 3);
    double ids[3];
    int soc_call = -1, stop_call = -1, timed_call = -1;
    for (int i = 0; i < 3; i++) {
        const cJSON *req = cJSON_GetArrayItem(calls, i);
        assert_int_equal(answer_code(req), 0);
        cJSON *b = body_of(req);
        ids[i] = it_num(b, "requestID", NULL);
        const char *codes = str_of(b, "plantCodes");
        int sw = (int)it_num(b, "dispatchSwitch", NULL);
        if (strcmp(codes, "NE=33000004") == 0) {
            /* Seed 5.3.6, SOC control: controlType 1 and targetSOC, no dispatchTime. */
            soc_call = i;
            assert_int_equal(sw, 1);
            assert_int_equal((int)it_num(b, "controlType", NULL), 1);
            assert_true(fabs(it_num(b, "targetSOC", NULL) - target) < 1e-9);
            assert_int_equal((int)it_num(b, "powerDispatch", NULL), 5000);
            assert_null(cJSON_GetObjectItem(b, "dispatchTime"));
            char ref[32];
            snprintf(ref, sizeof ref, "%.0f", ids[i]);
            assert_string_equal(str_of(soc_row, "vendor_ref"), ref);
        } else if (sw == 1) {
            timed_call = i;
            assert_string_equal(codes, "NE=33000002");
            assert_int_equal((int)it_num(b, "controlType", NULL), 2);
        } else {
            /* The release: a stop of plant 2 and nothing else, under a requestID of its own. */
            stop_call = i;
            assert_int_equal(sw, 0);
            assert_string_equal(codes, "NE=33000002");
            assert_int_equal(cJSON_GetArraySize(b), 3); /* plantCodes, dispatchSwitch, requestID */
        }
        cJSON_Delete(b);
    }
    assert_true(soc_call >= 0 && timed_call >= 0 && stop_call > timed_call);
    assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    cJSON_Delete(calls);

    /* vpp/dod on plant 3's battery, vpp/devOnOff on plant 5's inverter: off, then on. */
    calls = requests(h, "/vpp/dod");
    assert_int_equal(cJSON_GetArraySize(calls), 1);
    assert_int_equal(answer_code(cJSON_GetArrayItem(calls, 0)), 0);
    cJSON *b = body_of(cJSON_GetArrayItem(calls, 0));
    assert_string_equal(str_of(b, "dns"), "NE=35000003");
    assert_int_equal((int)it_num(b, "dod", NULL), 85);
    cJSON_Delete(b);
    cJSON_Delete(calls);
    calls = requests(h, "/vpp/devOnOff");
    assert_int_equal(cJSON_GetArraySize(calls), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(answer_code(cJSON_GetArrayItem(calls, i)), 0);
        b = body_of(cJSON_GetArrayItem(calls, i));
        assert_string_equal(str_of(b, "dns"), "NE=34000005");
        assert_int_equal((int)it_num(b, "controlType", NULL), i == 0 ? 2 : 1);
        cJSON_Delete(b);
    }
    cJSON_Delete(calls);

    /* The emulator's devices now. Plant 2: back in its own mode, its charge ended by the stop. */
    st = emu_plant(h, "NE=33000002");
    assert_string_equal(str_of(plant_of(st), "mode"), "self");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(plant_of(st), "task")));
    const cJSON *e = task_entry(st, 1, NULL);
    assert_non_null(e);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "replaced")));
    assert_non_null(task_entry(st, 0, NULL));
    cJSON_Delete(st);
    /* Plant 4: its SoC-control task complete at the target, the energy in the journal. */
    st = emu_plant(h, "NE=33000004");
    const cJSON *task;
    e = task_entry(st, 1, &task);
    assert_non_null(e);
    assert_int_equal((int)it_num(task, "controlType", NULL), 1);
    assert_true(fabs(it_num(task, "targetSOC", NULL) - target) < 1e-9);
    assert_int_equal((int)it_num(e, "status", NULL), 0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(e, "replaced")));
    double soc = it_num(plant_of(st), "soc_pct", NULL), kwh = it_num(e, "energy_kwh", NULL);
    note("# SoC target %.0f %%: the emulator's battery at %.2f %%, %.0f Wh moved (journal %.0f)\n",
         target, soc, kwh * 1000, it_num(soc_row, "energy_wh", NULL));
    assert_true(fabs(soc - target) < 0.5); /* a night's load drains ~0.03 %/min after it */
    assert_true(kwh > 0);
    assert_true(fabs(it_num(soc_row, "energy_wh", NULL) - kwh * 1000) <= 1);
    cJSON_Delete(st);
    st = emu_plant(h, "NE=33000003");
    assert_int_equal((int)it_num(plant_of(st), "dod", NULL), 85);
    cJSON_Delete(st);
    st = emu_plant(h, "NE=33000005");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(plant_of(st), "inverter_on")));
    cJSON_Delete(st);
    cJSON_Delete(rows);
}

typedef struct kpi {
    double battery, grid, pv, load;
} kpi;

/* The last complete "kpi CODE ..." line of the strategy's log; 0 if none or a value is nil. */
static int last_kpi(const char *file, const char *code, kpi *k)
{
    char *text = it_read(file);
    if (!text) return 0;
    char needle[48];
    snprintf(needle, sizeof needle, "kpi %s ", code);
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        if (strchr(p, '\n')) last = p; /* a line still being written has no end yet */
    int ok = last && sscanf(last + strlen(needle), "battery_w=%lf grid_w=%lf pv_w=%lf load_w=%lf",
                            &k->battery, &k->grid, &k->pv, &k->load) == 4;
    free(text);
    return ok;
}

typedef struct kpi_goal {
    hw *h;
    const char *log, *codes[2];
    kpi got[2];      /* gridpilot's reading */
    cJSON *plant[2]; /* the emulator's plant (owned) */
} kpi_goal;

/* For each plant: the emulator's 5-minute sample was taken while its task ran, and the reading
 * gridpilot's strategy saw last is that sample (kW to W: within 1 W). */
static int readings_match(it_env *t, void *ud)
{
    kpi_goal *g = ud;
    for (int i = 0; i < 2; i++) {
        cJSON_Delete(g->plant[i]);
        g->plant[i] = NULL;
        cJSON *st = emu_plant(g->h, g->codes[i]);
        const cJSON *task;
        int ok = task_entry(st, i == 0 ? 2 : 1, &task) &&
                 it_num(plant_of(st), "sample_ms", NULL) > it_num(task, "start_ms", NULL) &&
                 last_kpi(g->log, g->codes[i], &g->got[i]);
        if (ok) {
            const cJSON *s = cJSON_GetObjectItem(plant_of(st), "sample_w");
            ok = fabs(g->got[i].battery - it_num(s, "battery", NULL)) <= 1 &&
                 fabs(g->got[i].grid - it_num(s, "grid", NULL)) <= 1 &&
                 fabs(g->got[i].pv - it_num(s, "pv", NULL)) <= 1 &&
                 fabs(g->got[i].load - it_num(s, "load", NULL)) <= 1;
        }
        g->plant[i] = cJSON_Duplicate(plant_of(st), 1);
        cJSON_Delete(st);
        if (!ok) return 0;
    }
    return 1;
}

/* Non-zero readings have the contract's signs end to end (plantRealtimeKpi in kW, batteryPower
 * > 0 discharge, meterPower > 0 feed-in, to W with battery_w > 0 discharging and grid_w > 0
 * importing): at night, plant 3 discharges 2 kW into a few hundred W of load (exports), plant 2
 * charges 2 kW (imports). */
static void kpi_signs_while_charging_and_discharging(void **state)
{
    hw *h = *state;
    start_at(h, NIGHT);
    start_emu(h, "3");
    config(h, NULL, NULL);
    one_shot_strategy(
        h, "sent",
        "['NE=33000003'] = function(d) return { setpoint_w = 2000, duration_s = 3600 } end,"
        " ['NE=33000002'] = function(d) return { setpoint_w = -2000, duration_s = 3600 } end");
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    kpi_goal g = {.h = h, .log = p.err, .codes = {"NE=33000003", "NE=33000002"}};
    it_wait_for(h->t, 60, readings_match, &g,
                "gridpilot's readings of the running tasks to equal the emulator's samples");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 30), 0);
    for (int i = 0; i < 2; i++) {
        const kpi *k = &g.got[i];
        note("# %s: battery_w %+.0f grid_w %+.0f pv_w %.0f load_w %.0f (emulator setpoint %+.0f)\n",
             g.codes[i], k->battery, k->grid, k->pv, k->load,
             it_num(g.plant[i], "setpoint_w", NULL));
        /* The site balances: what the load takes comes from PV, battery and grid. */
        assert_true(fabs(k->pv + k->battery + k->grid - k->load) <= 3);
        assert_true(k->pv == 0 && k->load > 0);
    }
    /* Discharging: battery_w > 0, the surplus exported (grid_w < 0). */
    assert_true(fabs(g.got[0].battery - 2000) <= 1);
    assert_true(g.got[0].grid < 0);
    /* Charging: battery_w < 0, imported (grid_w > 0). */
    assert_true(fabs(g.got[1].battery + 2000) <= 1);
    assert_true(g.got[1].grid > 0);
    assert_int_equal((int)it_num(g.plant[0], "setpoint_w", NULL), 2000);
    assert_int_equal((int)it_num(g.plant[1], "setpoint_w", NULL), -2000);
    cJSON_Delete(g.plant[0]);
    cJSON_Delete(g.plant[1]);
    assert_int_equal(it_count_tasks(h->t, "pending", "kind", "setpoint"), 2);
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

typedef struct example_goal {
    hw *h;
    int n; /* setpoints expected */
} example_goal;

/* n setpoints went out for real (not dry-run) and the vendor took them, and the emulator has
 * them. */
static int example_dispatched(it_env *t, void *ud)
{
    example_goal *g = ud;
    cJSON *rows = it_tasks(t, NULL);
    int live = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        const char *st = str_of(r, "state");
        live +=
            strcmp(str_of(r, "kind"), "setpoint") == 0 &&
            (strcmp(st, "accepted") == 0 || strcmp(st, "pending") == 0 || strcmp(st, "done") == 0);
    }
    cJSON_Delete(rows);
    return live == g->n && it_emu_count(&g->h->emu, "/vpp/chargeAndDischarge") >= 1;
}

/* The shipped example config as it is, pointed at this test's emulator and folder (its own
 * port and state_dir would collide with other runs): it checks clean, dry-runs, then runs for
 * real until its commands are vendor tasks, and its on_exit releases them at SIGTERM. */
static void example_config_runs(void **state)
{
    hw *h = *state;
    /* Night, the example's wave near its discharge peak (over 15 kW): each of the 3 batteries
     * has charge to give and gets its whole 5 kW (battery_power_w). */
    start_at(h, WAVE_PEAK);
    start_emu(h, "3");
    char *text = it_read(GP_IT_SRCDIR "/examples/huawei.json");
    assert_non_null(text);
    char *a = replace_all(text, "https://127.0.0.1:27200", h->emu.url);
    /* The plugins under test, not whatever a demo build left in build/. */
    char *b = replace_all(a, "\"../build/plugins\"", "\"" GP_IT_PLUGINS "\"");
    char *c = replace_all(b, "\"../", "\"" GP_IT_SRCDIR "/");
    char *d = replace_all(c, "\"var/huawei\"", "\"var\"");
    assert_non_null(strstr(d, h->emu.url));
    it_write(h->t, "gridpilot.json", "%s", d);
    free(text), free(a), free(b), free(c), free(d);
    char *out, *err;
    assert_int_equal(it_run(h->t, 30, &out, &err, "check", "-c", h->t->cfg, NULL), 0);
    free(out), free(err);
    assert_int_equal(
        it_run(h->t, 120, &out, &err, "run", "-c", h->t->cfg, "--once", "--dry-run", NULL), 0);
    assert_non_null(strstr(err, "ready: 3 device(s), 3 online"));
    const char *line = strstr(err, "fleet target +");
    double want_kw = 0;
    int sharing = 0;
    if (!line ||
        sscanf(line, "fleet target +%lf kW shared by %d batteries", &want_kw, &sharing) != 2)
        fail_msg("the example's strategy logged no discharge target: %s", err);
    assert_true(want_kw > 15 && want_kw <= 20);
    assert_int_equal(sharing, 3);
    free(out), free(err);
    assert_int_equal(it_count_tasks(h->t, "dry_run", NULL, NULL), 3);
    assert_int_equal(it_emu_count(&h->emu, "/vpp/chargeAndDischarge"), 0);

    /* For real. */
    it_proc p;
    it_spawn(h->t, &p, "run", "-c", h->t->cfg, NULL);
    example_goal g = {h, 3};
    it_wait_for(h->t, 60, example_dispatched, &g, "the example's 3 setpoints to reach the vendor");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 60), 0);
    assert_true(it_contains(p.err, "on_exit release"));

    /* The emulator got discharges of 5 kW for 2 minutes (the strategy's 120 s), then one stop
     * per plant. */
    cJSON *calls = requests(h, "/vpp/chargeAndDischarge");
    int discharged[3] = {0}, stopped[3] = {0};
    const cJSON *r;
    cJSON_ArrayForEach(r, calls)
    {
        assert_int_equal(answer_code(r), 0);
        cJSON *body = body_of(r);
        int sw = (int)it_num(body, "dispatchSwitch", NULL);
        char *codes = strdup(str_of(body, "plantCodes"));
        if (sw == 2) {
            assert_int_equal((int)it_num(body, "powerDispatch", NULL), -5000);
            assert_int_equal((int)it_num(body, "dispatchTime", NULL), 2);
        } else {
            assert_int_equal(sw, 0);
        }
        for (char *save = NULL, *c = strtok_r(codes, ",", &save); c;
             c = strtok_r(NULL, ",", &save)) {
            long i = strtol(c + 3, NULL, 10) - 33000001;
            assert_true(i >= 0 && i < 3);
            if (sw == 2) {
                discharged[i]++;
            } else {
                assert_true(discharged[i]); /* a stop comes after the task */
                stopped[i]++;
            }
        }
        free(codes);
        cJSON_Delete(body);
    }
    cJSON_Delete(calls);
    for (int i = 0; i < 3; i++) {
        assert_true(discharged[i] >= 1);
        assert_int_equal(stopped[i], 1);
    }
    /* The journal: each setpoint was the vendor's task until the exit's release stopped it. */
    cJSON *rows = it_tasks(h->t, NULL);
    for (int i = 1; i <= 3; i++) {
        char code[16];
        snprintf(code, sizeof code, "NE=%d", 33000000 + i);
        const cJSON *sp = find_row(rows, code, "setpoint", "cancelled", "5000");
        if (!sp) fail_msg("%s: no setpoint of 5000 W stopped by the exit's release", code);
        assert_non_null(str_of(sp, "vendor_ref"));
        assert_non_null(find_row(rows, code, "release", "done", NULL));
    }
    cJSON_Delete(rows);
    /* And the batteries are back in their own mode. */
    cJSON *st = it_emu_call(&h->emu, "GET", "state", NULL);
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(st, "plants"))
    {
        assert_string_equal(str_of(r, "mode"), "self");
    }
    cJSON_Delete(st);
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
        T(release_soc_target_dod_onoff),
        T(kpi_signs_while_charging_and_discharging),
    };
    if (getenv("GP_IT_ONLY")) cmocka_set_test_filter(getenv("GP_IT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
