/*
 * plot.png with PLplot's pngcairo device: three panels sharing the time axis (prices; fleet
 * SoC; pv, load, battery and grid power). PLplot keeps global state and is only ever called
 * here, once per simulation, from the one thread.
 */
#include "sim_plot.h"

#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

int gp_sim_plot_available(void)
{
    static const char *menus[128], *names[128];
    const char **m = menus, **d = names;
    int n = 128;
    plgDevs(&m, &d, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(d[i], "pngcairo") == 0) return 1;
    return 0;
}

/* PLplot reports a recoverable error through the abort handler (kept, and returned to the
 * caller); a fatal one (plexit) ends the process whatever a handler says. What could make it
 * fatal is checked before: the pngcairo device exists (gp_sim_plot_available) and the
 * output file can be written. */
static char plot_err[256];
static void on_plplot_abort(PLCHAR_VECTOR msg)
{
    if (!plot_err[0]) snprintf(plot_err, sizeof plot_err, "PLplot: %s", msg);
}

typedef struct line {
    const char *label;
    int color; /* cmap0 index */
    double *y;
} line;

static void range(const double *y, size_t n, double *lo, double *hi)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        if (y[i] < *lo) *lo = y[i];
        if (y[i] > *hi) *hi = y[i];
    }
}

/* One panel: lines over x (Unix s), NAN points dropped. */
static void panel(const double *x, size_t n, const line *lines, size_t n_lines, const char *ylabel,
                  const char *title)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < n_lines; k++)
        range(lines[k].y, n, &lo, &hi);
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    double pad = (hi - lo) * 0.05;
    pladv(0);
    plvsta();
    plwind(x[0], x[n - 1], lo - pad, hi + pad);
    plcol0(15);
    plbox("bcnstd", 0, 0, "bcnstv", 0, 0);
    pllab("", ylabel, title);
    double *px = gp_xcalloc(n, sizeof *px), *py = gp_xcalloc(n, sizeof *py);
    for (size_t k = 0; k < n_lines; k++) {
        plcol0(lines[k].color);
        size_t m = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && isfinite(lines[k].y[i])) {
                px[m] = x[i];
                py[m++] = lines[k].y[i];
                continue;
            }
            if (m > 1) plline((PLINT)m, px, py);
            m = 0;
        }
        /* The legend: each label in its line's colour along the top edge. */
        plmtex("t", 0.6, 0.02 + 0.16 * (double)k, 0.0, lines[k].label);
    }
    free(px);
    free(py);
}

int gp_sim_plot(const char *path, const gp_sim_point *pts, size_t n, char *err, size_t errlen)
{
    if (n < 2) {
        snprintf(err, errlen, "nothing to plot (fewer than 2 steps)");
        return -1;
    }
    FILE *probe = fopen(path, "wb");
    if (!probe) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    fclose(probe);
    double *x = gp_xcalloc(n, sizeof *x);
    double *v[8];
    for (int k = 0; k < 8; k++)
        v[k] = gp_xcalloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)pts[i].t_ms / 1000.0;
        v[0][i] = pts[i].import_price;
        v[1][i] = pts[i].export_price;
        v[2][i] = pts[i].soc_pct;
        v[3][i] = pts[i].pv_w / 1000.0;
        v[4][i] = pts[i].load_w / 1000.0;
        v[5][i] = pts[i].battery_w / 1000.0;
        v[6][i] = pts[i].grid_w / 1000.0;
    }
    plot_err[0] = '\0';
    plsabort(on_plplot_abort);
    plsdev("pngcairo");
    plsfnam(path);
    plsetopt("geometry", "1600x1000");
    plscolbg(255, 255, 255);
    plscol0(15, 0, 0, 0);      /* axes and text: black */
    plscol0(1, 200, 40, 40);   /* import price, grid */
    plscol0(2, 40, 130, 40);   /* export price, pv */
    plscol0(3, 40, 70, 200);   /* SoC, battery */
    plscol0(4, 120, 120, 120); /* load */
    plssub(1, 3);
    plinit();
    /* Day and hour ticks for spans up to a few days, dates beyond. */
    pltimefmt(x[n - 1] - x[0] > 4 * 86400 ? "%Y-%m-%d" : "%m-%d %H:%M");
    line prices[] = {{"import", 1, v[0]}, {"export", 2, v[1]}};
    panel(x, n, prices, 2, "price per kWh", "Tariff");
    line soc[] = {{"fleet SoC", 3, v[2]}};
    panel(x, n, soc, 1, "%", "State of charge (capacity-weighted)");
    line powers[] = {{"pv", 2, v[3]},
                     {"load", 4, v[4]},
                     {"battery (+ discharge)", 3, v[5]},
                     {"grid (+ import)", 1, v[6]}};
    panel(x, n, powers, 4, "kW", "Site power");
    plend();
    free(x);
    for (int k = 0; k < 8; k++)
        free(v[k]);
    if (plot_err[0]) {
        snprintf(err, errlen, "%s", plot_err);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s was not written", path);
        return -1;
    }
    fclose(f);
    return 0;
}
