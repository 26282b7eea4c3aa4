/* Fault rules: parsed from JSON, matched by path suffix, consumed one answer at a time. */
#include "emu_faults.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[EMU_F_NKINDS] = {
    "latency",   "http_status", "failcode", "reset",
    "malformed", "truncated",   "stall",    "token_expired",
};

/* A stall with no `ms` lasts this long: longer than any sane client timeout. */
#define DEFAULT_STALL_MS 120000

const char *emu_fault_kind_name(emu_fault_kind k)
{
    return k < EMU_F_NKINDS ? kind_names[k] : "?";
}

/* An optional integer member in [lo, hi]; returns -1 (with err) when present and bad. */
static int int_member(const cJSON *o, const char *key, double lo, double hi, int64_t *out,
                      char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi) {
        snprintf(err, errlen, "fault: \"%s\" must be an integer from %.0f to %.0f", key, lo, hi);
        return -1;
    }
    *out = (int64_t)d;
    return 1;
}

uint64_t emu_faults_add(emu_faults *f, const cJSON *rule, char *err, size_t errlen)
{
    if (!cJSON_IsObject(rule)) {
        snprintf(err, errlen, "fault: the body must be a JSON object");
        return 0;
    }
    static const char *const keys[] = {"path", "kind", "count", "ms", "status", "failcode", NULL};
    for (const cJSON *m = rule->child; m; m = m->next) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], m->string) != 0)
            k++;
        if (!keys[k]) {
            snprintf(err, errlen, "fault: unknown key \"%.60s\"", m->string);
            return 0;
        }
    }
    emu_fault r = {.count = 1, .ms = 0, .status = 503};
    const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rule, "path"));
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rule, "kind"));
    if (!path || !*path || strlen(path) >= sizeof r.path) {
        snprintf(err, errlen, "fault: \"path\" must be a path suffix (or \"*\"), 1-127 chars");
        return 0;
    }
    snprintf(r.path, sizeof r.path, "%s", path);
    int k = 0;
    while (k < EMU_F_NKINDS && (!kind || strcmp(kind, kind_names[k]) != 0))
        k++;
    if (k == EMU_F_NKINDS) {
        snprintf(err, errlen,
                 "fault: \"kind\" must be one of latency, http_status, failcode, reset, "
                 "malformed, truncated, stall, token_expired");
        return 0;
    }
    r.kind = (emu_fault_kind)k;
    int64_t status = 503, code = 0;
    int has_ms, has_code;
    if (int_member(rule, "count", 0, 1e9, &r.count, err, errlen) < 0 ||
        (has_ms = int_member(rule, "ms", 0, 3600000, &r.ms, err, errlen)) < 0 ||
        int_member(rule, "status", 100, 599, &status, err, errlen) < 0 ||
        (has_code = int_member(rule, "failcode", -1e9, 1e9, &code, err, errlen)) < 0)
        return 0;
    if (r.kind == EMU_F_LATENCY && !has_ms) {
        snprintf(err, errlen, "fault: latency needs \"ms\"");
        return 0;
    }
    if (r.kind == EMU_F_FAILCODE && !has_code) {
        snprintf(err, errlen, "fault: failcode needs \"failcode\"");
        return 0;
    }
    if (r.kind == EMU_F_STALL && !has_ms) r.ms = DEFAULT_STALL_MS;
    r.status = (int)status;
    r.code = (int)code;
    r.id = ++f->next_id;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->rules = gp_xrealloc(f->rules, f->cap * sizeof(emu_fault));
    }
    f->rules[f->n++] = r;
    return r.id;
}

static int matches(const emu_fault *r, const char *path)
{
    if (strcmp(r->path, "*") == 0) return 1;
    size_t lp = strlen(path), lr = strlen(r->path);
    return lp >= lr && strcmp(path + lp - lr, r->path) == 0;
}

int emu_faults_take(emu_faults *f, const char *path, emu_fault *out)
{
    for (size_t i = 0; i < f->n; i++) {
        emu_fault *r = &f->rules[i];
        if (!matches(r, path)) continue;
        r->hits++;
        *out = *r;
        if (r->count > 0 && --r->count == 0) {
            memmove(r, r + 1, (f->n - i - 1) * sizeof(emu_fault));
            f->n--;
        }
        return 1;
    }
    return 0;
}

size_t emu_faults_clear(emu_faults *f)
{
    size_t n = f->n;
    f->n = 0;
    return n;
}

void emu_faults_json(const emu_faults *f, gp_str *out)
{
    gp_str_puts(out, "[");
    for (size_t i = 0; i < f->n; i++) {
        const emu_fault *r = &f->rules[i];
        gp_str_printf(out, "%s{\"id\":%llu,\"path\":", i ? "," : "", (unsigned long long)r->id);
        gp_str_json(out, r->path);
        gp_str_printf(out,
                      ",\"kind\":\"%s\",\"count\":%lld,\"ms\":%lld,\"status\":%d,"
                      "\"failcode\":%d,\"hits\":%llu}",
                      kind_names[r->kind], (long long)r->count, (long long)r->ms, r->status,
                      r->code, (unsigned long long)r->hits);
    }
    gp_str_puts(out, "]");
}

void emu_faults_free(emu_faults *f)
{
    free(f->rules);
    memset(f, 0, sizeof(*f));
}
