/* Configuration parsing and validation. Reports every problem it can find in one pass. */
#include "config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "path.h"
#include "secret.h"
#include "str.h"
#include "tariff.h"
#include "tariff_load.h"
#include "timeutil.h"
#include "tz.h"

void gp_config_path(char *buf, size_t len, const char *parent, const char *key, int index)
{
    const char *dot = parent && *parent ? "." : "";
    if (index >= 0)
        snprintf(buf, len, "%s%s%s[%d]", parent ? parent : "", dot, key, index);
    else
        snprintf(buf, len, "%s%s%s", parent ? parent : "", dot, key);
}

/* Report keys of obj that are not allowed (secret names also allow _env and _file). */
static void check_keys(const cJSON *obj, const char *path, const char *const *allowed,
                       const char *const *secrets, gp_diag *d)
{
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (gp_json_repeated_key((const gp_json *)obj, (const gp_json *)m)) {
            char p[512];
            gp_config_path(p, sizeof p, path, m->string, -1);
            gp_diag_add(d, p, "given twice (only one is used: remove the other)");
            continue;
        }
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(m->string, *a) == 0;
        for (const char *const *s = secrets; s && *s && !ok; s++)
            ok = gp_secret_key_matches(m->string, *s);
        if (!ok) {
            char p[512];
            gp_config_path(p, sizeof p, path, m->string, -1);
            gp_diag_add(d, p, "unknown key");
        }
    }
}

typedef struct ctx {
    gp_diag *d;
    const char *dir;
} ctx;

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static char *get_string(ctx *c, const cJSON *obj, const char *path, const char *key,
                        const char *dflt, int required)
{
    const cJSON *v = get(obj, key);
    char p[512];
    gp_config_path(p, sizeof p, path, key, -1);
    if (!v) {
        if (required) gp_diag_add(c->d, p, "missing");
        return gp_xstrdup(dflt);
    }
    if (!cJSON_IsString(v) || !*v->valuestring) {
        gp_diag_add(c->d, p, "must be a non-empty string");
        return gp_xstrdup(dflt);
    }
    return gp_xstrdup(v->valuestring);
}

static int64_t get_duration(ctx *c, const cJSON *obj, const char *path, const char *key,
                            int64_t dflt, int64_t min_ms)
{
    const cJSON *v = get(obj, key);
    if (!v) return dflt;
    char p[512], err[200];
    gp_config_path(p, sizeof p, path, key, -1);
    int64_t ms;
    if (!cJSON_IsString(v)) {
        gp_diag_add(c->d, p, "must be a duration string such as \"30s\" or \"5m\"");
        return dflt;
    }
    if (gp_parse_duration_ms(v->valuestring, &ms, err, sizeof err) != 0) {
        gp_diag_add(c->d, p, "%s", err);
        return dflt;
    }
    if (ms < min_ms) {
        char m[32];
        gp_format_duration(min_ms, m, sizeof m);
        gp_diag_add(c->d, p, "must be at least %s", m);
        return dflt;
    }
    return ms;
}

static double get_number(ctx *c, const cJSON *obj, const char *path, const char *key, double dflt,
                         double min, double max)
{
    const cJSON *v = get(obj, key);
    if (!v) return dflt;
    char p[512];
    gp_config_path(p, sizeof p, path, key, -1);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        gp_diag_add(c->d, p, "must be a number");
        return dflt;
    }
    if (v->valuedouble < min || v->valuedouble > max) {
        gp_diag_add(c->d, p, "must be between %g and %g", min, max);
        return dflt;
    }
    return v->valuedouble;
}

static const cJSON *get_object(ctx *c, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *v = get(obj, key);
    if (!v) return NULL;
    if (!cJSON_IsObject(v)) {
        char p[512];
        gp_config_path(p, sizeof p, path, key, -1);
        gp_diag_add(c->d, p, "must be an object");
        return NULL;
    }
    return v;
}

static char *resolve(ctx *c, const char *rel)
{
    return gp_path_resolve(c->dir, rel);
}

static int valid_id(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

/* "UTC", or a zone file under /usr/share/zoneinfo that tz.c can read. */
static int valid_timezone(const char *tz)
{
    char err[256];
    gp_tz *z = tz ? gp_tz_load(tz, err, sizeof err) : NULL;
    gp_tz_free(z);
    return z != NULL;
}

static void parse_strategy(ctx *c, gp_config *cfg, const cJSON *s)
{
    static const char *const keys[] = {"file", "params", "timeout", "memory_limit_mb", NULL};
    check_keys(s, "strategy", keys, NULL, c->d);
    cfg->has_strategy = 1;
    char *file = get_string(c, s, "strategy", "file", NULL, 1);
    if (file) {
        cfg->strategy_file = resolve(c, file);
        if (!gp_path_is_file(cfg->strategy_file))
            gp_diag_add(c->d, "strategy.file", "cannot read %s", cfg->strategy_file);
        free(file);
    }
    const cJSON *params = get(s, "params");
    if (params && !cJSON_IsObject(params))
        gp_diag_add(c->d, "strategy.params", "must be an object");
    cfg->strategy_params =
        params && cJSON_IsObject(params) ? cJSON_PrintUnformatted(params) : gp_xstrdup("{}");
    cfg->strategy_timeout_ms = get_duration(c, s, "strategy", "timeout", 200, 1);
    cfg->strategy_memory =
        (size_t)get_number(c, s, "strategy", "memory_limit_mb", 64, 1, 65536) * 1024 * 1024;
}

static void parse_tariff(ctx *c, gp_config *cfg, const cJSON *t)
{
    static const char *const keys[] = {"default", "file", "export_file", "unit", "periods", NULL};
    check_keys(t, "tariff", keys, NULL, c->d);
    cfg->has_tariff = 1;
    const cJSON *dflt = get_object(c, t, "tariff", "default");
    if (!dflt && !get(t, "default") && !get(t, "file") && !get(t, "periods")) {
        if (get(t, "export_file"))
            gp_diag_add(c->d, "tariff.export_file",
                        "needs tariff.file (the import prices it goes with)");
        else
            gp_diag_add(c->d, "tariff.default", "missing (a tariff needs prices)");
        return;
    }
    if (dflt) {
        static const char *const pkeys[] = {"import", "export", NULL};
        check_keys(dflt, "tariff.default", pkeys, NULL, c->d);
        cfg->tariff_import = get_number(c, dflt, "tariff.default", "import", NAN, -1e6, 1e6);
        cfg->tariff_export = get_number(c, dflt, "tariff.default", "export", NAN, -1e6, 1e6);
        if (!get(dflt, "import") && !get(t, "file") && !get(t, "periods"))
            gp_diag_add(c->d, "tariff.default.import", "missing");
    }
    /* Files and periods are loaded and checked completely here (tariff_load.c), so that
     * check, run and simulate all see their problems. */
    char *file = get_string(c, t, "tariff", "file", NULL, 0);
    char *efile = get_string(c, t, "tariff", "export_file", NULL, 0);
    char *unit = get_string(c, t, "tariff", "unit", NULL, 0);
    gp_tariff_source src = {file ? resolve(c, file) : NULL,
                            efile ? resolve(c, efile) : NULL,
                            unit,
                            get(t, "periods"),
                            get(t, "periods") && valid_timezone(cfg->timezone) ? cfg->timezone
                                                                               : NULL,
                            cfg->tariff_import,
                            cfg->tariff_export};
    int wrong_type = (!file && get(t, "file")) || (!efile && get(t, "export_file")) ||
                     (!unit && get(t, "unit")); /* already reported */
    if (!wrong_type) cfg->tariff = gp_tariff_load(&src, c->d);
    free((char *)src.file);
    free((char *)src.export_file);
    free(file);
    free(efile);
    free(unit);
}

static void parse_api(ctx *c, gp_config *cfg, const cJSON *a)
{
    static const char *const keys[] = {"listen", NULL};
    static const char *const secrets[] = {"token", NULL};
    check_keys(a, "api", keys, secrets, c->d);
    cfg->has_api = 1;
    cfg->api_listen = get_string(c, a, "api", "listen", "127.0.0.1:8321", 0);
    const char *colon = strrchr(cfg->api_listen, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == cfg->api_listen || !end || *end || port < 1 || port > 65535)
        gp_diag_add(c->d, "api.listen", "'%s' is not host:port (e.g. 127.0.0.1:8321)",
                    cfg->api_listen);
    cfg->api_token = gp_secret_resolve(a, "token", c->dir, "api", 0, c->d);
}

static void parse_adapter(ctx *c, gp_config *cfg, const cJSON *a, int i)
{
    char path[64];
    gp_config_path(path, sizeof path, "", "adapters", i);
    gp_adapter_cfg *ad = &cfg->adapters[i];
    ad->tls_verify = 1;
    if (!cJSON_IsObject(a)) {
        gp_diag_add(c->d, path, "must be an object");
        return;
    }
    static const char *const keys[] = {"id",      "plugin", "config",     "poll",    "task_poll",
                                       "timeout", "busy",   "tls_verify", "ca_file", NULL};
    check_keys(a, path, keys, NULL, c->d);
    ad->id = get_string(c, a, path, "id", NULL, 1);
    ad->plugin = get_string(c, a, path, "plugin", NULL, 1);
    if (ad->id && !valid_id(ad->id))
        gp_diag_add(c->d, "", "%s.id: '%s' may only use letters, digits, '-', '_' and '.'", path,
                    ad->id);
    for (int j = 0; j < i && ad->id; j++)
        if (cfg->adapters[j].id && strcmp(cfg->adapters[j].id, ad->id) == 0)
            gp_diag_add(c->d, "", "%s.id: '%s' is already used by adapters[%d]", path, ad->id, j);
    const cJSON *conf = get(a, "config");
    if (conf && !cJSON_IsObject(conf)) {
        gp_diag_add(c->d, "", "%s.config: must be an object", path);
        conf = NULL;
        ad->config_invalid = 1;
    }
    ad->config = conf;
    ad->poll_ms = get_duration(c, a, path, "poll", 60000, 100);
    ad->task_poll_ms = get_duration(c, a, path, "task_poll", 0, 100);
    ad->timeout_ms = get_duration(c, a, path, "timeout", 30000, 100);
    const cJSON *tv = get(a, "tls_verify");
    if (tv && !cJSON_IsBool(tv))
        gp_diag_add(c->d, "", "%s.tls_verify: must be true or false", path);
    else if (tv)
        ad->tls_verify = cJSON_IsTrue(tv);
    char *busy = get_string(c, a, path, "busy", "queue", 0);
    if (busy && strcmp(busy, "replace") == 0)
        ad->busy_replace = 1;
    else if (!busy || strcmp(busy, "queue") != 0)
        gp_diag_add(c->d, "", "%s.busy: must be \"queue\" or \"replace\"", path);
    free(busy);
    char *ca = get_string(c, a, path, "ca_file", NULL, 0);
    if (ca) {
        ad->ca_file = resolve(c, ca);
        if (!gp_path_is_file(ad->ca_file))
            gp_diag_add(c->d, "", "%s.ca_file: cannot read %s", path, ad->ca_file);
        free(ca);
    }
}

static void parse(ctx *c, gp_config *cfg, const cJSON *root)
{
    static const char *const keys[] = {"site",     "state_dir", "plugin_path", "tick",   "timezone",
                                       "on_exit",  "strategy",  "tariff",      "limits", "api",
                                       "adapters", "dispatch",  NULL};
    check_keys(root, "", keys, NULL, c->d);

    cfg->site = get_string(c, root, "", "site", "gridpilot", 0);
    char *sd = get_string(c, root, "", "state_dir", "var", 0);
    cfg->state_dir = resolve(c, sd);
    free(sd);

    const cJSON *pp = get(root, "plugin_path");
    if (pp && !cJSON_IsArray(pp)) {
        gp_diag_add(c->d, "plugin_path", "must be an array of folder paths");
    } else if (pp) {
        int n = cJSON_GetArraySize(pp), i = 0;
        cfg->plugin_path = gp_xcalloc((size_t)n + 1, sizeof(char *));
        for (const cJSON *e = pp->child; e; e = e->next, i++) {
            if (!cJSON_IsString(e) || !*e->valuestring) {
                gp_diag_add(c->d, "", "plugin_path[%d]: must be a folder path", i);
                continue;
            }
            cfg->plugin_path[cfg->n_plugin_path++] = resolve(c, e->valuestring);
        }
    }

    cfg->tick_ms = get_duration(c, root, "", "tick", 60000, 100);
    cfg->timezone = get_string(c, root, "", "timezone", "UTC", 0);
    if (cfg->timezone && !valid_timezone(cfg->timezone))
        gp_diag_add(c->d, "timezone", "unknown time zone '%s' (use e.g. Europe/London or UTC)",
                    cfg->timezone);

    char *oe = get_string(c, root, "", "on_exit", "release", 0);
    if (oe && strcmp(oe, "release") == 0)
        cfg->on_exit = GP_ON_EXIT_RELEASE;
    else if (oe && strcmp(oe, "hold") == 0)
        cfg->on_exit = GP_ON_EXIT_HOLD;
    else
        gp_diag_add(c->d, "on_exit", "must be \"release\" or \"hold\"");
    free(oe);

    const cJSON *s = get_object(c, root, "", "strategy");
    if (s) parse_strategy(c, cfg, s);
    const cJSON *t = get_object(c, root, "", "tariff");
    if (t) parse_tariff(c, cfg, t);

    cfg->site_import_w = cfg->site_export_w = INFINITY;
    const cJSON *l = get_object(c, root, "", "limits");
    if (l) {
        static const char *const lk[] = {"site_import_w", "site_export_w", NULL};
        check_keys(l, "limits", lk, NULL, c->d);
        cfg->site_import_w = get_number(c, l, "limits", "site_import_w", INFINITY, 0, 1e12);
        cfg->site_export_w = get_number(c, l, "limits", "site_export_w", INFINITY, 0, 1e12);
    }

    cfg->max_attempts = 3;
    cfg->command_timeout_ms = 120000;
    cfg->release_timeout_ms = 30000;
    cfg->max_task_age_ms = 48LL * 3600 * 1000;
    const cJSON *dp = get_object(c, root, "", "dispatch");
    if (dp) {
        static const char *const dk[] = {"max_attempts", "command_timeout", "release_timeout",
                                         "max_task_age", NULL};
        check_keys(dp, "dispatch", dk, NULL, c->d);
        cfg->max_attempts = (int)get_number(c, dp, "dispatch", "max_attempts", 3, 1, 20);
        cfg->command_timeout_ms = get_duration(c, dp, "dispatch", "command_timeout", 120000, 1000);
        cfg->release_timeout_ms = get_duration(c, dp, "dispatch", "release_timeout", 30000, 100);
        cfg->max_task_age_ms =
            get_duration(c, dp, "dispatch", "max_task_age", 48LL * 3600 * 1000, 60000);
    }

    const cJSON *a = get_object(c, root, "", "api");
    if (a) parse_api(c, cfg, a);

    const cJSON *ads = get(root, "adapters");
    if (!ads) {
        gp_diag_add(c->d, "adapters", "missing (name at least one adapter)");
    } else if (!cJSON_IsArray(ads)) {
        gp_diag_add(c->d, "adapters", "must be an array");
    } else {
        int n = cJSON_GetArraySize(ads), i = 0;
        if (n == 0) gp_diag_add(c->d, "adapters", "is empty (name at least one adapter)");
        cfg->adapters = gp_xcalloc((size_t)n + 1, sizeof(gp_adapter_cfg));
        cfg->n_adapters = (size_t)n;
        for (const cJSON *e = ads->child; e; e = e->next, i++)
            parse_adapter(c, cfg, e, i);
    }
}

gp_config *gp_config_load(const char *path, int partial, gp_diag *d)
{
    size_t before = d->n, len = 0;
    if (gp_path_is_dir(path)) {
        gp_diag_add(d, "", "is a folder, not a configuration file");
        return NULL;
    }
    char *text = gp_read_file(path, &len);
    if (!text) {
        gp_diag_add(d, "", "cannot read: %s", gp_read_file_why(errno));
        return NULL;
    }
    char err[256];
    gp_json *doc = gp_json_parse(text, len, err, sizeof err);
    free(text);
    if (!doc) {
        gp_diag_add(d, "", "%s", err);
        return NULL;
    }
    cJSON *root = (cJSON *)doc;
    if (!cJSON_IsObject(root)) {
        gp_diag_add(d, "", "the document must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    gp_config *cfg = gp_xcalloc(1, sizeof *cfg);
    cfg->doc = root;
    cfg->path = gp_xstrdup(path);
    cfg->dir = gp_path_dirname_abs(path);
    cfg->tariff_import = cfg->tariff_export = NAN;
    ctx c = {d, cfg->dir};
    parse(&c, cfg, root);
    if (d->n != before && !partial) {
        gp_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void gp_config_free(gp_config *c)
{
    if (!c) return;
    free(c->path);
    free(c->dir);
    free(c->site);
    free(c->state_dir);
    for (size_t i = 0; i < c->n_plugin_path; i++)
        free(c->plugin_path[i]);
    free(c->plugin_path);
    free(c->timezone);
    free(c->strategy_file);
    free(c->strategy_params);
    gp_tariff_free(c->tariff);
    free(c->api_listen);
    free(c->api_token);
    for (size_t i = 0; i < c->n_adapters; i++) {
        free(c->adapters[i].id);
        free(c->adapters[i].plugin);
        free(c->adapters[i].ca_file);
    }
    free(c->adapters);
    cJSON_Delete(c->doc);
    free(c);
}

gp_config *gp_config_load_reported(const char *path)
{
    gp_diag d = {0};
    gp_config *cfg = gp_config_load(path, 0, &d);
    if (!cfg) gp_diag_print(&d, path);
    gp_diag_clear(&d);
    return cfg;
}
