/* Diagnostics: problems found in a configuration, each with its JSON path. */
#ifndef GP_DIAG_H
#define GP_DIAG_H

#include <stddef.h>

#include "gridpilot/plugin.h"

typedef struct gp_diag {
    char **lines; /* owned: "path: message" */
    size_t n;
} gp_diag;

/* Add "path: message" (path may be "" for the document itself). */
void gp_diag_add(gp_diag *d, const char *path, const char *fmt, ...) GP_PRINTF(3, 4);
/* Print every line to stderr as "<file>: <line>" and return the count. */
size_t gp_diag_print(const gp_diag *d, const char *file);
void gp_diag_clear(gp_diag *d);

#endif
