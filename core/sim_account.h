/*
 * Bookkeeping of one simulation run: energy and money per step and device, the site series
 * for the plot, limit violations, and the files that come out of it (report.json,
 * timeseries.csv).
 *
 * Energy comes from the sim plugin's cumulative counters (reading extras `import_wh`,
 * `export_wh`, `pv_wh`, `load_wh`, `charge_wh`, `discharge_wh`, `loss_wh`): the physics
 * integrates minute by minute, so a step's energy is exact even when forced mode ends or a
 * SoC bound is reached inside it. Money: a step's energy at the prices in force at its start.
 */
#ifndef GP_SIM_ACCOUNT_H
#define GP_SIM_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fleet.h"
#include "tariff.h"

enum {
    GP_E_IMPORT,
    GP_E_EXPORT,
    GP_E_PV,
    GP_E_LOAD,
    GP_E_CHARGE,
    GP_E_DISCHARGE,
    GP_E_LOSS,
    GP_E_N
};

/* Names as in report.json and the reading extras (static strings). */
extern const char *const gp_energy_names[GP_E_N];

typedef struct gp_sim_totals {
    double wh[GP_E_N];
    double cost_import, cost_export; /* currency; export is what the exports earned */
    double peak_import_w;            /* highest site net import averaged over a step */
    uint64_t steps, unpriced_steps;  /* steps with no import price (cost counted 0) */
    uint64_t violations;
    double soc_min_pct, soc_max_pct; /* lowest / highest device SoC seen (NAN: none) */
} gp_sim_totals;

/* One point of the site series (the plot). */
typedef struct gp_sim_point {
    int64_t t_ms;
    double import_price, export_price;
    double soc_pct;                         /* capacity-weighted, at the step's end */
    double pv_w, load_w, battery_w, grid_w; /* means over the step */
} gp_sim_point;

typedef struct gp_sim_acct gp_sim_acct;

/* For `fleet` (borrowed; must outlive it). csv: open file for timeseries rows or NULL (no
 * rows; borrowed). per_device: rows per device, else per site. series_every: keep every
 * k-th step of the site series in memory (for the plot; 0: none). site_import_w /
 * site_export_w: limits.* (NAN: none).
 * Returns NULL with a reason in err when a device has no energy counters (not a sim
 * device). */
gp_sim_acct *gp_sim_acct_new(gp_fleet *fleet, FILE *csv, int per_device, size_t series_every,
                             double site_import_w, double site_export_w, char *err, size_t errlen);
void gp_sim_acct_free(gp_sim_acct *a);

/* Book the step [t0, t1) from the counters now in the fleet; prices from `tariff`
 * (borrowed, may be NULL) at t0. Returns 0, or -1 with a reason (a counter went missing). */
int gp_sim_acct_step(gp_sim_acct *a, const gp_tariff *tariff, int64_t t0, int64_t t1, char *err,
                     size_t errlen);

const gp_sim_totals *gp_sim_acct_totals(const gp_sim_acct *a);
/* The site series (borrowed; empty unless keep_series). */
const gp_sim_point *gp_sim_acct_series(const gp_sim_acct *a, size_t *n);
/* Up to 20 violations as one-line texts (borrowed). */
const char *const *gp_sim_acct_examples(const gp_sim_acct *a, size_t *n);
/* Largest error of the energy balance import - export = load - pv + charge - discharge over
 * every step and device, Wh (a self-check: the physics makes it ~1e-9). */
double gp_sim_acct_balance_error(const gp_sim_acct *a);

#endif
