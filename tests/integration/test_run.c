/* End to end: the gridpilot binary, the sim plugin, a strategy, the journal. */
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

#include "harness.h"

/* Diagnostics go to stderr: stdout is the TAP stream. */
#define note(...) fprintf(stderr, __VA_ARGS__)

/* Four simulated batteries; every command the sim receives is a line in trace.log. */
#define SIM(extra)                                                                                 \
    "{\"id\": \"sim\", \"plugin\": \"sim\", \"poll\": \"1s\", \"task_poll\": \"200ms\","           \
    " \"config\": {\"devices\": [{\"id\": \"b\", \"capacity_wh\": 10000, \"max_charge_w\":"        \
    " 5000, \"max_discharge_w\": 5000, \"soc_pct\": 50}], \"count\": 4, \"seed\": 7,"              \
    " \"trace_file\": \"trace.log\"" extra "}}"

#define CHARGE_ALL                                                                                 \
    "return { decide = function(ctx)\n"                                                            \
    "  local c = {}\n"                                                                             \
    "  for _, d in ipairs(ctx.devices) do\n"                                                       \
    "    c[#c + 1] = { device = d.id, setpoint_w = ctx.params.w }\n"                               \
    "  end\n"                                                                                      \
    "  return c\n"                                                                                 \
    "end }\n"

static const char *trace(it_env *t)
{
    static char p[160];
    snprintf(p, sizeof p, "%s/trace.log", t->dir);
    return p;
}

/* The sim adapter, a 1 s tick and CHARGE_ALL at `w` watts. */
static void standard_w(it_env *t, int w, const char *sim_extra_cfg, const char *extra)
{
    char ad[1024];
    snprintf(ad, sizeof ad, SIM("%s"), sim_extra_cfg);
    char ex[512];
    snprintf(ex, sizeof ex,
             "  \"tick\": \"1s\",\n  \"strategy\": {\"file\": \"s.lua\", \"params\": {\"w\": "
             "%d}}%s%s",
             w, extra && *extra ? ",\n" : "", extra ? extra : "");
    it_config(t, ex, ad);
    it_write(t, "s.lua", CHARGE_ALL);
}

static void standard(it_env *t, const char *sim_extra_cfg, const char *extra)
{
    standard_w(t, -2000, sim_extra_cfg, extra);
}

/* ---- command line ----------------------------------------------------------------------- */

static void cli_basics(void **state)
{
    it_env *t = *state;
    char *out, *err;
    assert_int_equal(it_run(t, 10, &out, &err, "version", NULL), 0);
    assert_non_null(strstr(out, "plugin ABI 1.1"));
    free(out), free(err);
    assert_int_equal(it_run(t, 10, &out, &err, NULL), 2);
    assert_non_null(strstr(err, "usage"));
    free(out), free(err);
    assert_int_equal(it_run(t, 10, &out, &err, "fly", NULL), 2);
    assert_non_null(strstr(err, "unknown command 'fly'"));
    free(out), free(err);
    assert_int_equal(it_run(t, 10, &out, &err, "run", NULL), 2);
    assert_non_null(strstr(err, "-c FILE is required"));
    free(out), free(err);
    standard(t, "", NULL);
    assert_int_equal(it_run(t, 10, &out, &err, "run", "-c", t->cfg, "--for", "soon", NULL), 2);
    assert_non_null(strstr(err, "--for"));
    free(out), free(err);
    assert_int_equal(it_run(t, 10, &out, &err, "tasks", "-c", t->cfg, "--state", "bogus", NULL), 2);
    assert_non_null(strstr(err, "unknown state 'bogus'"));
    free(out), free(err);
    assert_int_equal(it_run(t, 10, &out, &err, "tasks", "-c", t->cfg, "--json", NULL), 0);
    assert_string_equal(out, "[]\n"); /* nothing has run yet */
    free(out), free(err);
}

/* ---- check and plugins ------------------------------------------------------------------ */

static void check_ok(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    char *out, *err;
    assert_int_equal(it_run(t, 20, &out, &err, "check", "-c", t->cfg, NULL), 0);
    assert_non_null(strstr(out, "OK"));
    free(out), free(err);
}

static void check_names_every_fault(void **state)
{
    it_env *t = *state;
    it_write(t, "s.lua", "return { decide = function(ctx) return {} end\n");
    it_config(t,
              "  \"tick\": \"soon\", \"colour\": \"blue\",\n"
              "  \"strategy\": {\"file\": \"s.lua\"}",
              "{\"id\": \"sim\", \"plugin\": \"sim\", \"config\": {\"count\": \"four\","
              " \"devcies\": []}},"
              " {\"id\": \"x\", \"plugin\": \"nosuchvendor\"}");
    char *out, *err;
    assert_int_equal(it_run(t, 20, &out, &err, "check", "-c", t->cfg, NULL), 2);
    note("%s", err);
    assert_non_null(strstr(err, "tick: 'soon' is not a duration"));
    assert_non_null(strstr(err, "colour: unknown key"));
    assert_non_null(strstr(err, "adapters[0].config.count:"));
    assert_non_null(strstr(err, "adapters[0].config.devcies: unknown key"));
    assert_non_null(strstr(err, "adapters[1].plugin: no plugin 'nosuchvendor' found"));
    assert_non_null(strstr(err, "strategy.file:"));
    assert_non_null(strstr(err, "s.lua:"));
    /* Every problem line names the config file first. */
    for (char *save = NULL, *l = strtok_r(err, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        assert_non_null(strstr(l, "gridpilot.json: "));
    free(out), free(err);
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void check_state_dir_and_missing_strategy(void **state)
{
    it_env *t = *state;
    it_write(t, "var", "a file where the journal folder should be\n");
    it_config(t, "  \"strategy\": {\"file\": \"gone.lua\"}", SIM(""));
    char *out, *err;
    assert_int_equal(it_run(t, 20, &out, &err, "check", "-c", t->cfg, NULL), 2);
    note("%s", err);
    assert_int_equal(count_of(err, "state_dir: journal folder cannot be used: "), 1);
    assert_non_null(strstr(err, "/var is not a folder"));
    /* One fault, one line: the unreadable file is not also "compiled". */
    assert_int_equal(count_of(err, "strategy.file:"), 1);
    assert_non_null(strstr(err, "2 problem(s)"));
    free(out), free(err);

    /* `run` and `tasks` say it too and exit 2 (a config fault), before any adapter starts. */
    it_config(t, "", SIM(""));
    assert_int_equal(it_run(t, 20, &out, &err, "run", "-c", t->cfg, "--once", NULL), 2);
    assert_non_null(strstr(err, "state_dir: journal folder cannot be used: "));
    free(out), free(err);
    assert_int_equal(it_run(t, 20, &out, &err, "tasks", "-c", t->cfg, NULL), 2);
    assert_non_null(strstr(err, "state_dir: "));
    free(out), free(err);
}

static void check_refuses_bad_plugins(void **state)
{
    it_env *t = *state;
    it_write(t, "gridpilot.json",
             "{\"plugin_path\": [\"%s\"], \"adapters\": ["
             "{\"id\": \"a\", \"plugin\": \"badmajor\"}, {\"id\": \"b\", \"plugin\": \"capnofn\"},"
             "{\"id\": \"c\", \"plugin\": \"noentry\"}, {\"id\": \"d\", \"plugin\": \"good\"}]}",
             GP_IT_TEST_PLUGINS);
    char *out, *err;
    assert_int_equal(it_run(t, 20, &out, &err, "check", "-c", t->cfg, NULL), 2);
    note("%s", err);
    assert_non_null(strstr(err, "badmajor.so: refused: built for plugin ABI 2."));
    assert_non_null(strstr(err, "capnofn.so: refused: it claims the SETPOINT capability"));
    assert_non_null(strstr(err, "noentry.so: refused: not a gridpilot plugin"));
    assert_null(strstr(err, "good.so"));
    free(out), free(err);
    /* `run` refuses the same way, before touching anything. */
    assert_int_equal(it_run(t, 20, &out, &err, "run", "-c", t->cfg, "--once", NULL), 2);
    assert_non_null(strstr(err, "badmajor.so: refused"));
    free(out), free(err);
}

static void plugins_lists(void **state)
{
    it_env *t = *state;
    it_write(t, "gridpilot.json",
             "{\"plugin_path\": [\"%s\", \"%s\"], \"adapters\": "
             "[{\"id\": \"a\", \"plugin\": \"sim\"}]}",
             GP_IT_PLUGINS, GP_IT_TEST_PLUGINS);
    char *out, *err;
    assert_int_equal(it_run(t, 20, &out, &err, "plugins", "-c", t->cfg, NULL), 0);
    note("%s%s", out, err);
    assert_non_null(strstr(out, "sim "));
    assert_non_null(strstr(out, "read,setpoint,soc_target,dod,onoff"));
    assert_non_null(strstr(out, "good "));
    assert_non_null(strstr(err, "badmagic.so: refused: wrong magic"));
    free(out), free(err);
}

/* ---- run -------------------------------------------------------------------------------- */

static void once_dispatches_and_journals(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    free(out), free(err);
    cJSON *rows = it_tasks(t, NULL);
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        assert_string_equal(cJSON_GetObjectItem(r, "kind")->valuestring, "setpoint");
        assert_true(cJSON_GetObjectItem(r, "value")->valuedouble == -2000);
        assert_string_equal(cJSON_GetObjectItem(r, "state")->valuestring, "accepted");
        assert_int_equal(cJSON_GetObjectItem(r, "attempts")->valueint, 1);
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "error")));
        assert_non_null(strstr(cJSON_GetObjectItem(r, "device")->valuestring, "sim/b-"));
        assert_true(cJSON_GetObjectItem(r, "created")->valuedouble > 1.7e9);
    }
    cJSON_Delete(rows);
    assert_int_equal(it_count_lines(trace(t), "setpoint"), 4);

    /* The same decision again: the commands are still in force, nothing is re-sent. */
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    assert_non_null(strstr(err, "4 unchanged"));
    free(out), free(err);
    assert_int_equal(it_count_tasks(t, NULL, NULL, NULL), 4);
    assert_int_equal(it_count_lines(trace(t), "setpoint"), 4);

    /* Text output of `tasks`. */
    assert_int_equal(it_run(t, 10, &out, &err, "tasks", "-c", t->cfg, "--state", "accepted", NULL),
                     0);
    assert_non_null(strstr(out, "sim/b-1"));
    assert_non_null(strstr(out, "accepted"));
    free(out), free(err);
}

static void dry_run_sends_nothing(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", "--dry-run", NULL),
                     0);
    assert_non_null(strstr(err, "dry run, not sent"));
    free(out), free(err);
    assert_int_equal(it_count_tasks(t, "dry_run", NULL, NULL), 4);
    assert_int_equal(it_count_tasks(t, NULL, NULL, NULL), 4);
    assert_int_equal(it_count_lines(trace(t), NULL), 0);
}

static int all_pending(it_env *t, void *ud)
{
    return it_count_tasks(t, "pending", NULL, NULL) == 4;
}

static int all_done(it_env *t, void *ud)
{
    return it_count_tasks(t, "done", NULL, NULL) == 4;
}

static void restart_resumes_pending_task(void **state)
{
    it_env *t = *state;
    standard(t, ", \"async\": true, \"task_time\": \"3s\"", "  \"on_exit\": \"hold\"");
    it_proc p;
    it_spawn(t, &p, "run", "-c", t->cfg, NULL);
    it_wait_for(t, 30, all_pending, NULL, "four pending vendor tasks");
    /* Remember the vendor references, then kill without any chance to clean up. */
    cJSON *before = it_tasks(t, "pending");
    it_signal(&p, SIGKILL);
    it_wait(&p, 10);
    assert_int_equal(it_count_lines(trace(t), "setpoint"), 4);

    /* The restarted daemon's strategy has nothing new to ask: every send after this point
     * would be the core re-sending an accepted command. (That the same strategy does not
     * re-send a pending command is once_leaves_tasks_pending.) */
    it_write(t, "s.lua", "return { decide = function(ctx) return {} end }\n");
    it_proc q;
    it_spawn(t, &q, "run", "-c", t->cfg, NULL);
    it_wait_for(t, 30, all_done, NULL, "the resumed tasks to finish");
    it_signal(&q, SIGTERM);
    assert_int_equal(it_wait(&q, 20), 0);
    char *err = it_read(q.err);
    assert_non_null(strstr(err, "resumed 4 command(s)"));
    free(err);

    /* Each task was sent once, polled to done under its original reference. */
    assert_int_equal(it_count_lines(trace(t), "setpoint"), 4);
    cJSON *after = it_tasks(t, "done");
    assert_int_equal(cJSON_GetArraySize(after), 4);
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, after)
    {
        int matched = 0;
        cJSON_ArrayForEach(b, before) matched |=
            cJSON_GetObjectItem(a, "id")->valueint == cJSON_GetObjectItem(b, "id")->valueint &&
            strcmp(cJSON_GetObjectItem(a, "vendor_ref")->valuestring,
                   cJSON_GetObjectItem(b, "vendor_ref")->valuestring) == 0;
        assert_true(matched);
        assert_int_equal(cJSON_GetObjectItem(a, "attempts")->valueint, 1);
        assert_true(cJSON_GetObjectItem(a, "energy_wh")->valuedouble > 0);
    }
    cJSON_Delete(before);
    cJSON_Delete(after);
    assert_int_equal(it_count_tasks(t, NULL, NULL, NULL), 4);
}

static void once_leaves_tasks_pending(void **state)
{
    it_env *t = *state;
    standard(t, ", \"async\": true, \"task_time\": \"1h\"", NULL);
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    assert_non_null(strstr(err, "still pending; the next run polls them"));
    free(out), free(err);
    assert_int_equal(it_count_tasks(t, "pending", NULL, NULL), 4);
    /* The next run polls them (still running) and sends nothing new. */
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    free(out), free(err);
    assert_int_equal(it_count_tasks(t, "pending", NULL, NULL), 4);
    assert_int_equal(it_count_lines(trace(t), "setpoint"), 4);
}

static int four_accepted(it_env *t, void *ud)
{
    return it_count_tasks(t, "accepted", NULL, NULL) == 4;
}

static void sigterm_releases(void **state)
{
    it_env *t = *state;
    standard(t, "", "  \"on_exit\": \"release\"");
    it_proc p;
    it_spawn(t, &p, "run", "-c", t->cfg, NULL);
    it_wait_for(t, 30, four_accepted, NULL, "four accepted setpoints");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 20), 0);
    assert_int_equal(it_count_tasks(t, "done", "origin", "on_exit"), 4);
    assert_int_equal(it_count_tasks(t, "done", "kind", "setpoint"), 4);
    assert_int_equal(it_count_lines(trace(t), "release"), 4);
}

static void hold_keeps_commands(void **state)
{
    it_env *t = *state;
    standard(t, "", "  \"on_exit\": \"hold\"");
    it_proc p;
    it_spawn(t, &p, "run", "-c", t->cfg, NULL);
    it_wait_for(t, 30, four_accepted, NULL, "four accepted setpoints");
    it_signal(&p, SIGINT);
    assert_int_equal(it_wait(&p, 20), 0);
    assert_int_equal(it_count_tasks(t, "accepted", NULL, NULL), 4);
    assert_int_equal(it_count_lines(trace(t), "release"), 0);
}

typedef struct needle {
    const char *file, *text;
} needle;

static int file_has(it_env *t, void *ud)
{
    needle *n = ud;
    return it_contains(n->file, n->text);
}

static int value_accepted(it_env *t, void *ud)
{
    cJSON *rows = it_tasks(t, "accepted");
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) n += cJSON_GetObjectItem(r, "value")->valuedouble == -1000;
    cJSON_Delete(rows);
    return n == 4;
}

static void sighup_reloads_or_keeps(void **state)
{
    it_env *t = *state;
    standard(t, "", "  \"on_exit\": \"hold\"");
    it_proc p;
    it_spawn(t, &p, "run", "-c", t->cfg, NULL);
    it_wait_for(t, 30, four_accepted, NULL, "four accepted setpoints");
    /* A broken strategy is refused and the running one keeps going. */
    it_write(t, "s.lua", "return { decide = function(ctx) return {} end");
    it_signal(&p, SIGHUP);
    needle refused = {p.err, "reload refused, keeping the current strategy"};
    it_wait_for(t, 20, file_has, &refused, "the reload to be refused");
    /* A good one, with new params, replaces it. */
    standard_w(t, -1000, "", "  \"on_exit\": \"hold\"");
    it_signal(&p, SIGHUP);
    it_wait_for(t, 30, value_accepted, NULL, "setpoints of the reloaded strategy");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 20), 0);
}

/* SIGHUP re-reads the tariff with the strategy; a broken file keeps the prices in force. */
static void sighup_reloads_tariff(void **state)
{
    it_env *t = *state;
    standard(t, "", "  \"tariff\": {\"file\": \"prices.csv\"}");
    it_write(t, "s.lua",
             "return { decide = function(ctx)\n"
             "  gp.log('info', 'price now %%.2f', ctx.tariff.import_price(ctx.now) or -1)\n"
             "  return {}\n"
             "end }\n");
    it_write(t, "prices.csv",
             "start,stop,import,export\n2020-01-01T00:00:00Z,2100-01-01T00:00:00Z,0.10,0.05\n");
    it_proc p;
    it_spawn(t, &p, "run", "-c", t->cfg, NULL);
    needle first = {p.err, "price now 0.10"};
    it_wait_for(t, 30, file_has, &first, "the first price");
    it_write(t, "prices.csv",
             "start,stop,import,export\n2020-01-01T00:00:00Z,2050-01-01T00:00:00Z,0.30,0.05\n"
             "2051-01-01T00:00:00Z,2100-01-01T00:00:00Z,0.30,0.05\n");
    it_signal(&p, SIGHUP);
    needle refused = {p.err, "line 3: start 2051-01-01T00:00:00Z leaves a gap"};
    it_wait_for(t, 20, file_has, &refused, "the broken tariff to be refused");
    assert_int_equal(it_count_lines(p.err, "price now 0.30"), 0);
    it_write(t, "prices.csv",
             "start,stop,import,export\n2020-01-01T00:00:00Z,2100-01-01T00:00:00Z,0.30,0.05\n");
    it_signal(&p, SIGHUP);
    needle second = {p.err, "price now 0.30"};
    it_wait_for(t, 30, file_has, &second, "the reloaded price");
    it_signal(&p, SIGTERM);
    assert_int_equal(it_wait(&p, 20), 0);
}

static void runaway_strategy_is_stopped(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    it_write(t, "s.lua", "return { decide = function(ctx) while true do end end }\n");
    char *out, *err;
    assert_int_equal(it_run(t, 40, &out, &err, "run", "-c", t->cfg, "--for", "3s", NULL), 0);
    assert_non_null(strstr(err, "time limit"));
    assert_non_null(strstr(err, "nothing dispatched this tick"));
    assert_non_null(strstr(err, "ran for 3s: stopping"));
    free(out), free(err);
    assert_int_equal(it_count_tasks(t, NULL, NULL, NULL), 0);
}

static void bad_commands_are_named(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    it_write(t, "s.lua",
             "return { decide = function(ctx) return {\n"
             "  { device = 'sim/zzz', setpoint_w = -1000 },\n"
             "  { device = 'sim/b-1', setpiont_w = -1000 },\n"
             "  { device = 'sim/b-2', setpoint_w = -9000 },\n"
             "} end }\n");
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    note("%s", err);
    assert_non_null(strstr(err, "strategy command 1: unknown device 'sim/zzz'"));
    assert_non_null(strstr(err, "unknown key 'setpiont_w'"));
    assert_non_null(strstr(err, "clamped to -5000 W"));
    free(out), free(err);
    cJSON *rows = it_tasks(t, NULL);
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "value")->valuedouble == -5000);
    cJSON_Delete(rows);
}

static void refused_command_is_failed(void **state)
{
    it_env *t = *state;
    standard(t, ", \"fail\": [\"b-3\"]", NULL);
    char *out, *err;
    /* --once reports a command that did not succeed in its exit status. */
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 1);
    assert_non_null(strstr(err, "1 command(s) failed or got no answer"));
    free(out), free(err);
    cJSON *rows = it_tasks(t, "failed");
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    const cJSON *r = cJSON_GetArrayItem(rows, 0);
    assert_string_equal(cJSON_GetObjectItem(r, "device")->valuestring, "sim/b-3");
    assert_non_null(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "refused"));
    cJSON_Delete(rows);
    assert_int_equal(it_count_tasks(t, "accepted", NULL, NULL), 3);
}

static void json_logs(void **state)
{
    it_env *t = *state;
    standard(t, "", NULL);
    char *out, *err;
    assert_int_equal(
        it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", "--log-format", "json", NULL), 0);
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(err, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (strncmp(l, "==", 2) == 0) continue; /* valgrind */
        cJSON *j = cJSON_Parse(l);
        assert_non_null(j);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "level")));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "msg")));
        cJSON_Delete(j);
        lines++;
    }
    assert_true(lines > 3);
    free(out), free(err);
}

/* The authplug test plugin behind adapter "v", with CHARGE_ALL at -1000 W. */
static void authplug(it_env *t, int devices, const char *login)
{
    it_write(t, "s.lua", CHARGE_ALL);
    it_write(t, "gridpilot.json",
             "{\"plugin_path\": [\"%s\"], \"strategy\": {\"file\": \"s.lua\", \"params\": "
             "{\"w\": -1000}}, \"adapters\": [{\"id\": \"v\", \"plugin\": \"authplug\","
             " \"timeout\": \"200ms\", \"config\": {\"devices\": %d, \"login\": \"%s\"}}]}",
             GP_IT_TEST_PLUGINS, devices, login);
}

/* A vendor session that has expired: one login, then every read and command goes through. */
static void login_then_replay(void **state)
{
    it_env *t = *state;
    authplug(t, 3, "ok");
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    assert_non_null(strstr(err, "authentication expired during a read; logging in again"));
    assert_non_null(strstr(err, "3/3 online")); /* the read was replayed after the login */
    free(out), free(err);
    cJSON *rows = it_tasks(t, "accepted");
    assert_int_equal(cJSON_GetArraySize(rows), 3);
    cJSON_Delete(rows);
}

/* A login that never answers must not wedge the adapter: it fails after a deadline. */
static void login_that_hangs(void **state)
{
    it_env *t = *state;
    authplug(t, 2, "hang");
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 1);
    assert_non_null(strstr(err, "login failed: login did not finish within 400ms"));
    free(out), free(err);
    cJSON *rows = it_tasks(t, "failed");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "error")->valuestring,
                           "login failed"));
    cJSON_Delete(rows);
}

/* The demo strategy shipped in strategies/: the fleet follows a power target. */
static void example_fleet_wave(void **state)
{
    it_env *t = *state;
    char ad[1024];
    snprintf(ad, sizeof ad, SIM("%s"), "");
    it_config(t,
              "  \"strategy\": {\"file\": \"" GP_IT_SRCDIR "/strategies/fleet_wave.lua\","
              " \"params\": {\"target_w\": -12000}}",
              ad);
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "run", "-c", t->cfg, "--once", NULL), 0);
    free(out), free(err);
    cJSON *rows = it_tasks(t, "accepted");
    double sum = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) sum += cJSON_GetObjectItem(r, "value")->valuedouble;
    /* Four 5 kW batteries share a 12 kW charge target evenly. */
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    assert_true(fabs(sum + 12000) <= 40);
    cJSON_Delete(rows);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, it_setup, it_teardown)
    const struct CMUnitTest tests[] = {
        T(cli_basics),
        T(check_ok),
        T(check_names_every_fault),
        T(check_state_dir_and_missing_strategy),
        T(check_refuses_bad_plugins),

        T(plugins_lists),
        T(once_dispatches_and_journals),
        T(dry_run_sends_nothing),
        T(restart_resumes_pending_task),
        T(once_leaves_tasks_pending),
        T(sigterm_releases),
        T(hold_keeps_commands),
        T(sighup_reloads_or_keeps),
        T(sighup_reloads_tariff),
        T(runaway_strategy_is_stopped),
        T(bad_commands_are_named),
        T(refused_command_is_failed),
        T(json_logs),
        T(example_fleet_wave),
        T(login_then_replay),
        T(login_that_hangs),
    };
    if (getenv("GP_IT_ONLY")) cmocka_set_test_filter(getenv("GP_IT_ONLY"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
