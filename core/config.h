/*
 * The configuration file (CONTRACT.md, "Configuration"): parsed, validated and resolved.
 * Every problem is reported with its JSON path; unknown keys are errors. Relative paths are
 * resolved against the config file's folder.
 */
#ifndef GP_CONFIG_H
#define GP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct cJSON;

enum gp_on_exit { GP_ON_EXIT_RELEASE = 0, GP_ON_EXIT_HOLD = 1 };

typedef struct gp_adapter_cfg {
    char *id;                   /* unique, [A-Za-z0-9_.-]+ */
    char *plugin;               /* plugin name */
    const struct cJSON *config; /* the plugin's own object (borrowed from the document);
                               NULL when absent */
    int config_invalid;         /* `config` was given but is not an object (reported) */
    int64_t poll_ms;            /* telemetry period */
    int64_t task_poll_ms;       /* 0 = the plugin's default */
    int64_t timeout_ms;         /* default HTTP timeout */
    int tls_verify;             /* 1 unless "tls_verify": false */
    char *ca_file;              /* absolute, or NULL */
    int busy_replace;           /* "busy": "replace" (stop a running task for a new command) */
} gp_adapter_cfg;

typedef struct gp_config {
    char *path; /* the file as given */
    char *dir;  /* absolute folder of the file */
    char *site;
    char *state_dir;    /* absolute */
    char **plugin_path; /* absolute folders, in order */
    size_t n_plugin_path;
    int64_t tick_ms;
    char *timezone;
    int on_exit; /* gp_on_exit */

    int has_strategy;
    char *strategy_file;   /* absolute */
    char *strategy_params; /* JSON object text ("{}" when absent) */
    int64_t strategy_timeout_ms;
    size_t strategy_memory;

    int has_tariff;
    double tariff_import, tariff_export; /* the fixed price (tariff.default); NAN unknown */
    struct gp_tariff *tariff; /* owned; the loaded tariff, NULL without one (a taker sets it
                                 to NULL) */

    double site_import_w, site_export_w; /* INFINITY when unlimited */

    int max_attempts;           /* sends per command before it fails (dispatch.max_attempts) */
    int64_t command_timeout_ms; /* how long a sent command may wait for its answer */
    int64_t release_timeout_ms; /* how long shutdown waits for on_exit releases */
    int64_t max_task_age_ms;    /* a vendor task not final after this ends timeout */

    int has_api;
    char *api_listen;
    char *api_token; /* secret; NULL when none */

    gp_adapter_cfg *adapters;
    size_t n_adapters;

    struct cJSON *doc; /* owned; adapters[].config point into it */
} gp_config;

/* Read and validate `path`. Returns the config (owned by the caller, gp_config_free) when
 * there is no problem; otherwise NULL with every problem in d. With `partial`, a document
 * that parses is returned even with problems (fields at fault keep their defaults), so that
 * `check` can go on to load plugins and compile the strategy. */
gp_config *gp_config_load(const char *path, int partial, gp_diag *d);
/* gp_config_load (not partial) that prints every problem to stderr and returns NULL on any. */
gp_config *gp_config_load_reported(const char *path);
void gp_config_free(gp_config *c);

/* JSON path helper: "adapters[2].config" style. */
void gp_config_path(char *buf, size_t len, const char *parent, const char *key, int index);

#endif
