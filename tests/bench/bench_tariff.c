/*
 * Tariff loading: a year of half-hourly prices (17,520 slots) as the shipped Octopus JSON
 * (examples/data/octopus_2026.json, export prices in the same file) and as a CSV written
 * here, and price lookups in it. Prints figures (best of 5); never fails on a number.
 *
 *   bench_tariff
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tariff_load.h"
#include "timeutil.h"

static double load_ms(const char *file, size_t *slots)
{
    double best = INFINITY;
    for (int k = 0; k < 5; k++) {
        gp_tariff_source src = {file, NULL, NULL, NULL, NULL, NAN, NAN};
        gp_diag d = {0};
        double t0 = gp_mono_s();
        gp_tariff *t = gp_tariff_load(&src, &d);
        double ms = (gp_mono_s() - t0) * 1000.0;
        if (!t) {
            fprintf(stderr, "%s: %s\n", file, d.n ? d.lines[0] : "failed");
            exit(1);
        }
        int64_t from = 0, to = 0;
        gp_tariff_extent(t, &from, &to);
        free(gp_tariff_slots(t, from, to, slots));
        gp_tariff_free(t);
        gp_diag_clear(&d);
        if (ms < best) best = ms;
    }
    return best;
}

int main(void)
{
    const int64_t start = 1767225600000LL; /* 2026-01-01 */
    char csv[] = "/tmp/gp-bench-tariff-XXXXXX";
    int fd = mkstemp(csv);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) return 1;
    fprintf(f, "start,stop,import,export\n");
    for (int i = 0; i < 17520; i++) {
        char a[40], b[40];
        gp_format_time(start + (int64_t)i * 1800000, a, sizeof a);
        gp_format_time(start + (int64_t)(i + 1) * 1800000, b, sizeof b);
        fprintf(f, "%s,%s,%.4f,%.4f\n", a, b, 0.1 + 0.2 * (i % 48) / 48.0, 0.05);
    }
    fclose(f);
    size_t n_csv = 0, n_json = 0;
    double csv_ms = load_ms(csv, &n_csv);
    double json_ms = load_ms(GP_BENCH_SRCDIR "/examples/data/octopus_2026.json", &n_json);
    unlink(csv);
    printf("tariff load, best of 5:\n");
    printf("  CSV           %6zu slots  %7.2f ms\n", n_csv, csv_ms);
    printf("  Octopus JSON  %6zu slots  %7.2f ms  (%.1fx CSV)\n", n_json, json_ms,
           json_ms / csv_ms);

    gp_tariff_source src = {
        GP_BENCH_SRCDIR "/examples/data/octopus_2026.json", NULL, NULL, NULL, NULL, NAN, NAN};
    gp_diag d = {0};
    gp_tariff *t = gp_tariff_load(&src, &d);
    if (!t) return 1;
    double sum = 0, t0 = gp_mono_s();
    for (int i = 0; i < 1000000; i++)
        sum += gp_tariff_import(t, start + (int64_t)(i % 17520) * 1800000 + 60000);
    double us = (gp_mono_s() - t0) * 1e6 / 1e6;
    printf("  import_price lookup: %.3f us (1,000,000 lookups; checksum %.1f)\n", us, sum);
    gp_tariff_free(t);
    gp_diag_clear(&d);
    return 0;
}
