/*
 * plot.png of a simulation: prices, fleet SoC and site powers over time, drawn with PLplot
 * (see docs/adr/0009-simulate.md for why PLplot). Built only when PLplot is found; otherwise
 * gp_sim_plot_available() is 0 and `simulate --plot` says how to get it.
 */
#ifndef GP_SIM_PLOT_H
#define GP_SIM_PLOT_H

#include <stddef.h>

#include "sim_account.h"

int gp_sim_plot_available(void);
/* Write a PNG of the series (borrowed) to path. 0, or -1 with a reason in err. */
int gp_sim_plot(const char *path, const gp_sim_point *pts, size_t n, char *err, size_t errlen);

#endif
