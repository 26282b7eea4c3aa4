/* JSON services over cJSON. */
#include "json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

/* cJSON arrays are linked lists, so element i costs i steps. Plugins walk arrays in order
 * (for i in 0..len), which would be quadratic: remember where the last lookup ended and
 * continue from there. One thread, one cursor. */
static struct {
    const cJSON *list, *node;
    size_t index;
} cursor;

/* Open brackets before `at`, outside strings (to tell "too deep" from "malformed"). */
static int depth_at(const char *text, size_t at)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < at; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == '[' || ch == '{') {
            depth++;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return depth;
}

/* Whether byte AT lies inside a string literal. Errors never quote the document's text: a
 * config holds secrets inline, and a fragment of one must not reach a log. */
static int in_string_at(const char *text, size_t at)
{
    int in = 0;
    for (size_t i = 0; i < at; i++) {
        if (in && text[i] == '\\')
            i++;
        else if (text[i] == '"')
            in = !in;
    }
    return in;
}

gp_json *gp_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *c = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (c) return (gp_json *)c;
    /* cJSON only tells where it stopped; turn that into a line and column. */
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    if (at > len) at = len;
    int line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (err) {
        if (len == 0)
            snprintf(err, errlen, "empty document");
        else if (at + 1 >= len) /* cJSON stops on the last character it read */
            snprintf(err, errlen, "line %d, column %d: unexpected end of JSON", line, col);
        else if (depth_at(text, at) >= CJSON_NESTING_LIMIT)
            snprintf(err, errlen, "line %d, column %d: nested more than %d levels deep", line, col,
                     CJSON_NESTING_LIMIT);
        else if (in_string_at(text, at))
            snprintf(err, errlen, "line %d, column %d: unterminated string or bad escape", line,
                     col);
        else if (text[at] && strchr("{}[]:,\"", text[at]))
            snprintf(err, errlen, "line %d, column %d: unexpected '%c'", line, col, text[at]);
        else
            snprintf(err, errlen, "line %d, column %d: unexpected text (not a JSON value)", line,
                     col);
    }
    return NULL;
}

void gp_json_free(gp_json *j)
{
    /* A freed node's address may come back in another document. */
    cursor.list = cursor.node = NULL;
    cJSON_Delete((cJSON *)j);
}

int gp_json_type(const gp_json *j)
{
    const cJSON *c = gp_json_cj(j);
    if (!c) return GP_JSON_MISSING;
    if (cJSON_IsNull(c)) return GP_JSON_NULL;
    if (cJSON_IsBool(c)) return GP_JSON_BOOL;
    if (cJSON_IsNumber(c)) return GP_JSON_NUMBER;
    if (cJSON_IsString(c)) return GP_JSON_STRING;
    if (cJSON_IsArray(c)) return GP_JSON_ARRAY;
    if (cJSON_IsObject(c)) return GP_JSON_OBJECT;
    return GP_JSON_MISSING;
}

const gp_json *gp_json_get(const gp_json *obj, const char *key)
{
    const cJSON *c = gp_json_cj(obj);
    if (!cJSON_IsObject(c) || !key) return NULL;
    return gp_cj_json(cJSON_GetObjectItemCaseSensitive(c, key));
}

size_t gp_json_len(const gp_json *j)
{
    const cJSON *c = gp_json_cj(j);
    if (!cJSON_IsArray(c) && !cJSON_IsObject(c)) return 0;
    return (size_t)cJSON_GetArraySize(c);
}

const gp_json *gp_json_at(const gp_json *j, size_t i)
{
    const cJSON *c = gp_json_cj(j);
    if (!cJSON_IsArray(c) && !cJSON_IsObject(c)) return NULL;
    const cJSON *e = c->child;
    size_t at = 0;
    if (cursor.list == c && cursor.node && cursor.index <= i) {
        e = cursor.node;
        at = cursor.index;
    }
    while (e && at < i) {
        e = e->next;
        at++;
    }
    cursor.list = c;
    cursor.node = e;
    cursor.index = at;
    return gp_cj_json(e);
}

const char *gp_json_key(const gp_json *member)
{
    const cJSON *c = gp_json_cj(member);
    return c ? c->string : NULL;
}

double gp_json_num(const gp_json *j)
{
    const cJSON *c = gp_json_cj(j);
    if (cJSON_IsNumber(c)) return c->valuedouble;
    if (cJSON_IsString(c) && c->valuestring && *c->valuestring) {
        /* Vendors send numbers as strings ("102.0"); accept those, nothing else. */
        char *end = NULL;
        double v = strtod(c->valuestring, &end);
        if (end && *end == '\0' && isfinite(v)) return v;
    }
    return NAN;
}

const char *gp_json_str(const gp_json *j)
{
    const cJSON *c = gp_json_cj(j);
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

int gp_json_bool(const gp_json *j, int dflt)
{
    const cJSON *c = gp_json_cj(j);
    if (cJSON_IsBool(c)) return cJSON_IsTrue(c) ? 1 : 0;
    return dflt;
}

int gp_json_repeated_key(const gp_json *obj, const gp_json *member)
{
    const cJSON *m = gp_json_cj(member);
    if (!m || !m->string) return 0;
    for (const cJSON *e = gp_json_cj(obj)->child; e && e != m; e = e->next)
        if (e->string && strcmp(e->string, m->string) == 0) return 1;
    return 0;
}

char *gp_read_file(const char *path, size_t *len)
{
    /* Regular files only: a device (/dev/zero) never ends, and opening a FIFO blocks. */
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    gp_str s = {0};
    char buf[65536];
    size_t n;
    int big = 0;
    while (!big && (n = fread(buf, 1, sizeof buf, fp)) > 0) {
        gp_str_append(&s, buf, n);
        big = s.len > GP_MAX_FILE;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad || big) {
        gp_str_clear(&s);
        errno = big ? EFBIG : EIO;
        return NULL;
    }
    if (!s.data) gp_str_puts(&s, "");
    if (len) *len = s.len;
    return s.data;
}

const char *gp_read_file_why(int err)
{
    if (err == EINVAL) return "not a regular file (a device, a FIFO or a socket)";
    if (err == EFBIG) return "larger than 256 MiB";
    return strerror(err);
}
