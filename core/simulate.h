/*
 * `gridpilot simulate`: the configured strategy against `sim` devices on a virtual clock,
 * once without dispatch (the baseline) and once with it, and a report of what it changed.
 */
#ifndef GP_SIMULATE_H
#define GP_SIMULATE_H

typedef enum gp_series_mode {
    GP_SERIES_DEVICES = 0, /* timeseries.csv: one row per step per device (the contract) */
    GP_SERIES_SITE,        /* one row per step for the whole site */
    GP_SERIES_NONE,        /* no timeseries.csv */
} gp_series_mode;

typedef struct gp_sim_opts {
    const char *config; /* borrowed */
    const char *from;   /* TIME or NULL: the tariff file's first slot, else today 00:00 UTC */
    const char *to;     /* TIME or NULL: the tariff file's end, else from + 1 day */
    const char *step;   /* DURATION or NULL: the config's tick */
    const char *out;    /* folder or NULL: "simulate-out" */
    int plot;           /* write plot.png */
    gp_series_mode series;
} gp_sim_opts;

/* Returns the exit status: 0, 1 runtime failure (or interrupted), 2 usage/config error. */
int gp_simulate(const gp_sim_opts *o);

#endif
