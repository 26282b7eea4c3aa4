/* The sim plugin through its real entry (dlopen of the built module) and the mock host. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock_host.h"

#ifndef GP_SIM_SO
#define GP_SIM_SO "build/plugins/sim/sim.so"
#endif

/* 2026-06-21T00:00:00Z: midsummer, so noon has plenty of PV. */
#define T0     1782000000000LL
#define HOUR   3600000LL
#define MINUTE 60000LL

static char tmpdir[64];

/* ---- helpers -------------------------------------------------------------------------- */

static mock_host *host(void)
{
    mock_host *m = mock_host_new("sim");
    const char *so = getenv("GP_SIM_PLUGIN") ? getenv("GP_SIM_PLUGIN") : GP_SIM_SO;
    const gp_plugin_desc *d = mock_host_load(m, so);
    if (!d) fail_msg("cannot load %s: %s", so, mock_host_load_error(m));
    mock_host_set_base_dir(m, tmpdir);
    mock_host_set_time(m, T0);
    return m;
}

/* A host with an instance of `config`, discovered. */
static mock_host *sim_with(const char *config)
{
    mock_host *m = host();
    if (!mock_host_create(m, config)) {
        for (size_t i = 0; i < mock_host_n_config_errors(m); i++)
            print_error("config: %s\n", mock_host_config_error(m, i));
        fail_msg("create failed for %s", config);
    }
    mock_host_discover(m);
    return m;
}

/* Every rule of the ABI kept, then freed. */
static void finish(mock_host *m)
{
    for (size_t i = 0; i < mock_host_n_violations(m); i++)
        print_error("violation: %s\n", mock_host_violation(m, i));
    assert_int_equal(mock_host_n_violations(m), 0);
    assert_int_equal(mock_host_commands_outstanding(m), 0);
    mock_host_free(m);
}

static void expect_config_error(const char *config, const char *needle)
{
    mock_host *m = host();
    assert_null(mock_host_create(m, config));
    if (!mock_host_has_config_error(m, needle)) {
        for (size_t i = 0; i < mock_host_n_config_errors(m); i++)
            print_error("got: %s\n", mock_host_config_error(m, i));
        fail_msg("no config error containing \"%s\" for %s", needle, config);
    }
    finish(m);
}

static uint64_t next_op = 1;

static const mock_reading *read_dev(mock_host *m, uint32_t dev)
{
    uint64_t op = next_op++;
    size_t before = mock_host_n_read_done(m);
    mock_host_read(m, op, &dev, 1);
    assert_int_equal(mock_host_n_read_done(m), before + 1);
    const mock_result *done = mock_host_read_done(m, before);
    assert_int_equal(done->id, op);
    assert_int_equal(done->status, GP_DONE);
    const mock_reading *r = mock_host_last_reading(m, dev);
    assert_non_null(r);
    assert_int_equal(r->at_ms, mock_host_now(m));
    return r;
}

static double extra(const mock_reading *r, const char *key)
{
    double v = mock_host_extra_num(r, key);
    if (isnan(v)) fail_msg("reading has no extra.%s", key);
    return v;
}

static const mock_result *send(mock_host *m, gp_cmd c)
{
    mock_host_command(m, &c, 1);
    size_t count = 0;
    const mock_result *r = mock_host_command_result(m, c.id, &count);
    assert_int_equal(count, 1);
    return r;
}

static const mock_result *poll(mock_host *m, uint64_t cmd_id, uint32_t dev, const char *ref)
{
    size_t before = mock_host_n_task_results(m);
    mock_host_task_poll(m, cmd_id, dev, ref, GP_CMD_SETPOINT, 0);
    assert_int_equal(mock_host_n_task_results(m), before + 1);
    return mock_host_task_result_at(m, before);
}

static void assert_close(double a, double b, double rel)
{
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    if (!(fabs(a - b) <= rel * scale)) fail_msg("%.17g != %.17g (rel %g)", a, b, rel);
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static size_t count_lines(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = 0;
    int ch;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

/* ---- descriptor and configuration ----------------------------------------------------- */

static void test_descriptor(void **state)
{
    (void)state;
    mock_host *m = host();
    const gp_plugin_desc *d = mock_host_desc(m);
    assert_string_equal(d->name, "sim");
    assert_string_equal(d->version, "1.0.0");
    assert_int_equal(d->caps,
                     GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF);
    assert_int_equal(d->flags, GP_PF_TASKS | GP_PF_NATIVE_DURATION);
    assert_true(d->task_poll_s == 5);
    assert_int_equal(d->max_batch, 0);
    assert_int_equal(d->n_quotas, 0);
    assert_null(d->login);
    assert_non_null(d->read);
    assert_non_null(d->command);
    assert_non_null(d->task_poll);
    finish(m);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("[]", "must be an object");
    expect_config_error("{}", "devices: required");
    expect_config_error("{\"devices\":[]}", "devices: must be a non-empty array");
    expect_config_error("{\"devices\":[{\"id\":\"b1\"}],\"bogus\":1}", "bogus: unknown key");
    expect_config_error("{\"devices\":[{\"id\":\"b1\",\"colour\":\"red\"}]}",
                        "devices[0].colour: unknown key");
    expect_config_error("{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":\"big\"}]}",
                        "devices[0].capacity_wh: must be a number >= 0");
    expect_config_error("{\"devices\":[{\"id\":\"b1\"},{\"id\":\"b2\",\"efficiency\":0}]}",
                        "devices[1].efficiency: must be a number in (0, 1]");
    expect_config_error("{\"devices\":[{\"id\":\"b1\",\"soc_pct\":101}]}",
                        "devices[0].soc_pct: must be a number between 0 and 100");
    expect_config_error("{\"devices\":[{\"id\":\"b1\",\"soc_min_pct\":60,\"soc_max_pct\":50}]}",
                        "devices[0].soc_min_pct: must not be above soc_max_pct");
    expect_config_error("{\"devices\":[{\"id\":\"b1\",\"soc_pct\":2}]}",
                        "devices[0].soc_pct: must be between soc_min_pct (5)");
    expect_config_error("{\"devices\":[{\"capacity_wh\":1}]}", "devices[0].id: required");
    expect_config_error("{\"devices\":[{\"id\":\"a b\"}]}", "devices[0].id: must be");
    expect_config_error("{\"devices\":[{\"id\":\"b1\"},{\"id\":\"b1\"}]}",
                        "devices[1].id: duplicate id \"b1\"");
    expect_config_error("{\"devices\":[7]}", "devices[0]: must be an object");
    expect_config_error("{\"devices\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"count\":1}",
                        "count: must be at least the number of device templates (2)");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"count\":1.5}",
                        "count: must be an integer");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"seed\":\"x\"}",
                        "seed: must be an integer");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"async\":\"yes\"}",
                        "async: must be true or false");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"latency\":\"fast\"}",
                        "latency: 'fast' is not a duration");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"task_time\":\"0s\"}",
                        "task_time: must be a non-zero duration");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"fail\":[\"zz\"]}",
                        "fail[0]: no device named \"zz\"");
    expect_config_error("{\"devices\":[{\"id\":\"a\",\"load_w\":-1}],\"fail\":\"a\"}",
                        "fail: must be an array of device ids");
    expect_config_error("{\"devices\":[{\"id\":\"a\",\"capacity_wh\":1e12}]}",
                        "devices[0].capacity_wh: must be a number <= 1e+09");
    expect_config_error("{\"devices\":[{\"id\":\"a\"}],\"trace_file\":\"no/such/dir/t.log\"}",
                        "trace_file: cannot open");

    /* Several problems at once: every one is reported, each at its own path. */
    mock_host *m = host();
    assert_null(mock_host_create(m, "{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":-1,"
                                    "\"max_charge_w\":null,\"pv_peak_w\":true}],\"seed\":1.5}"));
    assert_true(mock_host_has_config_error(m, "devices[0].capacity_wh: must be a number >= 0"));
    assert_true(mock_host_has_config_error(m, "devices[0].max_charge_w: must be a number"));
    assert_true(mock_host_has_config_error(m, "devices[0].pv_peak_w: must be a number"));
    assert_true(mock_host_has_config_error(m, "seed: must be an integer"));
    assert_int_equal(mock_host_n_config_errors(m), 4);
    finish(m);
}

static void test_load_profile_errors(void **state)
{
    (void)state;
    write_file("hdr.csv", "when,watts\n00:00,100\n");
    write_file("row.csv", "time,load_w\n00:00,100\n07:60,200\n");
    write_file("neg.csv", "time,load_w\n00:00,100\n\n08:00,-5\n");
    write_file("order.csv", "time,load_w\n08:00,100\n07:00,200\n");
    write_file("fields.csv", "time,load_w\n08:00,100,3\n");
    write_file("empty.csv", "time,load_w\n");
    write_file("space.csv", "\xEF\xBB\xBFtime,load_w\n07: 5,100\n");
    char path[256];
    snprintf(path, sizeof path, "%s/", tmpdir);
    struct {
        const char *file, *needle;
    } cases[] = {
        {"hdr.csv", "hdr.csv line 1: the header must be \"time,load_w\""},
        {"row.csv", "row.csv line 3: time \"07:60\" is not HH:MM"},
        {"neg.csv", "neg.csv line 4: load_w \"-5\" is not a number >= 0"},
        {"order.csv", "order.csv line 3: time 07:00 is not after the previous row"},
        {"fields.csv", "fields.csv line 2: expected two fields"},
        {"empty.csv", "empty.csv: no data rows"},
        {"space.csv", "space.csv line 2: time \"07: 5\" is not HH:MM"},
        {"missing.csv", "missing.csv: cannot read: No such file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cfg[256];
        snprintf(cfg, sizeof cfg, "{\"devices\":[{\"id\":\"h\",\"load_profile\":\"%s\"}]}",
                 cases[i].file);
        expect_config_error(cfg, "devices[0].load_profile: ");
        expect_config_error(cfg, cases[i].needle);
        expect_config_error(cfg, path); /* resolved against the config's folder */
    }
}

static void test_load_profile_used(void **state)
{
    (void)state;
    write_file("house.csv", "time,load_w\r\n00:00,100\r\n12:00,300\r\n");
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"h\",\"capacity_wh\":0,\"pv_peak_w\":0,"
                            "\"load_profile\":\"house.csv\"}]}");
    /* Values are those of the minute's middle, interpolated, wrapping around midnight. */
    mock_host_set_time(m, T0 + 6 * HOUR);
    const mock_reading *r = read_dev(m, 0);
    assert_close(r->r.load_w, 100 + 200 * (6 * 3600 + 30) / 43200.0, 1e-12);
    assert_close(r->r.grid_w, r->r.load_w, 1e-12);
    mock_host_set_time(m, T0 + 18 * HOUR);
    r = read_dev(m, 0);
    assert_close(r->r.load_w, 300 - 200 * (6 * 3600 + 30) / 43200.0, 1e-12);
    finish(m);
}

static void test_count_and_ids(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b\"},{\"id\":\"p\",\"capacity_wh\":0}],"
                            "\"count\":12}");
    assert_int_equal(mock_host_n_devices(m), 12);
    assert_string_equal(mock_host_device(m, 0)->info.vendor_id, "b-01");
    assert_string_equal(mock_host_device(m, 1)->info.vendor_id, "p-02");
    assert_string_equal(mock_host_device(m, 9)->info.vendor_id, "p-10");
    assert_string_equal(mock_host_device(m, 11)->info.vendor_id, "p-12");
    assert_true(mock_host_device(m, 10)->info.capacity_wh == 13500);
    assert_true(mock_host_device(m, 11)->info.capacity_wh == 0);
    finish(m);

    m = sim_with("{\"devices\":[{\"id\":\"x\"}],\"count\":3}");
    assert_int_equal(mock_host_n_devices(m), 3);
    assert_string_equal(mock_host_device(m, 2)->info.vendor_id, "x-3");
    finish(m);

    m = sim_with("{\"devices\":[{\"id\":\"b1\"},{\"id\":\"b2\"}],\"count\":2}");
    assert_string_equal(mock_host_device(m, 0)->info.vendor_id, "b1");
    assert_string_equal(mock_host_device(m, 1)->info.vendor_id, "b2");
    assert_int_equal(mock_host_device(m, 1)->info.local, 1);
    finish(m);
}

static void test_discovery_caps(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"bat\",\"capacity_wh\":10000,"
                            "\"max_charge_w\":3000,\"max_discharge_w\":4000,\"soc_min_pct\":10,"
                            "\"soc_max_pct\":90},{\"id\":\"pv\",\"capacity_wh\":0}]}");
    assert_int_equal(mock_host_n_discovered(m), 1);
    assert_true(mock_host_discovered_ok(m));
    const gp_device_info *b = &mock_host_device(m, 0)->info;
    assert_int_equal(b->caps,
                     GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF);
    assert_true(b->capacity_wh == 10000 && b->max_charge_w == 3000 && b->max_discharge_w == 4000);
    assert_true(b->soc_min_pct == 10 && b->soc_max_pct == 90);
    const gp_device_info *p = &mock_host_device(m, 1)->info;
    assert_int_equal(p->caps, GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_ONOFF);
    assert_true(p->capacity_wh == 0 && p->max_charge_w == 0 && p->max_discharge_w == 0);
    assert_true(isnan(p->soc_min_pct) && isnan(p->soc_max_pct));
    finish(m);
}

/* ---- physics -------------------------------------------------------------------------- */

static void test_read_units_and_signs(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"}]}");
    /* Noon at midsummer: PV well above the house load, so self mode charges. */
    mock_host_set_time(m, T0 + 12 * HOUR);
    const mock_reading *r = read_dev(m, 0);
    assert_int_equal(r->r.size, sizeof(gp_reading));
    assert_int_equal(r->r.online, 1);
    assert_true(r->r.ts_ms == T0 + 12 * HOUR);
    assert_true(r->r.soc_pct == 50);
    assert_true(r->r.pv_w > r->r.load_w && r->r.load_w > 0);
    assert_true(r->r.battery_w < 0);
    assert_close(r->r.battery_w, -(r->r.pv_w - r->r.load_w), 1e-12);
    assert_close(r->r.grid_w, r->r.load_w - r->r.pv_w - r->r.battery_w, 1e-12);
    assert_true(r->r.capacity_wh == 13500 && r->r.max_charge_w == 5000);
    assert_true(r->r.soc_min_pct == 5 && r->r.soc_max_pct == 100);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");
    assert_null(mock_host_extra_str(r, "task"));

    /* An hour later the battery took in what PV had spare. */
    mock_host_advance(m, HOUR);
    r = read_dev(m, 0);
    assert_true(r->r.soc_pct > 50);

    /* 02:00: no PV; the battery covers the house, nothing is imported. */
    mock_host_set_time(m, T0 + 26 * HOUR);
    r = read_dev(m, 0);
    assert_true(r->r.pv_w == 0);
    assert_true(r->r.battery_w > 0);
    assert_close(r->r.battery_w, r->r.load_w, 1e-12);
    assert_close(r->r.grid_w, 0, 1e-9);
    finish(m);
}

static void test_forced_charge_energy(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":10000,\"soc_pct\":20,"
                            "\"efficiency\":0.9}]}");
    mock_host_set_time(m, T0 + 12 * HOUR + 17321); /* not on a minute boundary */
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -3000);
    const mock_result *res = send(m, c);
    assert_int_equal(res->status, GP_DONE);
    const mock_reading *r = read_dev(m, 0);
    assert_true(r->r.battery_w == -3000);
    assert_string_equal(mock_host_extra_str(r, "mode"), "forced");
    mock_host_advance(m, HOUR);
    r = read_dev(m, 0);
    /* 3000 W for an hour stores 3000 * 0.9 Wh. */
    assert_close(extra(r, "stored_wh"), 2000 + 2700, 1e-9);
    assert_close(r->r.soc_pct, 47, 1e-9);
    assert_close(extra(r, "charge_wh"), 3000, 1e-9);
    assert_close(extra(r, "loss_wh"), 300, 1e-9);
    assert_true(extra(r, "discharge_wh") == 0);

    /* Above the limits the setpoint is clamped, not refused. */
    c = mock_host_cmd(m, 2, 0, GP_CMD_SETPOINT, -99999);
    assert_int_equal(send(m, c)->status, GP_DONE);
    assert_true(read_dev(m, 0)->r.battery_w == -5000);
    finish(m);
}

static void test_soc_bounds(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":10000,\"soc_pct\":50,"
                            "\"soc_min_pct\":10,\"soc_max_pct\":90}]}");
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, 5000);
    assert_int_equal(send(m, c)->status, GP_DONE);
    const mock_reading *r = NULL;
    for (int k = 0; k < 18; k++) { /* 3 h, far longer than the 0.76 h the energy lasts */
        mock_host_advance(m, 10 * MINUTE);
        r = read_dev(m, 0);
        assert_true(r->r.soc_pct >= 10);
    }
    assert_true(r->r.soc_pct == 10);
    assert_true(r->r.battery_w == 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "forced");
    /* Only 4000 Wh were above soc_min: 4000 * 0.95 reached the AC side. */
    assert_close(extra(r, "discharge_wh"), 3800, 1e-9);

    /* A deeper DoD lets it go on down to 100 - dod. */
    c = mock_host_cmd(m, 2, 0, GP_CMD_DOD, 95);
    assert_int_equal(send(m, c)->status, GP_DONE);
    r = read_dev(m, 0);
    assert_true(r->r.soc_min_pct == 5);
    assert_true(r->r.battery_w == 5000);
    mock_host_advance(m, HOUR);
    r = read_dev(m, 0);
    assert_true(r->r.soc_pct == 5);

    /* Forced charge stops at soc_max. */
    c = mock_host_cmd(m, 3, 0, GP_CMD_SETPOINT, -5000);
    assert_int_equal(send(m, c)->status, GP_DONE);
    for (int k = 0; k < 24; k++) {
        mock_host_advance(m, 10 * MINUTE);
        r = read_dev(m, 0);
        assert_true(r->r.soc_pct <= 90);
    }
    assert_true(r->r.soc_pct == 90);
    assert_true(r->r.battery_w == 0);

    c = mock_host_cmd(m, 4, 0, GP_CMD_DOD, 5); /* soc_min 95 > soc_max 90 */
    const mock_result *res = send(m, c);
    assert_int_equal(res->status, GP_FAILED);
    assert_int_equal(res->code, GP_E_REJECTED);
    assert_non_null(strstr(res->message, "above soc_max_pct"));
    finish(m);
}

/* The accounts close: grid = load - pv + charge - discharge, and the battery holds what went
 * in times efficiency minus what came out over efficiency. */
static void check_balance(const mock_reading *r, double stored0, double eff)
{
    double imp = extra(r, "import_wh"), exp = extra(r, "export_wh"), pv = extra(r, "pv_wh");
    double load = extra(r, "load_wh"), chg = extra(r, "charge_wh"), dis = extra(r, "discharge_wh");
    double loss = extra(r, "loss_wh"), stored = extra(r, "stored_wh");
    double scale = load + pv + chg + dis;
    assert_true(fabs((imp - exp) - (load - pv + chg - dis)) <= 1e-6 * scale);
    assert_true(fabs((stored - stored0) - (chg * eff - dis / eff)) <= 1e-6 * scale);
    assert_true(fabs(loss - (chg - dis - (stored - stored0))) <= 1e-6 * scale);
    assert_true(imp >= 0 && exp >= 0 && pv >= 0 && load > 0 && chg >= 0 && dis >= 0);
}

static void test_energy_balance_week(void **state)
{
    (void)state;
    write_file("week.csv", "time,load_w\n00:00,250\n07:30,900\n12:00,400\n18:30,1500\n");
    mock_host *m =
        sim_with("{\"devices\":[{\"id\":\"bat\",\"capacity_wh\":10000,\"efficiency\":0.9},"
                 "{\"id\":\"pv\",\"capacity_wh\":0,\"pv_peak_w\":3000},"
                 "{\"id\":\"prof\",\"load_profile\":\"week.csv\",\"soc_min_pct\":20,"
                 "\"soc_max_pct\":90,\"max_charge_w\":2500}],\"count\":21,\"seed\":3}");
    size_t n = mock_host_n_devices(m);
    double stored0[21], eff[21];
    for (uint32_t i = 0; i < n; i++) {
        const mock_reading *r = read_dev(m, i);
        stored0[i] = extra(r, "stored_wh");
        eff[i] = i % 3 == 0 ? 0.9 : 0.95;
    }
    uint64_t id = 1;
    for (int step = 1; step <= 7 * 96; step++) {
        mock_host_advance(m, 15 * MINUTE);
        if (step % 24 == 0) { /* every 6 h: stir things up */
            for (uint32_t i = 0; i < n; i++) {
                gp_cmd c;
                switch ((step / 24 + i) % 5) {
                case 0: /* a PV-only device takes it as a cap on its output */
                    c = mock_host_cmd(m, id++, i, GP_CMD_SETPOINT, i % 3 == 1 ? 1500 : -3000);
                    c.duration_s = 7200;
                    break;
                case 1:
                    c = mock_host_cmd(m, id++, i, GP_CMD_SETPOINT, 4000);
                    c.soc_target = i % 3 == 1 ? NAN : 30;
                    break;
                case 2:
                    c = mock_host_cmd(m, id++, i, GP_CMD_RELEASE, 0);
                    break;
                case 3:
                    c = mock_host_cmd(m, id++, i, GP_CMD_ONOFF, 0);
                    break;
                default:
                    c = mock_host_cmd(m, id++, i, GP_CMD_ONOFF, 1);
                    break;
                }
                assert_int_equal(send(m, c)->status, GP_DONE);
            }
        }
        mock_host_read(m, next_op++, NULL, 0);
        for (uint32_t i = 0; i < n; i++) {
            const mock_reading *r = mock_host_last_reading(m, i);
            if (i % 3 != 1) {
                assert_true(r->r.soc_pct >= r->r.soc_min_pct - 1e-9);
                assert_true(r->r.soc_pct <= r->r.soc_max_pct + 1e-9);
            }
            assert_close(r->r.grid_w, r->r.load_w - r->r.pv_w - r->r.battery_w, 1e-12);
        }
        if (step % 96 == 0) {
            for (uint32_t i = 0; i < n; i++)
                check_balance(mock_host_last_reading(m, i), stored0[i], eff[i]);
            mock_host_clear(m); /* keep memory flat over the week */
        }
    }
    finish(m);
}

/* Readings of a day at 10-minute steps, as numbers to compare. */
static void day_trace(const char *config, double *out, size_t n)
{
    mock_host *m = sim_with(config);
    for (size_t k = 0; k < n / 4; k++) {
        const mock_reading *r = read_dev(m, 0);
        out[4 * k] = r->r.pv_w;
        out[4 * k + 1] = r->r.load_w;
        out[4 * k + 2] = r->r.battery_w;
        out[4 * k + 3] = r->r.soc_pct;
        mock_host_advance(m, 10 * MINUTE);
    }
    finish(m);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { N = 4 * 144 };
    static double a[N], b[N], c[N];
    day_trace("{\"devices\":[{\"id\":\"b1\"}],\"seed\":7}", a, N);
    day_trace("{\"devices\":[{\"id\":\"b1\"}],\"seed\":7}", b, N);
    day_trace("{\"devices\":[{\"id\":\"b1\"}],\"seed\":8}", c, N);
    assert_memory_equal(a, b, sizeof a);
    size_t differ = 0;
    for (size_t k = 0; k < N; k += 4)
        differ += a[k] != c[k];
    assert_true(differ > 36); /* most daylight samples */

    /* How often it is asked does not change the physics: every minute or once. */
    mock_host *m1 = sim_with("{\"devices\":[{\"id\":\"b1\"}],\"seed\":7}");
    mock_host *m2 = sim_with("{\"devices\":[{\"id\":\"b1\"}],\"seed\":7}");
    read_dev(m1, 0);
    read_dev(m2, 0);
    for (int k = 0; k < 18 * 60; k++) {
        mock_host_advance(m1, MINUTE);
        read_dev(m1, 0);
    }
    mock_host_advance(m2, 18 * HOUR);
    const mock_reading *r1 = read_dev(m1, 0), *r2 = read_dev(m2, 0);
    const char *keys[] = {"stored_wh", "import_wh", "export_wh", "pv_wh", "load_wh", "charge_wh"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        assert_close(extra(r1, keys[k]), extra(r2, keys[k]), 1e-9);
    finish(m1);
    finish(m2);
}

/* ---- commands, tasks ------------------------------------------------------------------ */

static void test_sync_duration_and_target(void **state)
{
    (void)state;
    /* No PV, no load: self mode stays idle, so every Wh moved is the forced one. */
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":10000,"
                            "\"pv_peak_w\":0,\"load_w\":0}]}");
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -2000);
    c.duration_s = 300;
    assert_int_equal(send(m, c)->status, GP_DONE);
    mock_host_advance(m, 299000);
    assert_string_equal(mock_host_extra_str(read_dev(m, 0), "mode"), "forced");
    mock_host_advance(m, 1000);
    const mock_reading *r = read_dev(m, 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");
    assert_true(r->r.battery_w == 0);
    double chg = 2000 * 300 / 3600.0;
    assert_close(extra(r, "charge_wh"), chg, 1e-9);
    mock_host_advance(m, HOUR);
    assert_close(extra(read_dev(m, 0), "charge_wh"), chg, 1e-9);

    double before = extra(read_dev(m, 0), "stored_wh");
    c = mock_host_cmd(m, 2, 0, GP_CMD_SETPOINT, -5000);
    c.soc_target = 60;
    assert_int_equal(send(m, c)->status, GP_DONE);
    mock_host_advance(m, 3 * HOUR);
    r = read_dev(m, 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");
    assert_close(r->r.soc_pct, 60, 1e-12);
    assert_close(extra(r, "charge_wh"), chg + (6000 - before) / 0.95, 1e-9);

    /* A target already reached ends at once. */
    c = mock_host_cmd(m, 3, 0, GP_CMD_SETPOINT, -5000);
    c.soc_target = 55;
    assert_int_equal(send(m, c)->status, GP_DONE);
    assert_string_equal(mock_host_extra_str(read_dev(m, 0), "mode"), "self");
    c = mock_host_cmd(m, 4, 0, GP_CMD_SETPOINT, 0);
    c.soc_target = 55;
    const mock_result *res = send(m, c);
    assert_int_equal(res->code, GP_E_REJECTED);
    assert_non_null(strstr(res->message, "non-zero setpoint"));
    finish(m);
}

static void test_async_task_time(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"}],\"async\":true,\"task_time\":\"30s\"}");
    mock_host_set_next_request_id(m, 42);
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 7, 0, GP_CMD_SETPOINT, -2000);
    const mock_result *res = send(m, c);
    assert_int_equal(res->status, GP_PENDING);
    assert_string_equal(res->vendor_ref, "sim-42");
    const mock_result *t = poll(m, 7, 0, "sim-42");
    assert_int_equal(t->status, GP_PENDING);
    assert_true(t->energy_wh == 0);
    assert_string_equal(mock_host_extra_str(read_dev(m, 0), "task"), "sim-42");
    mock_host_advance(m, 29000);
    t = poll(m, 7, 0, "sim-42");
    assert_int_equal(t->status, GP_PENDING);
    assert_close(t->energy_wh, 2000 * 29 / 3600.0, 1e-9);
    mock_host_advance(m, 2000);
    t = poll(m, 7, 0, "sim-42");
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 2000 * 30 / 3600.0, 1e-9);
    const mock_reading *r = read_dev(m, 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");
    assert_null(mock_host_extra_str(r, "task"));
    /* Polled again (say after a crash of the poller): still DONE, same energy. */
    t = poll(m, 7, 0, "sim-42");
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 2000 * 30 / 3600.0, 1e-9);

    /* Only setpoints become tasks. */
    c = mock_host_cmd(m, 8, 0, GP_CMD_DOD, 90);
    assert_int_equal(send(m, c)->status, GP_DONE);
    c = mock_host_cmd(m, 9, 0, GP_CMD_ONOFF, 1);
    assert_int_equal(send(m, c)->status, GP_DONE);
    c = mock_host_cmd(m, 10, 0, GP_CMD_RELEASE, 0);
    assert_int_equal(send(m, c)->status, GP_DONE);

    /* A new setpoint replaces a running task, which ends DONE. */
    c = mock_host_cmd(m, 11, 0, GP_CMD_SETPOINT, 1000);
    assert_string_equal(send(m, c)->vendor_ref, "sim-43");
    mock_host_advance(m, 10000);
    c = mock_host_cmd(m, 12, 0, GP_CMD_SETPOINT, 500);
    assert_string_equal(send(m, c)->vendor_ref, "sim-44");
    t = poll(m, 11, 0, "sim-43");
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 1000 * 10 / 3600.0, 1e-9);

    /* References that are not ours. */
    t = poll(m, 13, 0, "sim-999");
    assert_int_equal(t->status, GP_FAILED);
    assert_int_equal(t->code, GP_E_PROTOCOL);
    assert_string_equal(t->message, "sim: unknown task sim-999");
    t = poll(m, 14, 0, "huawei-1");
    assert_int_equal(t->status, GP_FAILED);
    assert_string_equal(t->message, "sim: unknown task huawei-1");
    finish(m);
}

static void test_async_soc_target_and_duration(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\",\"capacity_wh\":10000}],"
                            "\"async\":true,\"task_time\":\"1h\"}");
    mock_host_set_time(m, T0 + 2 * HOUR);
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -5000);
    c.soc_target = 60;
    const mock_result *res = send(m, c);
    assert_int_equal(res->status, GP_PENDING);
    char ref[32];
    snprintf(ref, sizeof ref, "%s", res->vendor_ref);
    /* 1000 Wh to store at 5000 W * 0.95: 757.9 s. */
    mock_host_advance(m, 700000);
    assert_int_equal(poll(m, 1, 0, ref)->status, GP_PENDING);
    mock_host_advance(m, 100000);
    const mock_result *t = poll(m, 1, 0, ref);
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 1000 / 0.95, 1e-9);
    const mock_reading *r = read_dev(m, 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");

    /* duration_s ends the task when it is shorter than task_time. */
    c = mock_host_cmd(m, 2, 0, GP_CMD_SETPOINT, 2000);
    c.duration_s = 120;
    res = send(m, c);
    snprintf(ref, sizeof ref, "%s", res->vendor_ref);
    mock_host_advance(m, 119000);
    assert_int_equal(poll(m, 2, 0, ref)->status, GP_PENDING);
    mock_host_advance(m, 1000);
    t = poll(m, 2, 0, ref);
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 2000 * 120 / 3600.0, 1e-9);
    finish(m);
}

static const char *restart_cfg = "{\"devices\":[{\"id\":\"b1\"},{\"id\":\"b2\"}],\"async\":true,"
                                 "\"task_time\":\"1h\"}";

static void test_restart_resume(void **state)
{
    (void)state;
    mock_host *m = sim_with(restart_cfg);
    mock_host_set_next_request_id(m, 42);
    read_dev(m, 0);
    read_dev(m, 1);
    gp_cmd c = mock_host_cmd(m, 5, 0, GP_CMD_SETPOINT, -3000);
    c.duration_s = 600;
    assert_string_equal(send(m, c)->vendor_ref, "sim-42");
    gp_cmd c2 = mock_host_cmd(m, 6, 1, GP_CMD_SETPOINT, 1000);
    c2.duration_s = 60;
    assert_string_equal(send(m, c2)->vendor_ref, "sim-43");
    mock_host_advance(m, 60000);
    assert_int_equal(poll(m, 5, 0, "sim-42")->status, GP_PENDING);
    double soc = read_dev(m, 0)->r.soc_pct;

    /* An orderly restart: destroy, then a new instance on the same kv. */
    mock_host_destroy(m);
    assert_non_null(mock_host_create(m, restart_cfg));
    mock_host_discover(m);
    const mock_reading *r = read_dev(m, 0);
    assert_close(r->r.soc_pct, soc, 1e-12);
    assert_string_equal(mock_host_extra_str(r, "task"), "sim-42");
    mock_host_advance(m, 60000);
    const mock_result *t = poll(m, 5, 0, "sim-42");
    assert_int_equal(t->status, GP_PENDING);
    assert_close(t->energy_wh, 3000 * 120 / 3600.0, 1e-9);
    /* sim-43 ended (duration 60 s) before the restart, unpolled: it is still known. */
    t = poll(m, 6, 1, "sim-43");
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 1000 * 60 / 3600.0, 1e-9);

    /* A crash: no destroy. A second process starts from whatever the kv holds. */
    mock_host_advance(m, 60000);
    mock_host *m2 = host();
    mock_host_set_time(m2, mock_host_now(m));
    mock_host_kv_copy(m2, m);
    assert_non_null(mock_host_create(m2, restart_cfg));
    mock_host_discover(m2);
    t = poll(m2, 5, 0, "sim-42");
    assert_int_equal(t->status, GP_PENDING);
    mock_host_advance(m2, 420000); /* 600 s after the command */
    t = poll(m2, 5, 0, "sim-42");
    assert_int_equal(t->status, GP_DONE);
    assert_close(t->energy_wh, 3000 * 600 / 3600.0, 1e-9);
    assert_string_equal(mock_host_extra_str(read_dev(m2, 0), "mode"), "self");
    finish(m2);
    finish(m);
}

static void test_clock_went_back(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"}]}");
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -5000);
    send(m, c);
    mock_host_advance(m, HOUR);
    assert_true(read_dev(m, 0)->r.soc_pct > 80);
    mock_host_destroy(m);
    mock_host_set_time(m, T0);
    assert_non_null(mock_host_create(m, "{\"devices\":[{\"id\":\"b1\"}]}"));
    mock_host_discover(m);
    const mock_reading *r = read_dev(m, 0);
    assert_true(mock_host_log_contains(m, "later than the clock"));
    assert_true(r->r.soc_pct == 50);
    assert_string_equal(mock_host_extra_str(r, "mode"), "self");
    finish(m);
}

static void test_fail_list(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"},{\"id\":\"b2\"}],\"fail\":[\"b2\"]}");
    gp_cmd c = mock_host_cmd(m, 1, 1, GP_CMD_SETPOINT, 1000);
    const mock_result *r = send(m, c);
    assert_int_equal(r->status, GP_FAILED);
    assert_int_equal(r->code, GP_E_REJECTED);
    assert_false(r->retryable);
    assert_string_equal(r->message, "sim: device refused the command (configured to fail)");
    c = mock_host_cmd(m, 2, 1, GP_CMD_RELEASE, 0);
    assert_int_equal(send(m, c)->status, GP_FAILED);
    c = mock_host_cmd(m, 3, 0, GP_CMD_SETPOINT, 1000);
    assert_int_equal(send(m, c)->status, GP_DONE);
    assert_int_equal(read_dev(m, 1)->r.online, 1); /* reads still work */
    finish(m);
}

static void test_latency(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"}],\"latency\":\"2s\",\"async\":true}");
    uint32_t dev = 0;
    mock_host_read(m, 77, &dev, 1);
    assert_int_equal(mock_host_n_readings(m), 0);
    assert_int_equal(mock_host_n_read_done(m), 0);
    mock_host_advance(m, 1999);
    assert_int_equal(mock_host_n_readings(m), 0);
    assert_int_equal(mock_host_n_read_done(m), 0);
    mock_host_advance(m, 1);
    assert_int_equal(mock_host_n_readings(m), 1);
    assert_int_equal(mock_host_n_read_done(m), 1);
    assert_true(mock_host_read_done(m, 0)->at_ms == T0 + 2000);

    gp_cmd c[2] = {mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -1000),
                   mock_host_cmd(m, 2, 0, GP_CMD_DOD, 200)};
    mock_host_command(m, c, 2);
    assert_int_equal(mock_host_n_command_results(m), 0);
    mock_host_advance(m, 1999);
    assert_int_equal(mock_host_n_command_results(m), 0);
    mock_host_advance(m, 1);
    assert_int_equal(mock_host_n_command_results(m), 2);
    const mock_result *r = mock_host_command_result(m, 1, NULL);
    assert_int_equal(r->status, GP_PENDING);
    assert_int_equal(mock_host_command_result(m, 2, NULL)->status, GP_FAILED);

    char ref[32];
    snprintf(ref, sizeof ref, "%s", r->vendor_ref);
    mock_host_task_poll(m, 1, 0, ref, GP_CMD_SETPOINT, -1000);
    assert_int_equal(mock_host_n_task_results(m), 0);
    mock_host_advance(m, 2000);
    assert_int_equal(mock_host_n_task_results(m), 1);
    assert_int_equal(mock_host_task_result(m, 1, NULL)->status, GP_PENDING);

    /* Destroyed with completions in flight: dropped cleanly (ASan/valgrind watch this). */
    mock_host_read(m, 78, &dev, 1);
    mock_host_destroy(m);
    assert_int_equal(mock_host_n_timers(m), 0);
    finish(m);
}

static void test_trace_file(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/trace.log", tmpdir);
    unlink(path);
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"},{\"id\":\"pv\",\"capacity_wh\":0}],"
                            "\"fail\":[\"pv\"],\"trace_file\":\"trace.log\"}");
    gp_cmd c[6] = {
        mock_host_cmd(m, 1, 0, GP_CMD_SETPOINT, -1000), mock_host_cmd(m, 2, 0, GP_CMD_DOD, 80),
        mock_host_cmd(m, 3, 0, GP_CMD_ONOFF, 1),        mock_host_cmd(m, 4, 0, GP_CMD_RELEASE, 0),
        mock_host_cmd(m, 5, 1, GP_CMD_SETPOINT, 100), /* configured to fail */
        mock_host_cmd(m, 6, 0, (gp_cmd_kind)99, 1),   /* unknown kind */
    };
    c[0].soc_target = 80;
    c[0].duration_s = 600;
    mock_host_command(m, c, 6);
    assert_int_equal(mock_host_n_command_results(m), 6);
    assert_int_equal(count_lines("trace.log"), 6);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[256];
    assert_non_null(fgets(line, sizeof line, fp));
    char want[128];
    snprintf(want, sizeof want, "%lld b1 setpoint -1000 soc_target=80 duration_s=600\n",
             (long long)T0);
    assert_string_equal(line, want);
    assert_non_null(fgets(line, sizeof line, fp));
    snprintf(want, sizeof want, "%lld b1 dod 80\n", (long long)T0);
    assert_string_equal(line, want);
    fclose(fp);
    c[0].id = 7;
    send(m, c[0]);
    assert_int_equal(count_lines("trace.log"), 7);
    finish(m);
}

static void test_pv_only(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"pv\",\"capacity_wh\":0,\"pv_peak_w\":5000}],"
                            "\"seed\":2}");
    mock_host_set_time(m, T0 + 12 * HOUR);
    const mock_reading *r = read_dev(m, 0);
    assert_true(isnan(r->r.soc_pct));
    assert_true(r->r.battery_w == 0);
    double raw = r->r.pv_w;
    assert_true(raw > 1500); /* 5000 W peak, clouds take at most 70 % */

    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_DOD, 80);
    const mock_result *res = send(m, c);
    assert_int_equal(res->status, GP_FAILED);
    assert_int_equal(res->code, GP_E_UNSUPPORTED);
    assert_string_equal(res->message, "sim: pv has no battery: dod is not supported");
    c = mock_host_cmd(m, 2, 0, GP_CMD_SETPOINT, 1000);
    c.soc_target = 50;
    res = send(m, c);
    assert_int_equal(res->code, GP_E_UNSUPPORTED);
    assert_non_null(strstr(res->message, "soc_target is not supported"));
    c = mock_host_cmd(m, 3, 0, GP_CMD_SETPOINT, -1000);
    res = send(m, c);
    assert_int_equal(res->code, GP_E_REJECTED);
    assert_non_null(strstr(res->message, "caps PV output"));

    c = mock_host_cmd(m, 4, 0, GP_CMD_SETPOINT, 1000);
    assert_int_equal(send(m, c)->status, GP_DONE);
    r = read_dev(m, 0);
    assert_true(r->r.pv_w == 1000);
    assert_close(r->r.grid_w, r->r.load_w - 1000, 1e-12);
    mock_host_advance(m, HOUR);
    r = read_dev(m, 0);
    assert_close(extra(r, "pv_wh"), 1000, 1e-9); /* capped the whole hour */
    c = mock_host_cmd(m, 5, 0, GP_CMD_RELEASE, 0);
    assert_int_equal(send(m, c)->status, GP_DONE);
    assert_true(read_dev(m, 0)->r.pv_w > 1000);
    finish(m);
}

static void test_on_off(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b1\"}]}");
    mock_host_set_time(m, T0 + 12 * HOUR);
    read_dev(m, 0);
    gp_cmd c = mock_host_cmd(m, 1, 0, GP_CMD_ONOFF, 0);
    assert_int_equal(send(m, c)->status, GP_DONE);
    mock_host_advance(m, HOUR);
    const mock_reading *r = read_dev(m, 0);
    assert_string_equal(mock_host_extra_str(r, "mode"), "off");
    assert_true(r->r.pv_w == 0 && r->r.battery_w == 0 && r->r.soc_pct == 50);
    assert_true(r->r.grid_w == r->r.load_w);
    c = mock_host_cmd(m, 2, 0, GP_CMD_ONOFF, 2);
    const mock_result *res = send(m, c);
    assert_int_equal(res->code, GP_E_REJECTED);
    assert_non_null(strstr(res->message, "must be 1 (on) or 0 (off)"));
    c = mock_host_cmd(m, 3, 0, GP_CMD_ONOFF, 1);
    send(m, c);
    assert_string_equal(mock_host_extra_str(read_dev(m, 0), "mode"), "self");
    finish(m);
}

static void test_one_result_per_command(void **state)
{
    (void)state;
    for (int lat = 0; lat < 2; lat++) {
        mock_host *m =
            sim_with(lat ? "{\"devices\":[{\"id\":\"b\"},{\"id\":\"p\",\"capacity_wh\":0}],"
                           "\"count\":6,\"fail\":[\"b-3\"],\"latency\":\"500ms\"}"
                         : "{\"devices\":[{\"id\":\"b\"},{\"id\":\"p\",\"capacity_wh\":0}],"
                           "\"count\":6,\"fail\":[\"b-3\"],\"async\":true}");
        enum { N = 60 };
        gp_cmd c[N];
        for (int k = 0; k < N; k++) {
            static const double values[] = {-2000, 2000, NAN, INFINITY, 50, 0, 1, 150};
            gp_cmd_kind kind = (gp_cmd_kind)(k % 6); /* includes 0 and 5: not kinds */
            c[k] = mock_host_cmd(m, 100 + (uint64_t)k, (uint32_t)(k % 7), kind, values[k % 8]);
            if (k % 7 == 6) c[k].target.local = 999; /* not a device of ours */
            if (k % 5 == 0) c[k].soc_target = k % 10 ? 40 : 120;
        }
        mock_host_command(m, c, N);
        if (lat) {
            assert_int_equal(mock_host_n_command_results(m), 0);
            mock_host_advance(m, 500);
        }
        assert_int_equal(mock_host_n_command_results(m), N);
        for (int k = 0; k < N; k++) {
            size_t count = 0;
            const mock_result *r = mock_host_command_result(m, 100 + (uint64_t)k, &count);
            assert_int_equal(count, 1);
            if (r->status == GP_FAILED) {
                assert_non_null(r->message);
                assert_true(r->code < 0);
            }
        }
        assert_int_equal(mock_host_command_result(m, 106, NULL)->status, GP_FAILED);
        assert_non_null(strstr(mock_host_command_result(m, 106, NULL)->message, "local index"));
        finish(m);
    }
}

static void test_persistence_writes(void **state)
{
    (void)state;
    mock_host *m = sim_with("{\"devices\":[{\"id\":\"b\"}],\"count\":1000}");
    for (int k = 0; k < 11; k++) { /* 55 minutes of reads: no kv traffic */
        mock_host_read(m, next_op++, NULL, 0);
        mock_host_advance(m, 5 * MINUTE);
    }
    assert_int_equal(mock_host_kv_writes(m), 0);
    gp_cmd c[3] = {mock_host_cmd(m, 1, 3, GP_CMD_SETPOINT, 100),
                   mock_host_cmd(m, 2, 4, GP_CMD_DOD, 90),
                   mock_host_cmd(m, 3, 5, GP_CMD_RELEASE, 0)};
    mock_host_command(m, c, 3);
    assert_int_equal(mock_host_kv_writes(m), 3); /* one record per commanded device */
    assert_non_null(mock_host_kv_value(m, "d/b-0004", NULL));
    mock_host_advance(m, 5 * MINUTE);
    mock_host_read(m, next_op++, NULL, 0); /* an hour after the first: one snapshot */
    assert_int_equal(mock_host_kv_writes(m), 4);
    assert_int_equal(mock_host_kv_count(m), 1);
    assert_null(mock_host_kv_value(m, "d/b-0004", NULL));
    size_t len = 0;
    assert_non_null(mock_host_kv_value(m, "snapshot", &len));
    assert_true(len < 1000 * 400);
    finish(m);
}

/* ---- the mock host's own services (vendor plugin tests rely on them) ------------------- */

typedef struct http_seen {
    int calls;
    long status;
    int error;
    char body[64];
    char hdr[64];
    char chunks[64];
} http_seen;

static void on_http(void *ud, const gp_http_resp *r)
{
    http_seen *s = ud;
    const gp_host *H = mock_host_table(NULL);
    s->calls++;
    s->status = r->status;
    s->error = r->error;
    snprintf(s->body, sizeof s->body, "%s", r->body);
    const char *v = H->http_header(r, "x-ratelimit", 1);
    snprintf(s->hdr, sizeof s->hdr, "%s", v ? v : "");
}

static int on_chunk(void *ud, const char *data, size_t len)
{
    http_seen *s = ud;
    strncat(s->chunks, data, len < 32 ? len : 32);
    return 0;
}

static void handler(void *ud, const mock_http_request *req, mock_http_response *resp)
{
    (void)ud;
    resp->error = GP_HTTP_OK;
    resp->status = strcmp(req->method, "POST") == 0 ? 201 : 405;
    resp->body = req->body;
}

static int fired[3];
static void on_timer(void *ud)
{
    int *slot = ud;
    *slot = (int)(fired[0] + fired[1] + fired[2] + 1);
}

static void test_mock_host_services(void **state)
{
    (void)state;
    mock_host *m = mock_host_new("vendor");
    const gp_host *H = mock_host_table(m);
    gp_hctx *h = mock_host_hctx(m);
    mock_host_set_base_dir(m, tmpdir);

    /* HTTP: answers are events, never delivered inside http(). */
    const char *hdrs[] = {"X-RateLimit: 10", "x-ratelimit: 9", NULL};
    mock_http_response scripted = {
        .status = 200, .body = "{\"ok\":1}", .headers = hdrs, .delay_ms = 50};
    mock_host_http_push(m, &scripted);
    http_seen seen = {0};
    const char *req_hdrs[] = {"Accept: application/json", NULL};
    gp_http_req req = {.size = sizeof req,
                       .method = "GET",
                       .url = "https://x/api",
                       .headers = req_hdrs,
                       .endpoint = "kpi",
                       .priority = GP_PRIO_CONTROL};
    assert_int_equal(H->http(h, &req, on_http, &seen), 0);
    assert_int_equal(seen.calls, 0);
    mock_host_advance(m, 49);
    assert_int_equal(seen.calls, 0);
    mock_host_advance(m, 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.status, 200);
    assert_string_equal(seen.body, "{\"ok\":1}");
    assert_string_equal(seen.hdr, "9");
    const mock_http_request *rec = mock_host_http_request(m, 0);
    assert_string_equal(rec->url, "https://x/api");
    assert_string_equal(rec->endpoint, "kpi");
    assert_string_equal(rec->headers[0], "Accept: application/json");
    /* Unscripted: a connect error. Then a handler; then streaming. */
    H->http(h, &req, on_http, &seen);
    mock_host_run(m);
    assert_int_equal(seen.error, GP_HTTP_CONNECT);
    mock_host_http_set_handler(m, handler, NULL);
    req.method = "POST";
    req.body = "payload";
    req.body_len = 7;
    H->http(h, &req, on_http, &seen);
    mock_host_run(m);
    assert_int_equal(seen.status, 201);
    assert_string_equal(seen.body, "payload");
    req.on_chunk = on_chunk;
    H->http(h, &req, on_http, &seen);
    mock_host_run(m);
    assert_string_equal(seen.chunks, "payload");
    assert_string_equal(seen.body, "");
    assert_int_equal(mock_host_http_in_flight(m), 0);
    assert_int_equal(H->http(h, &(gp_http_req){.size = sizeof req}, on_http, &seen), -1);

    /* Secrets: the key itself, key_env, key_file (trailing newline trimmed), conflicts. */
    write_file("secret.txt", "s3cret\n");
    setenv("MOCK_HOST_TEST_PW", "from-env", 1);
    const char *texts[] = {"{\"password\":\"plain\"}", "{\"password_env\":\"MOCK_HOST_TEST_PW\"}",
                           "{\"password_file\":\"secret.txt\"}"};
    const char *want[] = {"plain", "from-env", "s3cret"};
    for (int i = 0; i < 3; i++) {
        gp_json *o = H->json_parse(texts[i], strlen(texts[i]), NULL, 0);
        const char *v = H->config_secret(h, o, "password", 1);
        assert_non_null(v);
        assert_string_equal(v, want[i]);
        H->json_free(o);
    }
    const char *both = "{\"password\":\"a\",\"password_env\":\"B\",\"user\":\"u\",\"userx\":1}";
    gp_json *o = H->json_parse(both, strlen(both), NULL, 0);
    assert_null(H->config_secret(h, o, "password", 1));
    assert_true(mock_host_has_config_error(m, "password: give only one of"));
    assert_null(H->config_secret(h, o, "token", 1));
    assert_true(mock_host_has_config_error(m, "token: required"));
    const char *allowed[] = {"password*", "user", NULL};
    assert_int_equal(H->config_check_keys(h, o, "cfg", allowed), 1);
    assert_true(mock_host_has_config_error(m, "cfg.userx: unknown key"));
    H->json_free(o);
    char abs[128];
    snprintf(abs, sizeof abs, "%s/a.csv", tmpdir);
    assert_string_equal(H->resolve_path(h, "a.csv"), abs);
    assert_string_equal(H->resolve_path(h, "/etc/x"), "/etc/x");

    /* Timers fire in due order; a stopped one never fires; a stale handle is a violation. */
    memset(fired, 0, sizeof fired);
    H->timer_start(h, 0.3, on_timer, &fired[0]);
    gp_timer *t1 = H->timer_start(h, 0.1, on_timer, &fired[1]);
    H->timer_start(h, 0.2, on_timer, &fired[2]);
    H->timer_stop(h, t1);
    mock_host_advance(m, 1000);
    assert_int_equal(fired[1], 0);
    assert_int_equal(fired[2], 1);
    assert_int_equal(fired[0], 2);
    H->timer_stop(h, t1);
    assert_int_equal(mock_host_n_violations(m), 1);

    /* kv: values are copies; NULL deletes. */
    assert_int_equal(H->kv_set(h, "k", "v1", 2), 0);
    size_t len = 0;
    char *v = H->kv_get(h, "k", &len);
    assert_string_equal(v, "v1");
    assert_int_equal(len, 2);
    H->free(v);
    H->kv_set(h, "k", NULL, 0);
    assert_null(H->kv_get(h, "k", NULL));
    assert_int_equal(H->next_request_id(h), 1);
    assert_int_equal(H->next_request_id(h), 2);
    mock_host_free(m);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_sim.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"hdr.csv",    "row.csv",   "neg.csv",   "order.csv",
                           "fields.csv", "empty.csv", "space.csv", "house.csv",
                           "secret.txt", "week.csv",  "trace.log"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_load_profile_errors),
        cmocka_unit_test(test_load_profile_used),
        cmocka_unit_test(test_count_and_ids),
        cmocka_unit_test(test_discovery_caps),
        cmocka_unit_test(test_read_units_and_signs),
        cmocka_unit_test(test_forced_charge_energy),
        cmocka_unit_test(test_soc_bounds),
        cmocka_unit_test(test_energy_balance_week),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_sync_duration_and_target),
        cmocka_unit_test(test_async_task_time),
        cmocka_unit_test(test_async_soc_target_and_duration),
        cmocka_unit_test(test_restart_resume),
        cmocka_unit_test(test_clock_went_back),
        cmocka_unit_test(test_fail_list),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_trace_file),
        cmocka_unit_test(test_pv_only),
        cmocka_unit_test(test_on_off),
        cmocka_unit_test(test_one_result_per_command),
        cmocka_unit_test(test_persistence_writes),
        cmocka_unit_test(test_mock_host_services),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
