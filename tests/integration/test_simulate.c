/*
 * `gridpilot simulate` end to end: the real binary, the sim plugin, a strategy, the files it
 * writes. What a user reads (report.json, timeseries.csv, plot.png, exit status, stderr).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Four batteries that idle in their own mode, a flat tariff, and a strategy that charges at
 * night and discharges at 17-20 UTC. */
static void write_config(it_env *t, const char *plugin, const char *strategy_extra)
{
    it_write(t, "strategy.lua",
             "%sreturn { decide = function(ctx)\n"
             "  if BROKEN then error('broken decide') end\n"
             "  local cmds, hour = {}, (ctx.now %% 86400) / 3600\n"
             "  for _, d in ipairs(ctx.devices) do\n"
             "    if d.caps.setpoint then\n"
             "      local w = hour < 6 and -d.max_charge_w or (hour >= 17 and hour < 20 and "
             "d.max_discharge_w or 0)\n"
             "      cmds[#cmds + 1] = { device = d.id, setpoint_w = w, duration_s = 900 }\n"
             "    end\n"
             "  end\n"
             "  return cmds\n"
             "end }\n",
             strategy_extra ? strategy_extra : "");
    it_write(t, "gridpilot.json",
             "{\"site\": \"it\", \"state_dir\": \"var\", \"plugin_path\": [\"%s\"],\n"
             " \"tick\": \"5m\", \"timezone\": \"UTC\",\n"
             " \"strategy\": {\"file\": \"strategy.lua\"},\n"
             " \"tariff\": {\"default\": {\"import\": 0.25, \"export\": 0.05}},\n"
             " \"limits\": {\"site_import_w\": 50000, \"site_export_w\": 50000},\n"
             " \"adapters\": [{\"id\": \"sim\", \"plugin\": \"%s\", \"config\": {\n"
             "   \"devices\": [{\"id\": \"b\", \"capacity_wh\": 10000, \"max_charge_w\": 3000,\n"
             "     \"max_discharge_w\": 3000, \"soc_pct\": 50, \"efficiency\": 0.95,\n"
             "     \"soc_min_pct\": 10, \"soc_max_pct\": 95, \"pv_peak_w\": 3000,\n"
             "     \"own_mode\": \"idle\"}],\n"
             "   \"count\": 4, \"seed\": 7}}]}\n",
             GP_IT_PLUGINS, plugin);
}

/* Every row of timeseries.csv: import - export = load - pv + charge - discharge. */
static void energy_balance_closes(void **state)
{
    it_env *t = *state;
    write_config(t, "sim", NULL);
    char *out, *err;
    int rc = it_run(t, 120 * it_slow(), &out, &err, "simulate", "-c", t->cfg, "--from",
                    "2026-06-01", "--to", "2026-06-03", "--out", "out", NULL);
    if (rc != 0) fprintf(stderr, "%s", err);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(err, "savings"));
    free(out), free(err);

    char path[256];
    snprintf(path, sizeof path, "%s/out/timeseries.csv", t->dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "time,device,soc_pct,battery_w,pv_w,load_w,grid_w,import_wh,"
                                 "export_wh,pv_wh,load_wh,charge_wh,discharge_wh,loss_wh"));
    size_t rows = 0;
    double worst = 0, charged = 0, discharged = 0;
    while (fgets(line, sizeof line, f)) {
        double v[20];
        int n = 0;
        char *p = line;
        for (int k = 0; k < 2; k++) /* time, device */
            p = strchr(p, ',') + 1;
        for (; n < 12 && p; n++) {
            v[n] = strtod(p, NULL);
            p = strchr(p, ',');
            if (p) p++;
        }
        assert_int_equal(n, 12);
        /* soc battery pv load grid | import export pv load charge discharge loss */
        double lhs = v[5] - v[6], rhs = v[8] - v[7] + v[9] - v[10];
        if (fabs(lhs - rhs) > worst) worst = fabs(lhs - rhs);
        charged += v[9];
        discharged += v[10];
        assert_true(v[0] >= 10 - 0.01 && v[0] <= 95 + 0.01); /* SoC bounds */
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 2 * 288 * 4); /* 2 days of 5-minute steps, 4 devices */
    assert_true(worst < 1e-3);           /* the CSV prints 4 decimals */
    assert_true(charged > 1000 && discharged > 1000);

    cJSON *r = it_read_json(t, "out/report.json");
    assert_true(it_num(r, "steps", NULL) == 576);
    assert_true(it_num(r, "devices", NULL) == 4);
    assert_true(it_num(r, "violations", NULL) == 0);
    assert_true(it_num(r, "balance_error_wh", NULL) < 1e-6);
    double net = it_num(r, "cost", "net"),
           bnet = it_num(cJSON_GetObjectItem(r, "baseline"), "cost", "net");
    assert_true(fabs(it_num(r, "savings", NULL) - (bnet - net)) < 1e-3);
    /* Charging at 0.25 to sell at 0.05 loses money against idle batteries. */
    assert_true(it_num(r, "savings", NULL) < 0);
    /* Idle batteries in the baseline move no energy. */
    assert_true(it_num(cJSON_GetObjectItem(r, "baseline"), "energy", "charge_wh") == 0);
    assert_true(it_num(r, "energy", "charge_wh") > 0);
    cJSON_Delete(r);
}

static void plot_is_a_png(void **state)
{
    it_env *t = *state;
    write_config(t, "sim", NULL);
    char *out, *err;
    int rc = it_run(t, 120 * it_slow(), &out, &err, "simulate", "-c", t->cfg, "--from",
                    "2026-06-01", "--to", "2026-06-02", "--step", "15m", "--out", "out", "--series",
                    "site", "--plot", NULL);
    if (strstr(err, "built without PLplot")) {
        /* A build without the optional library says so, and exits 2. */
        assert_int_equal(rc, 2);
        free(out), free(err);
        skip();
    }
    assert_int_equal(rc, 0);
    free(out), free(err);
    char path[256];
    snprintf(path, sizeof path, "%s/out/plot.png", t->dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char sig[8] = {0};
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    assert_true(size > 10000);
    /* --series site: one row per step. */
    snprintf(path, sizeof path, "%s/out/timeseries.csv", t->dir);
    assert_int_equal(it_count_lines(path, ",site,"), 96);
}

static void refuses_what_it_cannot_do(void **state)
{
    it_env *t = *state;
    write_config(t, "huawei", NULL);
    char *out, *err;
    assert_int_equal(it_run(t, 30, &out, &err, "simulate", "-c", t->cfg, NULL), 2);
    assert_non_null(strstr(err, "adapters[0].plugin: simulate runs sim adapters only"));
    free(out), free(err);

    write_config(t, "sim", NULL);
    assert_int_equal(it_run(t, 30, &out, &err, "simulate", "-c", t->cfg, "--from", "2026-06-02",
                            "--to", "2026-06-01", NULL),
                     2);
    assert_non_null(strstr(err, "--to must be after --from"));
    free(out), free(err);
    assert_int_equal(it_run(t, 30, &out, &err, "simulate", "-c", t->cfg, "--step", "5 min", NULL),
                     2);
    assert_non_null(strstr(err, "--step"));
    free(out), free(err);
    assert_int_equal(it_run(t, 30, &out, &err, "simulate", "-c", t->cfg, "--series", "all", NULL),
                     2);
    assert_non_null(strstr(err, "--series must be devices, site or none"));
    free(out), free(err);

    /* A strategy error is logged and the run goes on (nothing dispatched that tick). */
    write_config(t, "sim", "error('boom at load')\n");
    assert_int_equal(it_run(t, 30, &out, &err, "simulate", "-c", t->cfg, NULL), 2);
    assert_non_null(strstr(err, "boom at load"));
    free(out), free(err);
}

/* A strategy that fails every tick: the first errors are logged, the rest counted, and the
 * run exits 1 rather than report figures of a fleet nobody steered. */
static void broken_strategy_fails_the_run(void **state)
{
    it_env *t = *state;
    write_config(t, "sim", "BROKEN = true\n");
    char *out, *err;
    assert_int_equal(it_run(t, 60 * it_slow(), &out, &err, "simulate", "-c", t->cfg, "--from",
                            "2026-06-01", "--to", "2026-06-02", "--out", "out", NULL),
                     1);
    assert_non_null(strstr(err, "broken decide"));
    assert_non_null(strstr(err, "the strategy failed on 288 of 288 ticks"));
    char path[256];
    snprintf(path, sizeof path, "%s/err.log", t->dir);
    FILE *f = fopen(path, "w");
    fputs(err, f);
    fclose(f);
    assert_int_equal(it_count_lines(path, "broken decide"), 3);
    free(out), free(err);
    cJSON *r = it_read_json(t, "out/report.json");
    assert_true(it_num(r, "strategy_errors", NULL) == 288);
    cJSON_Delete(r);
}

/* On a terminal a long run shows where it is; redirected, stderr gets log lines only. */
static void progress_on_a_terminal(void **state)
{
    it_env *t = *state;
    write_config(t, "sim", NULL);
    int master;
    fflush(NULL);
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(t->dir) != 0) _exit(126);
        execl(GP_IT_BIN, GP_IT_BIN, "simulate", "-c", t->cfg, "--from", "2026-06-01", "--to",
              "2026-06-08", "--out", "out", "--series", "none", (char *)NULL);
        _exit(127);
    }
    static char text[1 << 16];
    size_t len = 0;
    for (int idle = 0; idle < 120 * it_slow();) {
        struct pollfd pfd = {master, POLLIN, 0};
        int r = poll(&pfd, 1, 1000);
        if (r == 0) {
            idle++;
            continue;
        }
        ssize_t n = read(master, text + len, sizeof text - 1 - len);
        if (n <= 0) break; /* EIO: the child closed the terminal */
        len += (size_t)n;
        if (len == sizeof text - 1) break;
    }
    text[len] = '\0';
    close(master);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "%s", text);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(text, "\rbaseline "));
    assert_non_null(strstr(text, "\rstrategy "));
    assert_non_null(strstr(text, "2026-06-08T00:00 100.0%"));
    assert_non_null(strstr(text, "steps/s"));

    char *out, *err;
    assert_int_equal(it_run(t, 120 * it_slow(), &out, &err, "simulate", "-c", t->cfg, "--from",
                            "2026-06-01", "--to", "2026-06-02", "--out", "out", NULL),
                     0);
    assert_null(strchr(err, '\r'));
    free(out), free(err);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, it_setup, it_teardown)
    const struct CMUnitTest tests[] = {
        T(energy_balance_closes),         T(plot_is_a_png),          T(refuses_what_it_cannot_do),
        T(broken_strategy_fails_the_run), T(progress_on_a_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
