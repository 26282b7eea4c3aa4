/* Secrets given as <key>, <key>_env or <key>_file. Resolved values are registered with the
 * logger so they are masked wherever they might appear. */
#ifndef GP_SECRET_H
#define GP_SECRET_H

#include "diag.h"

struct cJSON;

/* Resolve obj.key / obj.key_env / obj.key_file. base_dir resolves a relative _file path.
 * Returns a malloc'd value (caller frees), or NULL: absent (reported when required) or
 * invalid (always reported). path is the JSON path of obj ("api", "adapters[0].config"). */
char *gp_secret_resolve(const struct cJSON *obj, const char *key, const char *base_dir,
                        const char *path, int required, gp_diag *d);

/* True if `name` is `key`, `key_env` or `key_file`. */
int gp_secret_key_matches(const char *name, const char *key);

/* The rule of gp_host.config_check_keys: is `name` in the NULL-terminated `allowed` list,
 * where an entry ending in '*' ("password*") is a secret that may also come as _env/_file? */
int gp_secret_key_allowed(const char *name, const char *const *allowed);

#endif
