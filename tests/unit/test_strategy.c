/* Strategy engine: loading, ctx, sandbox, limits, command parsing. Fixture strategies live in
 * tests/fixtures/strategies/. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "journal.h"
#include "log.h"
#include "str.h"
#include "strategy.h"
#include "tariff.h"
#include "timeutil.h"

#define NOW_MS 1767225600500LL /* 2026-01-01T00:00:00.500Z */
#define MiB    ((size_t)1 << 20)

static char fixture_dir[PATH_MAX];
static char path_buf[PATH_MAX + 64];

/* GP_TEST_SRCDIR when the build defines it; otherwise __FILE__, which is absolute or relative
 * to the build root meson compiles from (two levels above <build>/tests/unit/test_strategy).
 */
static int find_fixtures(void **state)
{
    (void)state;
#ifdef GP_TEST_SRCDIR
    if (realpath(GP_TEST_SRCDIR "/tests/fixtures/strategies", fixture_dir)) return 0;
#endif
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s", __FILE__);
    char *slash = strrchr(src, '/');
    if (slash) *slash = '\0';
    char guess[3 * PATH_MAX];
    if (src[0] == '/') {
        snprintf(guess, sizeof guess, "%s/../fixtures/strategies", src);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return -1;
        exe[n] = '\0';
        char *e = strrchr(exe, '/');
        if (e) *e = '\0';
        snprintf(guess, sizeof guess, "%s/../../%s/../fixtures/strategies", exe, src);
    }
    if (!realpath(guess, fixture_dir)) {
        fprintf(stderr, "fixtures not found at %s\n", guess);
        return -1;
    }
    return 0;
}

static const char *fixture(const char *name)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", fixture_dir, name);
    return path_buf;
}

static gp_strategy *load_opts(const char *name, const char *params, int64_t timeout_ms, size_t mem)
{
    char err[1024] = "";
    gp_strategy_opts o = {fixture(name), params, timeout_ms, mem};
    gp_strategy *s = gp_strategy_load(&o, err, sizeof err);
    if (!s) fail_msg("loading %s failed: %s", name, err);
    return s;
}

static gp_strategy *load(const char *name)
{
    return load_opts(name, NULL, 0, 0);
}

/* Load that must fail; returns the error. */
static const char *load_error(const char *path, const char *params)
{
    static char err[1024];
    err[0] = '\0';
    gp_strategy_opts o = {path, params, 0, 0};
    gp_strategy *s = gp_strategy_load(&o, err, sizeof err);
    assert_null(s);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n')); /* load errors are one line */
    return err;
}

static void add_device(gp_fleet *f, int adapter, const char *vendor, uint32_t caps, double cap_wh,
                       double max_ch, double max_dis)
{
    char err[256];
    gp_device_info info = {.size = sizeof info,
                           .vendor_id = vendor,
                           .caps = caps,
                           .capacity_wh = cap_wh,
                           .max_charge_w = max_ch,
                           .max_discharge_w = max_dis,
                           .soc_min_pct = NAN,
                           .soc_max_pct = NAN};
    int64_t idx = gp_fleet_add(f, (unsigned)adapter, &info, NULL, err, sizeof err);
    if (idx < 0) fail_msg("gp_fleet_add: %s", err);
}

static void read_device(gp_fleet *f, size_t idx, int64_t ts_ms, int online, double soc, double batt)
{
    gp_reading r = gp_reading_unknown(ts_ms);
    r.online = online;
    r.soc_pct = soc;
    r.battery_w = batt;
    gp_fleet_reading(f, idx, &r, ts_ms);
}

/* n online batteries of adapter "sim" with setpoint capability. */
static gp_fleet *big_fleet(size_t n)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "sim", 0);
    for (size_t i = 0; i < n; i++) {
        char vendor[32];
        snprintf(vendor, sizeof vendor, "bat-%06zu", i);
        add_device(f, 0, vendor, GP_CAP_READ | GP_CAP_SETPOINT, 10000, 5000, 5000);
        read_device(f, i, NOW_MS - 1000, 1, 50, 0);
    }
    return f;
}

static gp_fleet *one_device_fleet(void)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "sim", 0);
    add_device(f, 0, "a", GP_CAP_READ | GP_CAP_SETPOINT, 10000, 5000, 5000);
    return f;
}

static int tick(gp_strategy *s, gp_fleet *f, gp_tick_out *out, char *err, size_t errlen)
{
    gp_tick_in in = {NOW_MS, 30, 0, f, NULL};
    return gp_strategy_tick(s, &in, out, err, errlen);
}

/* A tick that must succeed. */
static void tick_ok(gp_strategy *s, gp_fleet *f, gp_tick_out *out)
{
    char err[2048] = "";
    if (tick(s, f, out, err, sizeof err) != 0) fail_msg("tick failed: %s", err);
}

static const gp_intent *find_intent(const gp_tick_out *out, const char *device)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->intents[i].device && strcmp(out->intents[i].device, device) == 0)
            return &out->intents[i];
    return NULL;
}

/* The value a probe strategy returns as {device = "checks", setpoint_w = n}. */
static double checks_done(const gp_tick_out *out)
{
    const gp_intent *in = find_intent(out, "checks");
    assert_non_null(in);
    assert_null(in->error);
    return in->setpoint_w;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (!strstr((hay), (needle))) fail_msg("'%s' not found in: %s", (needle), (hay));          \
    } while (0)

/* ---- commands ----------------------------------------------------------------------- */

static void test_commands_parse(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load("basic.lua");
    gp_tick_out out;
    tick_ok(s, f, &out);
    assert_int_equal(out.n, 5);
    for (size_t i = 0; i < out.n; i++) {
        assert_null(out.intents[i].error);
        assert_string_equal(out.intents[i].device, "sim/a");
    }
    const gp_intent *in = out.intents;
    assert_int_equal(in[0].fields, GP_IF_SETPOINT | GP_IF_DURATION);
    assert_true(in[0].setpoint_w == -2500 && in[0].duration_s == 1800);
    assert_int_equal(in[1].fields, GP_IF_SETPOINT | GP_IF_SOC_TARGET);
    assert_true(in[1].setpoint_w == 1000.5 && in[1].soc_target == 20);
    assert_int_equal(in[2].fields, GP_IF_DOD);
    assert_true(in[2].dod == 80);
    assert_int_equal(in[3].fields, GP_IF_ON);
    assert_int_equal(in[3].on, 0);
    assert_int_equal(in[4].fields, GP_IF_RELEASE);
    assert_int_equal(in[4].release, 1);
    assert_true(out.elapsed_ms >= 0 && out.elapsed_ms < 10000);
    assert_true(gp_strategy_mem(s) > 0);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void test_bad_commands(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load("bad_commands.lua");
    gp_tick_out out;
    tick_ok(s, f, &out);
    assert_int_equal(out.n, 9);
    static const char *const want[] = {
        NULL,
        "command 2: setpoint_w must be a number",
        "command 3: unknown key 'setpiont_w'",
        "command 4: missing device",
        "command 5: not a table (got string)",
        "command 6: release must be true",
        "command 7: on must be a boolean",
        "command 8: device must be a string",
        NULL,
    };
    for (size_t i = 0; i < out.n; i++) {
        if (want[i])
            assert_string_equal(out.intents[i].error ? out.intents[i].error : "(none)", want[i]);
        else
            assert_null(out.intents[i].error);
    }
    assert_string_equal(out.intents[0].device, "sim/a");
    assert_true(out.intents[0].setpoint_w == 100);
    /* Ranges are the dispatcher's business: passed through as given. */
    const gp_intent *last = &out.intents[8];
    assert_int_equal(last->fields, GP_IF_ON | GP_IF_DURATION | GP_IF_DOD);
    assert_true(last->on == 1 && last->duration_s == -5 && last->dod == 250);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void test_bad_returns(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    static const struct {
        const char *mode;
        const char *err; /* NULL: succeeds with no commands */
    } cases[] = {
        {"string", "returns.lua: decide must return a list of commands (got string)"},
        {"number", "returns.lua: decide must return a list of commands (got number)"},
        {"single", "returns.lua: decide must return a list of commands (found key"},
        {"holes", "returns.lua: decide must return a list of commands ("},
        {"huge_border", "returns.lua: decide must return a list of commands ("},
        {"none", NULL},
        {"empty", NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char params[64], err[1024] = "";
        snprintf(params, sizeof params, "{\"mode\":\"%s\"}", cases[c].mode);
        gp_strategy *s = load_opts("returns.lua", params, 0, 0);
        gp_tick_out out;
        int rc = tick(s, f, &out, err, sizeof err);
        if (cases[c].err) {
            assert_int_equal(rc, -1);
            assert_true(starts_with(err, cases[c].err));
        } else {
            assert_int_equal(rc, 0);
        }
        assert_int_equal(out.n, 0);
        gp_strategy_free(s);
    }
    gp_fleet_free(f);
}

/* ---- ctx ---------------------------------------------------------------------------- */

static void set_slot(gp_fleet *f, size_t idx, uint64_t id, gp_jstate st, gp_cmd_kind kind,
                     double value, double soc_target, uint32_t duration_s, int64_t since_ms)
{
    gp_slot *sl = &gp_fleet_dev(f, idx)->slot[GP_SLOT_DISPATCH];
    sl->id = id;
    sl->state = (uint8_t)st;
    sl->cmd.kind = (uint8_t)kind;
    sl->cmd.value = value;
    sl->cmd.soc_target = soc_target;
    sl->cmd.duration_s = duration_s;
    sl->since_ms = since_ms;
}

static void test_ctx_fields(void **state)
{
    (void)state;
    char err[256];
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "sim", 0);
    gp_fleet_add_adapter(f, "fusion", 0);
    gp_device_info a = {sizeof a, "a", 0,   GP_CAP_READ | GP_CAP_SETPOINT, 10000, 5000, 4000,
                        10,       95,  NULL};
    assert_int_equal(gp_fleet_add(f, 0, &a, NULL, err, sizeof err), 0);
    add_device(f, 1, "NE=1", GP_CAP_READ | GP_CAP_WRITE_MASK, NAN, NAN, NAN);
    add_device(f, 0, "b", GP_CAP_READ, 5000, 2000, 2000);
    gp_reading r = {sizeof r, NOW_MS - 5000, 1,   55,  -1200, 300, 800,
                    1700,     NAN,           NAN, NAN, NAN,   NAN, NULL};
    gp_fleet_reading(f, 0, &r, NOW_MS);
    gp_fleet_set_extra(f, 0, "{\"cell_v\":[3.31,3.32],\"mode\":\"eco\",\"gone\":null}");
    set_slot(f, 0, 7, GP_JS_ACCEPTED, GP_CMD_SETPOINT, -1200, NAN, 1800, NOW_MS - 2000);
    read_device(f, 2, NOW_MS - 1000, 0, 20, 500);
    set_slot(f, 2, 9, GP_JS_PENDING, GP_CMD_RELEASE, 0, 30, 0, NOW_MS - 100);

    gp_tariff *tar = gp_tariff_fixed(0.25, 0.05);
    gp_strategy *s = load("ctx_probe.lua");
    gp_tick_in in = {NOW_MS, 30, 1, f, tar};
    gp_tick_out out;
    char terr[2048] = "";
    if (gp_strategy_tick(s, &in, &out, terr, sizeof terr) != 0) fail_msg("tick 1: %s", terr);
    assert_true(checks_done(&out) == 70); /* every check in tick1 ran */

    /* Tick 2: telemetry changed, command finished, extras replaced, one device more. */
    r.soc_pct = 60;
    gp_fleet_reading(f, 0, &r, NOW_MS);
    gp_fleet_set_extra(f, 0, "{\"mode\":\"boost\"}");
    set_slot(f, 0, 0, GP_JS_DONE, GP_CMD_SETPOINT, -1200, NAN, 1800, NOW_MS);
    add_device(f, 0, "c", GP_CAP_READ | GP_CAP_DOD, 1000, 500, 500);
    if (gp_strategy_tick(s, &in, &out, terr, sizeof terr) != 0) fail_msg("tick 2: %s", terr);
    assert_true(checks_done(&out) == 13);

    gp_strategy_free(s);
    gp_tariff_free(tar);
    gp_fleet_free(f);
}

static void test_params_readonly(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load_opts(
        "params.lua", "{\"cheap\":0.1,\"flag\":true,\"nested\":{\"list\":[1,2,3],\"name\":\"x\"}}",
        0, 0);
    gp_tick_out out;
    tick_ok(s, f, &out);
    assert_true(checks_done(&out) == 16);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void test_params_invalid(void **state)
{
    (void)state;
    const char *err = load_error(fixture("params.lua"), "{\"cheap\": }");
    assert_true(starts_with(err, "params.lua: strategy params: line 1"));
    err = load_error(fixture("params.lua"), "[1,2]");
    assert_contains(err, "strategy params must be a JSON object");
}

static void test_state_persists(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_tick_out out;
    for (int load_no = 0; load_no < 2; load_no++) {
        gp_strategy *s = load("state.lua");
        for (int t = 1; t <= 3; t++) {
            tick_ok(s, f, &out);
            const gp_intent *in = find_intent(&out, "state");
            assert_non_null(in);
            assert_true(in->setpoint_w == t); /* ticks counted in ctx.state */
            assert_true(in->duration_s == 1); /* init ran exactly once per load */
            assert_true(in->on);              /* with the ctx decide gets */
        }
        gp_strategy_free(s);
    }
    gp_fleet_free(f);
}

/* A failed init is not counted as done: it runs again before the next decide. */
static void test_init_error_retried(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load("init_error.lua");
    gp_tick_out out;
    char err[2048] = "";
    assert_int_equal(tick(s, f, &out, err, sizeof err), -1);
    assert_true(starts_with(err, "init_error.lua:6: not ready yet"));
    assert_contains(err, "stack traceback:");
    for (int t = 0; t < 2; t++) {
        tick_ok(s, f, &out);
        const gp_intent *in = find_intent(&out, "inits");
        assert_non_null(in);
        assert_true(in->setpoint_w == 2);
    }
    gp_strategy_free(s);
    gp_fleet_free(f);
}

/* ---- sandbox ------------------------------------------------------------------------ */

static void test_sandbox_escapes(void **state)
{
    (void)state;
    static const char *const blocked[] = {
        "io",
        "os_execute",
        "os_getenv",
        "os_exit",
        "os_remove",
        "os_rename",
        "os_tmpname",
        "os_setlocale",
        "package",
        "require",
        "debug",
        "dofile",
        "loadfile",
        "string_dump",
        "method_dump",
        "metatable_dump",
        "binary_load",
        "binary_load_mode_b",
        "load_sees_io",
        "load_reader_binary",
        "collectgarbage_collect",
        "collectgarbage_default",
        "collectgarbage_stop",
        "global_G",
        "getfenv",
        "unpack",
        "rawget_env_io",
        "module",
        "string_meta_io",
        "coroutine_running_env",
        "gc_metamethod",
        "gc_placeholder",
        "pattern_backtracking",
        "pattern_method",
        "pattern_gsub",
        "pattern_optionals",
        "load_huge_chunk",
    };
    static const char *const works[] = {
        "os_time",
        "os_clock",
        "os_date",
        "os_difftime",
        "collectgarbage_count",
        "load_text",
        "load_env",
        "string_format",
        "string_rep",
        "math_random",
        "utf8_char",
        "table_concat",
        "table_unpack",
        "coroutine_wrap",
        "pcall_error",
        "xpcall_handler",
        "version",
        "gp_log",
        "gp_log_bad_level",
        "setmetatable_plain",
        "close_variable",
        "wrap_running",
        "wrap_closes_on_error",
        "patterns_on_ids",
        "rep_empty",
        "table_insert_remove_move",
    };
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load("escapes.lua");
    gp_tick_out out;
    tick_ok(s, f, &out);
    char name[96];
    for (size_t i = 0; i < sizeof blocked / sizeof *blocked; i++) {
        snprintf(name, sizeof name, "blocked:%s", blocked[i]);
        const gp_intent *in = find_intent(&out, name);
        if (!in) fail_msg("probe %s did not run", name);
        if (!in->on) fail_msg("sandbox escape: %s", blocked[i]);
    }
    for (size_t i = 0; i < sizeof works / sizeof *works; i++) {
        snprintf(name, sizeof name, "works:%s", works[i]);
        const gp_intent *in = find_intent(&out, name);
        if (!in) fail_msg("check %s did not run", name);
        if (!in->on) fail_msg("does not work in the sandbox: %s", works[i]);
    }
    assert_int_equal(out.n, sizeof blocked / sizeof *blocked + sizeof works / sizeof *works);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

/* A strategy file that is a precompiled chunk is refused at load. */
static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    return fwrite(p, 1, sz, ud) == sz ? 0 : 1;
}

static void test_binary_chunk_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gp-strategy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_non_null(fp);
    lua_State *L = luaL_newstate();
    assert_int_equal(luaL_loadstring(L, "return { decide = function() return {} end }"), 0);
    assert_int_equal(lua_dump(L, dump_writer, fp, 0), 0);
    lua_close(L);
    fclose(fp);
    const char *err = load_error(path, NULL);
    unlink(path);
    const char *base = strrchr(path, '/') + 1;
    assert_true(starts_with(err, base));
    assert_contains(err, "binary chunk");
}

/* ---- errors ------------------------------------------------------------------------- */

static void test_syntax_error(void **state)
{
    (void)state;
    const char *err = load_error(fixture("syntax_error.lua"), NULL);
    assert_true(starts_with(err, "syntax_error.lua:3: "));
}

static void test_missing_decide(void **state)
{
    (void)state;
    const char *err = load_error(fixture("no_decide.lua"), NULL);
    assert_true(starts_with(err, "no_decide.lua: "));
    assert_contains(err, "decide");
    err = load_error(fixture("does_not_exist.lua"), NULL);
    assert_contains(err, "does_not_exist.lua");
    assert_contains(err, "No such file");
}

static void test_runtime_error(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load("runtime_error.lua");
    gp_tick_out out;
    char err[2048] = "";
    assert_int_equal(tick(s, f, &out, err, sizeof err), -1);
    assert_int_equal(out.n, 0);
    assert_true(starts_with(err, "runtime_error.lua:2: attempt to index a nil value"));
    assert_contains(err, "\nstack traceback:");
    assert_contains(err, "runtime_error.lua:7:"); /* the caller is in the traceback */
    gp_strategy_free(s);
    gp_fleet_free(f);
}

/* ---- limits ------------------------------------------------------------------------- */

/* First tick: runs away (mode) and must be stopped near the deadline; second: works. */
static void runaway(const char *mode, int64_t timeout_ms)
{
    char params[64], err[2048] = "", want[96];
    snprintf(params, sizeof params, "{\"mode\":\"%s\"}", mode);
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load_opts("runaway.lua", params, timeout_ms, 0);
    gp_tick_out out;
    double t0 = gp_mono_s();
    int rc = tick(s, f, &out, err, sizeof err);
    double took_ms = (gp_mono_s() - t0) * 1000;
    if (rc != -1) fail_msg("mode %s: the runaway tick succeeded", mode);
    assert_int_equal(out.n, 0);
    snprintf(want, sizeof want, "strategy exceeded its %lld ms time limit", (long long)timeout_ms);
    assert_contains(err, want);
    assert_true(starts_with(err, "runaway.lua:"));
    assert_contains(err, "\nstack traceback:");
    if (took_ms < timeout_ms * 0.9 || took_ms > timeout_ms * 5.0)
        fail_msg("mode %s: stopped after %.1f ms with a %lld ms limit", mode, took_ms,
                 (long long)timeout_ms);
    tick_ok(s, f, &out);
    const gp_intent *in = find_intent(&out, "alive");
    assert_non_null(in);
    assert_true(in->setpoint_w == 2);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void test_runaway_loop(void **state)
{
    (void)state;
    runaway("loop", 100);
}

static void test_runaway_pcall(void **state)
{
    (void)state;
    runaway("pcall", 100);
}

static void test_runaway_xpcall(void **state)
{
    (void)state;
    runaway("xpcall", 100);
    runaway("error_in_handler", 100);
}

static void test_runaway_coroutine(void **state)
{
    (void)state;
    runaway("coroutine", 100);
    runaway("wrap", 100);
}

static void test_runaway_close(void **state)
{
    (void)state;
    runaway("close", 100);
    runaway("wrap_close", 100);
    runaway("close_suspended", 100);
    runaway("close_later", 100);
}

static void test_runaway_table_functions(void **state)
{
    (void)state;
    runaway("table_insert", 100);
    runaway("table_remove", 100);
    runaway("table_move", 100);
}

static void test_runaway_load_reader(void **state)
{
    (void)state;
    runaway("load_reader", 100);
}

static void memhog(const char *mode, const char *want)
{
    char params[64], err[2048] = "";
    snprintf(params, sizeof params, "{\"mode\":\"%s\"}", mode);
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load_opts("memhog.lua", params, 1000, 4 * MiB);
    gp_tick_out out;
    double t0 = gp_mono_s();
    if (tick(s, f, &out, err, sizeof err) != -1) fail_msg("mode %s: the hog succeeded", mode);
    assert_true(gp_mono_s() - t0 < 5.0);
    assert_contains(err, want);
    assert_true(starts_with(err, "memhog.lua:"));
    assert_true(gp_strategy_mem(s) <= 4 * MiB + 4 * MiB);
    tick_ok(s, f, &out);
    const gp_intent *in = find_intent(&out, "alive");
    assert_non_null(in);
    assert_true(in->setpoint_w == 2);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static void test_memory_hog(void **state)
{
    (void)state;
    memhog("table", "strategy exceeded its memory limit (4 MiB)");
    memhog("concat", "strategy exceeded its memory limit (4 MiB)");
    memhog("rep", "strategy exceeded its memory limit (4 MiB)");
    /* Catching the memory error does not help: it ends at the deadline or at a memory error
     * outside the pcall (calls need memory too), whichever comes first. */
    memhog("pcall", "strategy exceeded its ");
}

/* table.sort runs in C where the deadline cannot reach: its size is bounded instead. */
static void test_sort_bounded(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_tick_out out;
    gp_strategy *s = load_opts("sort.lua", "{\"n\": 100000}", 0, 0);
    tick_ok(s, f, &out); /* a big but allowed sort, and one with a comparator */
    gp_strategy_free(s);
    s = load_opts("sort.lua", "{\"n\": 600000}", 0, 256 * MiB);
    char err[2048] = "";
    assert_int_equal(tick(s, f, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "sort.lua:4: table.sort: 600000 elements is more than"));
    gp_strategy_free(s);
    gp_fleet_free(f);
}

/* ---- scale -------------------------------------------------------------------------- */

static void test_big_fleet_not_charged(void **state)
{
    (void)state;
    gp_fleet *f = big_fleet(10000);
    gp_strategy *s = load_opts("fleet_count.lua", NULL, 0, 4 * MiB);
    gp_tick_out out;
    for (int t = 0; t < 3; t++) {
        tick_ok(s, f, &out);
        assert_int_equal(out.n, 1);
        assert_true(out.intents[0].setpoint_w == 10000);
    }
    assert_true(gp_strategy_mem(s) > 4 * MiB); /* the view alone is bigger than the limit */
    /* The fleet grows: new devices appear at the end. */
    for (int i = 0; i < 100; i++) {
        char vendor[32];
        snprintf(vendor, sizeof vendor, "late-%d", i);
        add_device(f, 0, vendor, GP_CAP_READ, 1000, 100, 100);
    }
    tick_ok(s, f, &out);
    assert_true(out.intents[0].setpoint_w == 10100);
    gp_strategy_free(s);
    gp_fleet_free(f);
}

/* The view's allowance is exact and does not drift: with a 1 MiB limit and a view larger
 * than that, a strategy may churn 400 KiB of garbage every tick for ever, but not keep
 * 200 KiB more every tick. */
static void test_memory_allowance_stable(void **state)
{
    (void)state;
    gp_fleet *f = big_fleet(3000);
    gp_tick_out out;
    gp_strategy *s = load_opts("garbage.lua", "{\"kb\":400,\"mode\":\"drop\"}", 0, MiB);
    for (int t = 1; t <= 150; t++) {
        tick_ok(s, f, &out);
        assert_true(out.intents[0].setpoint_w == t);
    }
    gp_strategy_free(s);

    s = load_opts("garbage.lua", "{\"kb\":200,\"mode\":\"keep\"}", 0, MiB);
    char err[2048] = "";
    int t = 1;
    while (tick(s, f, &out, err, sizeof err) == 0) {
        assert_true(t < 10);
        t++;
    }
    assert_true(t >= 4); /* 3 x 200 KiB fit in 1 MiB, 6 do not */
    assert_contains(err, "strategy exceeded its memory limit (1 MiB)");
    gp_strategy_free(s);
    gp_fleet_free(f);
}

static double avg_tick_ms(gp_strategy *s, gp_fleet *f, int ticks, size_t want_n)
{
    gp_tick_out out;
    double sum = 0;
    for (int t = 0; t < ticks; t++) {
        tick_ok(s, f, &out);
        assert_int_equal(out.n, want_n);
        sum += out.elapsed_ms;
    }
    return sum / ticks;
}

static void test_bench_10k(void **state)
{
    (void)state;
    const size_t n = 10000;
    gp_fleet *f = big_fleet(n);
    gp_tick_out out;

    gp_strategy *s = load("fleet_count.lua");
    tick_ok(s, f, &out);
    double first_ms = out.elapsed_ms;
    double trivial_ms = avg_tick_ms(s, f, 20, 1);
    size_t mem_trivial = gp_strategy_mem(s);
    gp_strategy_free(s);

    s = load("half.lua");
    tick_ok(s, f, &out);
    assert_int_equal(out.n, n / 2);
    double half_ms = avg_tick_ms(s, f, 20, n / 2);
    size_t mem_half = gp_strategy_mem(s);
    gp_strategy_free(s);

    print_message("# 10,000 devices: first tick %.2f ms; ctx + trivial decide %.2f ms/tick, "
                  "heap %.1f MiB; loop + 5,000 commands %.2f ms/tick, heap %.1f MiB\n",
                  first_ms, trivial_ms, (double)mem_trivial / MiB, half_ms, (double)mem_half / MiB);
    gp_fleet_free(f);
}

/* gp.schedule reads a start,stop,target_w file next to the strategy; bad files are errors
 * with file and line. */
static void test_gp_schedule(void **state)
{
    (void)state;
    gp_fleet *f = one_device_fleet();
    gp_strategy *s = load_opts("schedule.lua", "{\"file\": \"schedule.csv\"}", 0, 0);
    gp_tick_out out;
    tick_ok(s, f, &out);
    const gp_intent *in = find_intent(&out, "sim/a");
    assert_non_null(in);
    assert_true(in->setpoint_w == -1500);
    gp_strategy_free(s);

    s = load_opts("schedule.lua", "{\"file\": \"bad_schedule.csv\"}", 0, 0);
    char err[2048] = "";
    assert_int_equal(tick(s, f, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "gp.schedule: "));
    assert_non_null(strstr(err, "bad_schedule.csv line 3: starts before the previous block ends"));
    gp_strategy_free(s);

    s = load_opts("schedule.lua", "{\"file\": \"missing.csv\"}", 0, 0);
    assert_int_equal(tick(s, f, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing.csv: cannot read: No such file or directory"));
    gp_strategy_free(s);
    gp_fleet_free(f);
}

int main(void)
{
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_parse),
        cmocka_unit_test(test_bad_commands),
        cmocka_unit_test(test_bad_returns),
        cmocka_unit_test(test_ctx_fields),
        cmocka_unit_test(test_params_readonly),
        cmocka_unit_test(test_params_invalid),
        cmocka_unit_test(test_state_persists),
        cmocka_unit_test(test_init_error_retried),
        cmocka_unit_test(test_sandbox_escapes),
        cmocka_unit_test(test_binary_chunk_file),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_missing_decide),
        cmocka_unit_test(test_runtime_error),
        cmocka_unit_test(test_runaway_loop),
        cmocka_unit_test(test_runaway_pcall),
        cmocka_unit_test(test_runaway_xpcall),
        cmocka_unit_test(test_runaway_coroutine),
        cmocka_unit_test(test_runaway_close),
        cmocka_unit_test(test_runaway_load_reader),
        cmocka_unit_test(test_runaway_table_functions),
        cmocka_unit_test(test_memory_hog),
        cmocka_unit_test(test_sort_bounded),
        cmocka_unit_test(test_big_fleet_not_charged),
        cmocka_unit_test(test_memory_allowance_stable),
        cmocka_unit_test(test_bench_10k),
        cmocka_unit_test(test_gp_schedule),
    };
    return cmocka_run_group_tests(tests, find_fixtures, NULL);
}
