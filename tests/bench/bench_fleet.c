/*
 * Fleet and strategy benchmark: memory per device, strategy time per tick and dispatch time
 * per tick at N simulated devices (default 10,000). Prints figures; asserts nothing. Each
 * strategy is compared with an empty one (ctx building only) in the same run, because the
 * machine is noisy and ratios travel better than milliseconds.
 *
 *   build/tests/bench/bench_fleet [devices] [ticks]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "fleet.h"
#include "journal.h"
#include "log.h"
#include "strategy.h"
#include "tariff.h"
#include "timeutil.h"

static long rss_kib(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(fp);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0) {
        perror(path);
        exit(1);
    }
    fclose(fp);
}

typedef struct result {
    double median_ms, p90_ms;
    size_t heap;
    size_t commands;
} result;

static result run_strategy(const char *file, const char *params, gp_fleet *f,
                           const gp_tariff *tariff, int ticks)
{
    char err[4096];
    gp_strategy_opts o = {file, params, 5000, 256u << 20};
    gp_strategy *s = gp_strategy_load(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    double *t = calloc((size_t)ticks, sizeof *t);
    result r = {0};
    int64_t now = 1767225600000LL;
    for (int i = -1; i < ticks; i++) { /* one warm-up tick builds the device tables */
        gp_tick_in in = {now + (int64_t)i * 60000, 60, 0, f, tariff};
        gp_tick_out out;
        double t0 = gp_mono_s();
        if (gp_strategy_tick(s, &in, &out, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
        if (i >= 0) t[i] = (gp_mono_s() - t0) * 1000.0;
        r.commands = out.n;
    }
    qsort(t, (size_t)ticks, sizeof *t, cmp_double);
    r.median_ms = t[ticks / 2];
    r.p90_ms = t[(ticks * 9) / 10];
    r.heap = gp_strategy_mem(s);
    free(t);
    gp_strategy_free(s);
    return r;
}

static void noop_send(void *ud, unsigned a, const gp_cmd *c, size_t n)
{
    (void)ud, (void)a, (void)c, (void)n;
}
static void noop_poll(void *ud, unsigned a, const gp_task *t, size_t n)
{
    (void)ud, (void)a, (void)t, (void)n;
}
static uint32_t no_flags(void *ud, unsigned a)
{
    (void)ud, (void)a;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 10000;
    int ticks = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || ticks < 1) {
        fprintf(stderr, "usage: bench_fleet [devices] [ticks]\n");
        return 2;
    }
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_WARN);

    /* ---- fleet memory */
    long rss0 = rss_kib();
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "fusion", 180000);
    char vendor[32], err[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(vendor, sizeof vendor, "NE=%08zu", i);
        gp_device_info d = {.size = sizeof d,
                            .vendor_id = vendor,
                            .local = (uint32_t)i,
                            .caps = GP_CAP_READ | GP_CAP_WRITE_MASK,
                            .capacity_wh = 13500,
                            .max_charge_w = 5000,
                            .max_discharge_w = 5000,
                            .soc_min_pct = 5,
                            .soc_max_pct = 100};
        gp_fleet_add(f, 0, &d, NULL, err, sizeof err);
        gp_reading r = {.size = sizeof r,
                        .online = 1,
                        .soc_pct = 20 + (double)(i % 70),
                        .battery_w = -1000,
                        .pv_w = 2500,
                        .load_w = 600,
                        .grid_w = -900,
                        .capacity_wh = NAN,
                        .max_charge_w = NAN,
                        .max_discharge_w = NAN,
                        .soc_min_pct = NAN,
                        .soc_max_pct = NAN};
        gp_fleet_reading(f, i, &r, 1767225600000LL);
    }
    long rss1 = rss_kib();
    printf("gridpilot benchmark: %zu devices, %d ticks per strategy\n\n", n, ticks);
    printf("fleet state:     %6zu bytes/device (accounted), %6.0f bytes/device (RSS growth)\n",
           gp_fleet_bytes(f) / n, (double)(rss1 - rss0) * 1024.0 / (double)n);

    /* ---- strategies */
    char dir[] = "/tmp/gp-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char empty[128], touch[128];
    snprintf(empty, sizeof empty, "%s/empty.lua", dir);
    snprintf(touch, sizeof touch, "%s/touch.lua", dir);
    write_file(empty, "return { decide = function(ctx) return {} end }\n");
    /* Reads every field of every device and commands half of them. */
    write_file(touch, "return { decide = function(ctx)\n"
                      "  local c, price = {}, ctx.tariff.import_price(ctx.now)\n"
                      "  for i, d in ipairs(ctx.devices) do\n"
                      "    local room = (d.soc_max_pct or 100) - (d.soc_pct or 0)\n"
                      "    local w = d.max_charge_w * room / 100 + d.pv_w - d.load_w\n"
                      "    if d.online and d.caps.setpoint and i % 2 == 0 and price < 1 then\n"
                      "      c[#c + 1] = { device = d.id, setpoint_w = -math.floor(w) }\n"
                      "    end\n"
                      "  end\n"
                      "  return c\n"
                      "end }\n");
    gp_tariff *tariff = gp_tariff_fixed(0.2, 0.05);
    result base = run_strategy(empty, "{}", f, tariff, ticks);
    result wave = run_strategy(GP_BENCH_SRCDIR "/strategies/fleet_wave.lua",
                               "{\"target_w\": -20000000}", f, tariff, ticks);
    result half = run_strategy(touch, "{}", f, tariff, ticks);
    printf("\nstrategy time per tick (ctx build + Lua + command parsing):\n");
    printf("  %-34s %8s %8s %10s %9s %8s\n", "strategy", "median", "p90", "vs empty", "commands",
           "Lua heap");
    const struct {
        const char *name;
        result *r;
    } rows[] = {{"empty (ctx only)", &base},
                {"fleet_wave.lua (all devices)", &wave},
                {"every field, commands half", &half}};
    for (size_t i = 0; i < 3; i++)
        printf("  %-34s %6.2fms %6.2fms %9.2fx %9zu %6.1fMiB\n", rows[i].name, rows[i].r->median_ms,
               rows[i].r->p90_ms, rows[i].r->median_ms / base.median_ms, rows[i].r->commands,
               (double)rows[i].r->heap / 1048576.0);
    printf("  per device: %.2f us (empty), %.2f us (fleet_wave)\n",
           base.median_ms * 1000.0 / (double)n, wave.median_ms * 1000.0 / (double)n);

    /* ---- dispatch: journal + validation for a tick where every device changes, then a
     * tick where nothing changes (all de-duplicated). */
    gp_journal *j = gp_journal_open(dir, 0, err, sizeof err);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gp_dispatch_opts dopts = {.site_import_w = INFINITY,
                              .site_export_w = INFINITY,
                              .max_attempts = 3,
                              .command_timeout_ms = 120000,
                              .quiet = 1};
    gp_dispatch_io io = {NULL, noop_send, noop_poll, NULL, no_flags, NULL, NULL, NULL, NULL};
    gp_dispatch *d = gp_dispatch_new(f, j, &dopts, &io);
    gp_intent *in = calloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] =
            (gp_intent){.device = gp_fleet_id(f, i), .fields = GP_IF_SETPOINT, .setpoint_w = -2000};
    double t0 = gp_mono_s();
    gp_submit_stats st;
    gp_dispatch_submit(d, in, n, "bench", 1767225600000LL, NULL, &st);
    double t_new = (gp_mono_s() - t0) * 1000.0;
    t0 = gp_mono_s();
    gp_submit_stats st2;
    gp_dispatch_submit(d, in, n, "bench", 1767225660000LL, NULL, &st2);
    double t_same = (gp_mono_s() - t0) * 1000.0;
    printf("\ndispatch per tick (validate, clamp, de-duplicate, journal in one transaction):\n");
    printf("  %zu new commands:       %8.1f ms  (%.1f us/command, %zu journaled)\n", n, t_new,
           t_new * 1000.0 / (double)n, st.sent);
    printf("  %zu unchanged commands: %8.1f ms  (%.1f us/command, %zu dropped)\n", n, t_same,
           t_same * 1000.0 / (double)n, st2.unchanged);

    gp_dispatch_free(d);
    gp_journal_close(j);
    free(in);
    gp_tariff_free(tariff);
    gp_fleet_free(f);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
