/* Secret resolution. */
#include "secret.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "path.h"
#include "str.h"

int gp_secret_key_matches(const char *name, const char *key)
{
    size_t kl = strlen(key);
    if (strncmp(name, key, kl) != 0) return 0;
    return name[kl] == '\0' || strcmp(name + kl, "_env") == 0 || strcmp(name + kl, "_file") == 0;
}

int gp_secret_key_allowed(const char *name, const char *const *allowed)
{
    for (const char *const *a = allowed; a && *a; a++) {
        size_t l = strlen(*a);
        if (l && (*a)[l - 1] == '*') {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(l - 1), *a);
            if (gp_secret_key_matches(name, key)) return 1;
        } else if (strcmp(name, *a) == 0) {
            return 1;
        }
    }
    return 0;
}

static const cJSON *member(const cJSON *obj, const char *key, const char *suffix)
{
    char name[256];
    snprintf(name, sizeof name, "%s%s", key, suffix);
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

char *gp_secret_resolve(const cJSON *obj, const char *key, const char *base_dir, const char *path,
                        int required, gp_diag *d)
{
    const cJSON *plain = member(obj, key, "");
    const cJSON *env = member(obj, key, "_env");
    const cJSON *file = member(obj, key, "_file");
    const char *pfx = path && *path ? "." : "";
    int given = !!plain + !!env + !!file;
    if (given > 1) {
        gp_diag_add(d, path, "give only one of %s, %s_env and %s_file", key, key, key);
        return NULL;
    }
    char *value = NULL;
    if (plain) {
        if (!cJSON_IsString(plain) || !*plain->valuestring)
            gp_diag_add(d, "", "%s%s%s: must be a non-empty string", path, pfx, key);
        else
            value = gp_xstrdup(plain->valuestring);
    } else if (env) {
        if (!cJSON_IsString(env) || !*env->valuestring) {
            gp_diag_add(d, "", "%s%s%s_env: must name an environment variable", path, pfx, key);
        } else {
            const char *v = getenv(env->valuestring);
            if (!v || !*v)
                gp_diag_add(d, "", "%s%s%s_env: environment variable %s is not set", path, pfx, key,
                            env->valuestring);
            else
                value = gp_xstrdup(v);
        }
    } else if (file) {
        if (!cJSON_IsString(file) || !*file->valuestring) {
            gp_diag_add(d, "", "%s%s%s_file: must be a file path", path, pfx, key);
        } else {
            char *abs = gp_path_resolve(base_dir, file->valuestring);
            size_t len = 0;
            char *text = gp_read_file(abs, &len);
            if (!text) {
                gp_diag_add(d, "", "%s%s%s_file: cannot read %s: %s", path, pfx, key, abs,
                            gp_read_file_why(errno));
            } else {
                /* Files written by editors or `echo` end with a newline that is not part of
                 * the secret. */
                while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                    text[--len] = 0;
                if (!len)
                    gp_diag_add(d, "", "%s%s%s_file: %s is empty", path, pfx, key, abs);
                else
                    value = gp_xstrdup(text);
                free(text);
            }
            free(abs);
        }
    } else if (required) {
        gp_diag_add(d, "", "%s%s%s: missing (give %s, %s_env or %s_file)", path, pfx, key, key, key,
                    key);
    }
    if (value) gp_log_add_secret(value);
    return value;
}
