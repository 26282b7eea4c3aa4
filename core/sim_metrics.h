/*
 * Summaries of the figures a strategy reports with gp.metric(name, value) over a simulation:
 * per name the number of ticks it was given, mean, mean of the absolute value, root mean
 * square, minimum, maximum, sum and last value (a tracking error wants mean |x| and rms, a
 * plan's expected cost its sum or last).
 */
#ifndef GP_SIM_METRICS_H
#define GP_SIM_METRICS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "strategy.h"

typedef struct gp_metric_sums gp_metric_sums;

gp_metric_sums *gp_metric_sums_new(void);    /* owned by the caller; gp_metric_sums_free */
void gp_metric_sums_free(gp_metric_sums *m); /* NULL is ignored */
/* Add one tick's figures (borrowed). At most GP_METRIC_SUMS_MAX names are kept over a run;
 * later new names are dropped with one warning. */
#define GP_METRIC_SUMS_MAX 256
void gp_metric_sums_add(gp_metric_sums *m, const gp_metric *v, size_t n);
/* {name: {ticks, mean, mean_abs, rms, min, max, sum, last}}, names in first-seen order;
 * owned by the caller. */
cJSON *gp_metric_sums_json(const gp_metric_sums *m);
/* One line per name for the log ("name: mean M, mean |x| A, min .. max over N ticks"). */
void gp_metric_sums_log(const gp_metric_sums *m, const char *who);

#endif
