/* Builds without PLplot: no plot (see sim_plot.h). */
#include <stdio.h>

#include "sim_plot.h"

int gp_sim_plot_available(void)
{
    return 0;
}

int gp_sim_plot(const char *path, const gp_sim_point *pts, size_t n, char *err, size_t errlen)
{
    (void)path;
    (void)pts;
    (void)n;
    snprintf(err, errlen, "built without PLplot");
    return -1;
}
