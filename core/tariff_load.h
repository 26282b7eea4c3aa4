/* Tariffs from a configuration's `tariff` object (CONTRACT.md, "Configuration"): price files
 * (CSV, Octopus JSON) and daily time-of-use periods, checked completely, every problem named
 * by its JSON path and, for files, by file and line (or results index). */
#ifndef GP_TARIFF_LOAD_H
#define GP_TARIFF_LOAD_H

#include "diag.h"
#include "tariff.h"

struct cJSON;

typedef struct gp_tariff_source {
    const char *file;            /* tariff.file, absolute; NULL when none */
    const char *export_file;     /* tariff.export_file (Octopus JSON), absolute; NULL when none */
    const char *unit;            /* tariff.unit: "currency", "pence" or "cents" (1/100 of the
                                    currency); NULL: currency for CSV, pence for Octopus JSON */
    const struct cJSON *periods; /* tariff.periods (checked here), or NULL */
    const char *timezone;        /* for periods: the configured zone, NULL when it is invalid
                                    (already reported) */
    double default_import, default_export; /* tariff.default; NAN when none */
} gp_tariff_source;

/* Load and check. Returns the tariff (owned by the caller), or NULL with every problem added
 * to d under "tariff.file", "tariff.export_file", "tariff.unit" or "tariff.periods[i]...",
 * e.g. "tariff.file: /srv/prices.csv line 7: stop 2026-01-01T01:00:00Z is before start
 * 2026-01-01T02:00:00Z". A file tariff is only returned whole. Without a file or periods the
 * result is the fixed default price. */
gp_tariff *gp_tariff_load(const gp_tariff_source *src, gp_diag *d);

#endif
