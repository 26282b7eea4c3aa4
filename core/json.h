/* The JSON services of the host table (gp_json is a cJSON node), shared by the core. */
#ifndef GP_JSON_H
#define GP_JSON_H

#include <stddef.h>

#include "gridpilot/plugin.h"

struct cJSON;

static inline const struct cJSON *gp_json_cj(const gp_json *j)
{
    return (const struct cJSON *)j;
}
static inline const gp_json *gp_cj_json(const struct cJSON *c)
{
    return (const gp_json *)c;
}

/* Parse; on error NULL and "line L, column C: <what>" in err. Caller frees (gp_json_free). */
gp_json *gp_json_parse(const char *text, size_t len, char *err, size_t errlen);
void gp_json_free(gp_json *j);
int gp_json_type(const gp_json *j);
const gp_json *gp_json_get(const gp_json *obj, const char *key);
size_t gp_json_len(const gp_json *j);
const gp_json *gp_json_at(const gp_json *j, size_t i);
const char *gp_json_key(const gp_json *member);
double gp_json_num(const gp_json *j);
const char *gp_json_str(const gp_json *j);
int gp_json_bool(const gp_json *j, int dflt);

/* Does an earlier member of obj have the same name as `member`? (JSON allows repeated keys;
 * a configuration must not: the later one would be silently ignored.) */
int gp_json_repeated_key(const gp_json *obj, const gp_json *member);

/* Read a whole regular file of at most GP_MAX_FILE bytes (for config and data files; not for
 * the loop). Returns a malloc'd NUL-terminated buffer or NULL with errno set: EISDIR,
 * EINVAL (not a regular file: a device or a FIFO), EFBIG (too large), or open's. */
#define GP_MAX_FILE (256u * 1024 * 1024)
/* Why gp_read_file failed, for a message: strerror, with its own errnos in words (static). */
const char *gp_read_file_why(int err);
char *gp_read_file(const char *path, size_t *len);

#endif
