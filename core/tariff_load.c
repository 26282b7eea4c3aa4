/*
 * Tariffs from the configuration: price files and time-of-use periods, checked completely.
 *
 * Files: the format is told by content (a JSON document starts with '{'), not by name.
 * - CSV, header `start,stop,import,export`: one row per slot, in order, each starting where
 *   the previous one stopped. Times are ISO-8601; prices currency/kWh by default; an empty
 *   export is unknown (the default export price where one is given).
 * - Octopus JSON: {"results": [{"valid_from", "valid_to", "value_inc_vat"}, ...]} in any
 *   order (Octopus lists newest first); prices pence/kWh by default; `valid_to: null` (until
 *   further notice) on the newest result. Export prices from `export_results` in the same
 *   document or from tariff.export_file (a document of the same shape). Where Octopus lists
 *   a price per payment method, the direct debit one is used.
 * Every problem names the file and line (CSV) or results index (JSON); at most MAX_PROBLEMS
 * are listed per file.
 */
#include "tariff_load.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "path.h"
#include "str.h"
#include "timeutil.h"
#include "tz.h"

#define MAX_PROBLEMS 20
#define MAX_PRICE    1e6 /* per kWh, in the file's unit: anything larger is a typo */

/* Problems in one file, added to the diagnostics as "<key>: <file> <where>: <what>". */
typedef struct report {
    gp_diag *d;
    const char *key;  /* "tariff.file" */
    const char *file; /* absolute path */
    int shown, more;
} report;

static void problem(report *r, const char *where, const char *fmt, ...) GP_PRINTF(3, 4);

static void problem(report *r, const char *where, const char *fmt, ...)
{
    if (r->shown >= MAX_PROBLEMS) {
        r->more++;
        return;
    }
    r->shown++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp_diag_add(r->d, r->key, "%s%s%s: %s", r->file, where ? " " : "", where ? where : "", msg);
}

/* Returns the number of problems (and lists the ones not shown). */
static int finish(report *r)
{
    if (r->more)
        gp_diag_add(r->d, r->key, "%s: and %d more problem%s", r->file, r->more,
                    r->more == 1 ? "" : "s");
    return r->shown + r->more;
}

/* A price: a plain decimal number (no hex, inf or nan) within +-MAX_PRICE. */
static int parse_price(const char *s, double *out)
{
    if (!*s || strpbrk(s, "xXnNiI")) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || fabs(v) > MAX_PRICE) return -1;
    *out = v;
    return 0;
}

/* A series of prices: contiguous stretches in time order. */
typedef struct point {
    int64_t start, stop; /* stop INT64_MAX: open-ended */
    double v;
} point;

/* ---- CSV --------------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Split a line at commas in place; returns the field count (at most max; more counts max+1). */
static int split(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *c = strchr(p, ',');
        if (c) *c = '\0';
        if (n < max) f[n] = trim(p);
        n++;
        if (!c || n > max) break;
        p = c + 1;
    }
    return n;
}

static const char *excerpt(const char *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s);
    if (strlen(s) >= len && len > 4) memcpy(buf + len - 4, "...", 4);
    return buf;
}

static gp_price_slot *load_csv(report *r, char *text, double scale, double default_export,
                               size_t *n_out)
{
    size_t cap = 16, n = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        cap++;
    gp_price_slot *rows = gp_xmalloc(cap * sizeof *rows);
    int header = 0, line_no = 0, prev_line = 0, broken = 0;
    int64_t prev_stop_ms = 0;
    char prev_stop[64] = "", where[32], ex[64];
    char *line = text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        char *next = nl ? nl + 1 : NULL;
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = '\0';
        snprintf(where, sizeof where, "line %d", line_no);
        char *f[5];
        if (strspn(line, " \t") == ll) { /* blank */
            line = next;
            continue;
        }
        if (!header) {
            char copy[64];
            excerpt(line, copy, sizeof copy);
            int nf = split(line, f, 4);
            if (nf != 4 || strcasecmp(f[0], "start") || strcasecmp(f[1], "stop") ||
                strcasecmp(f[2], "import") || strcasecmp(f[3], "export")) {
                problem(r, where, "expected the header start,stop,import,export, found '%s'", copy);
                break;
            }
            header = 1;
            line = next;
            continue;
        }
        int nf = split(line, f, 4);
        if (nf < 3 || nf > 4) {
            problem(r, where, "expected 4 fields (start,stop,import,export), found %d", nf);
            prev_line = 0;
            broken = 1;
            line = next;
            continue;
        }
        const char *exp_text = nf == 4 ? f[3] : "";
        int64_t start, stop;
        double import, export_ = default_export;
        char err[200];
        int bad = 0;
        if (gp_parse_time_ms(f[0], &start, err, sizeof err) != 0) {
            problem(r, where, "start: %s", err);
            bad = 1;
        }
        if (gp_parse_time_ms(f[1], &stop, err, sizeof err) != 0) {
            problem(r, where, "stop: %s", err);
            bad = 1;
        }
        if (!*f[2]) {
            problem(r, where, "import: missing (a price per kWh)");
            bad = 1;
        } else if (parse_price(f[2], &import) != 0) {
            problem(r, where, "import: '%s' is not a price (a number per kWh)",
                    excerpt(f[2], ex, sizeof ex));
            bad = 1;
        }
        if (*exp_text && parse_price(exp_text, &export_) != 0) {
            problem(r, where, "export: '%s' is not a price (a number per kWh, or empty)",
                    excerpt(exp_text, ex, sizeof ex));
            bad = 1;
        } else if (*exp_text) {
            export_ *= scale;
        }
        if (!bad && stop < start) {
            problem(r, where, "stop %s is before start %s", f[1], f[0]);
            bad = 1;
        } else if (!bad && stop == start) {
            problem(r, where, "stop %s is the same as start (a slot needs a length)", f[1]);
            bad = 1;
        }
        if (bad) {
            prev_line = 0; /* nothing to compare the next row with */
            broken = 1;
            line = next;
            continue;
        }
        if (prev_line && start != prev_stop_ms) {
            problem(r, where,
                    start > prev_stop_ms
                        ? "start %s leaves a gap after line %d, which stops at %s (each row "
                          "must start where the previous one stops)"
                        : "start %s overlaps line %d, which stops at %s (each row must start "
                          "where the previous one stops)",
                    f[0], prev_line, prev_stop);
            broken = 1;
        }
        /* A row out of sequence is still the one the next row must follow. */
        if (!broken) rows[n++] = (gp_price_slot){start, stop, import * scale, export_};
        prev_line = line_no;
        prev_stop_ms = stop;
        snprintf(prev_stop, sizeof prev_stop, "%s", f[1]);
        line = next;
    }
    if (!header && r->shown == 0)
        problem(r, NULL,
                "the file is empty (expected the header start,stop,import,export and "
                "one row per price slot)");
    else if (header && n == 0 && r->shown == 0)
        problem(r, NULL, "has no price rows after the header");
    *n_out = n;
    return rows;
}

/* ---- Octopus JSON ------------------------------------------------------------------------ */

typedef struct result {
    point p;
    int index;             /* in the document */
    const char *from, *to; /* as written, for messages */
} result;

static int by_start(const void *a, const void *b)
{
    const result *x = a, *y = b;
    if (x->p.start != y->p.start) return x->p.start < y->p.start ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static const char *payment_method(const cJSON *e)
{
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(e, "payment_method");
    return cJSON_IsString(pm) ? pm->valuestring : NULL;
}

/* The results array `name` of doc as a contiguous series in time order. NULL when absent
 * (*present = 0) or with problems. */
static point *load_results(report *r, const cJSON *doc, const char *name, double scale,
                           int *present, size_t *n_out)
{
    *n_out = 0;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, name);
    *present = arr != NULL;
    if (!arr) return NULL;
    int before = r->shown + r->more;
    if (!cJSON_IsArray(arr)) {
        problem(r, NULL, "%s: must be an array of {valid_from, valid_to, value_inc_vat}", name);
        return NULL;
    }
    size_t len = (size_t)cJSON_GetArraySize(arr);
    if (len == 0) {
        problem(r, NULL, "%s: is empty", name);
        return NULL;
    }
    /* Octopus may list each slot once per payment method: keep the direct debit price. */
    int has_dd = 0;
    for (const cJSON *e = arr->child; e && !has_dd; e = e->next)
        has_dd = payment_method(e) && strcmp(payment_method(e), "DIRECT_DEBIT") == 0;
    result *res = gp_xmalloc(len * sizeof *res);
    size_t n = 0;
    int i = 0;
    char where[64], err[200];
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        snprintf(where, sizeof where, "%s[%d]", name, i);
        if (!cJSON_IsObject(e)) {
            problem(r, where, "must be an object {valid_from, valid_to, value_inc_vat}");
            continue;
        }
        if (has_dd && payment_method(e) && strcmp(payment_method(e), "DIRECT_DEBIT") != 0) continue;
        const cJSON *vf = cJSON_GetObjectItemCaseSensitive(e, "valid_from");
        const cJSON *vt = cJSON_GetObjectItemCaseSensitive(e, "valid_to");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value_inc_vat");
        result x = {{0, INT64_MAX, 0}, i, NULL, NULL};
        int bad = 0;
        if (!cJSON_IsString(vf)) {
            problem(r, where, "valid_from: missing or not a time");
            bad = 1;
        } else if (gp_parse_time_ms(vf->valuestring, &x.p.start, err, sizeof err) != 0) {
            problem(r, where, "valid_from: %s", err);
            bad = 1;
        } else {
            x.from = vf->valuestring;
        }
        if (cJSON_IsString(vt)) {
            if (gp_parse_time_ms(vt->valuestring, &x.p.stop, err, sizeof err) != 0) {
                problem(r, where, "valid_to: %s", err);
                bad = 1;
            }
            x.to = vt->valuestring;
        } else if (!cJSON_IsNull(vt)) {
            problem(r, where, "valid_to: missing (a time, or null for until further notice)");
            bad = 1;
        }
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > MAX_PRICE) {
            problem(r, where, "value_inc_vat: %s",
                    v ? "not a price (a number per kWh)" : "missing (a price per kWh)");
            bad = 1;
        } else {
            x.p.v = v->valuedouble * scale;
        }
        if (!bad && x.p.stop < x.p.start) {
            problem(r, where, "valid_to %s is before valid_from %s", x.to, x.from);
            bad = 1;
        } else if (!bad && x.p.stop == x.p.start) {
            problem(r, where, "valid_to %s is the same as valid_from (a slot needs a length)",
                    x.to);
            bad = 1;
        }
        if (!bad) res[n++] = x;
    }
    qsort(res, n, sizeof *res, by_start);
    for (size_t k = 1; k < n; k++) {
        const result *a = &res[k - 1], *b = &res[k];
        if (b->p.start == a->p.stop) continue;
        snprintf(where, sizeof where, "%s[%d]", name, b->index);
        if (b->p.start > a->p.stop)
            problem(r, where, "valid_from %s leaves a gap after %s[%d], which is valid to %s",
                    b->from, name, a->index, a->to);
        else
            problem(r, where, "valid_from %s overlaps %s[%d] (valid from %s to %s)", b->from, name,
                    a->index, a->from, a->to ? a->to : "null");
    }
    point *out = NULL;
    if (r->shown + r->more == before) {
        out = gp_xmalloc((n ? n : 1) * sizeof *out);
        for (size_t k = 0; k < n; k++)
            out[k] = res[k].p;
        *n_out = n;
    }
    free(res);
    return out;
}

/* Import and export series into slots: a slot wherever either has a price, cut wherever
 * either changes; the default price for the side that has none there. */
static gp_price_slot *merge(const point *im, size_t ni, const point *ex, size_t ne,
                            double default_import, double default_export, size_t *n_out)
{
    gp_price_slot *out = gp_xmalloc((2 * (ni + ne) + 1) * sizeof *out);
    size_t len = 0, i = 0, j = 0;
    int64_t at = INT64_MAX, end = INT64_MIN;
    if (ni) at = im[0].start, end = im[ni - 1].stop;
    if (ne && ex[0].start < at) at = ex[0].start;
    if (ne && ex[ne - 1].stop > end) end = ex[ne - 1].stop;
    while (at < end) {
        while (i < ni && im[i].stop <= at)
            i++;
        while (j < ne && ex[j].stop <= at)
            j++;
        int in_i = i < ni && im[i].start <= at, in_j = j < ne && ex[j].start <= at;
        int64_t next = end;
        if (i < ni && (in_i ? im[i].stop : im[i].start) < next)
            next = in_i ? im[i].stop : im[i].start;
        if (j < ne && (in_j ? ex[j].stop : ex[j].start) < next)
            next = in_j ? ex[j].stop : ex[j].start;
        if (in_i || in_j)
            out[len++] = (gp_price_slot){at, next, in_i ? im[i].v : default_import,
                                         in_j ? ex[j].v : default_export};
        at = next;
    }
    *n_out = len;
    return out;
}

/* ---- files ------------------------------------------------------------------------------- */

/* The whole file, or NULL (reported). *is_json: the first character that is not white space
 * (after a UTF-8 byte order mark) is '{'. */
static char *read_data(report *r, size_t *len, int *is_json)
{
    int dir = gp_path_is_dir(r->file);
    char *text = dir ? NULL : gp_read_file(r->file, len);
    if (!text) {
        problem(r, NULL, "cannot read: %s", dir ? "is a folder" : gp_read_file_why(errno));
        return NULL;
    }
    if (strlen(text) != *len) {
        problem(r, NULL, "contains a NUL byte: not a CSV or JSON text file");
        free(text);
        return NULL;
    }
    if (strncmp(text, "\xEF\xBB\xBF", 3) == 0) { /* on line 1: line numbers stay */
        memmove(text, text + 3, *len - 2);
        *len -= 3;
    }
    const char *p = text + strspn(text, " \t\r\n");
    *is_json = *p == '{';
    return text;
}

static cJSON *parse_json(report *r, const char *text, size_t len)
{
    char err[256];
    gp_json *doc = gp_json_parse(text, len, err, sizeof err);
    if (!doc) problem(r, NULL, "%s", err);
    return (cJSON *)doc;
}

static int unit_scale(const gp_tariff_source *src, gp_diag *d, double *scale)
{
    *scale = 0;
    if (!src->unit) return 0;
    if (strcmp(src->unit, "currency") == 0)
        *scale = 1;
    else if (strcmp(src->unit, "pence") == 0 || strcmp(src->unit, "cents") == 0)
        *scale = 0.01;
    else {
        gp_diag_add(d, "tariff.unit", "must be \"currency\", \"pence\" or \"cents\"");
        return -1;
    }
    if (!src->file) {
        gp_diag_add(d, "tariff.unit", "only applies to the prices of tariff.file");
        return -1;
    }
    return 0;
}

/* Octopus publishes pence, and that is the default; a file whose prices are all under 1 p/kWh
 * is almost surely in currency already, read 100 times too small. */
static void warn_if_currency(const char *file, const point *im, size_t n)
{
    double most = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(im[i].v) > most) most = fabs(im[i].v);
    if (n >= 4 && most < 0.01)
        gp_warn("tariff",
                "%s: every import price is under 1 (read as pence per kWh, the Octopus unit): if "
                "the file is in currency per kWh, set tariff.unit to \"currency\"",
                file);
}

static gp_tariff *load_files(const gp_tariff_source *src, double unit, gp_diag *d)
{
    report r = {d, "tariff.file", src->file, 0, 0};
    report re = {d, "tariff.export_file", src->export_file, 0, 0};
    size_t len = 0, n = 0;
    int is_json = 0;
    char *text = read_data(&r, &len, &is_json);
    if (!text) return NULL;
    gp_price_slot *slots = NULL;
    if (!is_json) {
        if (src->export_file)
            gp_diag_add(d, "tariff.export_file",
                        "goes with an Octopus JSON tariff.file (a CSV has its own export "
                        "column)");
        slots = load_csv(&r, text, unit ? unit : 1, src->default_export, &n);
        free(text);
        if (finish(&r) || src->export_file) {
            free(slots);
            return NULL;
        }
        return gp_tariff_from_slots(slots, n, src->default_import, src->default_export);
    }

    double scale = unit ? unit : 0.01;
    cJSON *doc = parse_json(&r, text, len);
    free(text);
    point *im = NULL, *ex = NULL;
    size_t ni = 0, ne = 0;
    int present = 0, has_export = 0;
    if (doc && !cJSON_IsObject(doc)) {
        problem(&r, NULL, "must be a JSON object {\"results\": [...]} (Octopus) or a CSV file");
    } else if (doc) {
        im = load_results(&r, doc, "results", scale, &present, &ni);
        if (!present)
            problem(&r, NULL,
                    "has no \"results\" array (expected Octopus JSON: {\"results\": "
                    "[{\"valid_from\", \"valid_to\", \"value_inc_vat\"}, ...]})");
        ex = load_results(&r, doc, "export_results", scale, &has_export, &ne);
    }
    cJSON_Delete(doc);
    if (src->export_file && has_export) {
        gp_diag_add(d, "tariff.export_file", "%s already has export_results: give only one",
                    src->file);
        re.shown++;
    } else if (src->export_file) {
        text = read_data(&re, &len, &is_json);
        if (text && !is_json) problem(&re, NULL, "must be Octopus JSON ({\"results\": [...]})");
        cJSON *edoc = text && is_json ? parse_json(&re, text, len) : NULL;
        free(text);
        if (edoc && !cJSON_IsObject(edoc)) {
            problem(&re, NULL, "must be Octopus JSON ({\"results\": [...]})");
        } else if (edoc) {
            ex = load_results(&re, edoc, "results", scale, &present, &ne);
            if (!present) problem(&re, NULL, "has no \"results\" array (expected Octopus JSON)");
        }
        cJSON_Delete(edoc);
    }
    int bad = finish(&r) + finish(&re);
    if (!bad && !unit) warn_if_currency(src->file, im, ni);
    if (!bad) slots = merge(im, ni, ex, ne, src->default_import, src->default_export, &n);
    free(im);
    free(ex);
    return bad ? NULL : gp_tariff_from_slots(slots, n, src->default_import, src->default_export);
}

/* ---- periods ----------------------------------------------------------------------------- */

/* "HH:MM" (or "H:MM") into minutes; 24:00 only when allow_24. */
static int parse_hhmm(const char *s, int allow_24, int *out)
{
    int h = 0, m = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 3)
        h = h * 10 + (*s++ - '0'), nd++;
    if (nd < 1 || nd > 2 || *s++ != ':') return -1;
    if (!(s[0] >= '0' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9') || s[2]) return -1;
    m = (s[0] - '0') * 10 + (s[1] - '0');
    if (h > 24 || (h == 24 && (m || !allow_24))) return -1;
    *out = h * 60 + m;
    return 0;
}

static double period_price(const cJSON *e, const char *path, const char *key, double dflt,
                           int required, gp_diag *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    if (!v) {
        if (required) gp_diag_add(d, "", "%s.%s: missing (a price per kWh)", path, key);
        return dflt;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > MAX_PRICE) {
        gp_diag_add(d, "", "%s.%s: must be a number (a price per kWh)", path, key);
        return dflt;
    }
    return v->valuedouble;
}

static gp_tariff *load_periods(const gp_tariff_source *src, gp_diag *d)
{
    const cJSON *arr = src->periods;
    if (!cJSON_IsArray(arr)) {
        gp_diag_add(d, "tariff.periods",
                    "must be an array of {\"from\": \"HH:MM\", \"to\": \"HH:MM\", \"import\", "
                    "\"export\"}");
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr), before = d->n;
    if (n == 0) {
        gp_diag_add(d, "tariff.periods", "is empty (without periods, give only tariff.default)");
        return NULL;
    }
    gp_tariff_period *p = gp_xcalloc(n, sizeof *p);
    int *ok = gp_xcalloc(n, sizeof *ok);
    const char **text = gp_xcalloc(2 * n, sizeof *text);
    static const char *const keys[] = {"from", "to", "import", "export", NULL};
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        char path[64];
        snprintf(path, sizeof path, "tariff.periods[%d]", i);
        if (!cJSON_IsObject(e)) {
            gp_diag_add(d, path, "must be an object {\"from\", \"to\", \"import\", \"export\"}");
            continue;
        }
        for (const cJSON *m = e->child; m; m = m->next) {
            int known = 0;
            for (const char *const *k = keys; *k && !known; k++)
                known = strcmp(m->string, *k) == 0;
            if (gp_json_repeated_key(gp_cj_json(e), gp_cj_json(m)))
                gp_diag_add(d, "", "%s.%s: given twice (only one is used: remove the other)", path,
                            m->string);
            else if (!known)
                gp_diag_add(d, "", "%s.%s: unknown key", path, m->string);
        }
        size_t errs = d->n;
        int mins[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            const char *key = k ? "to" : "from";
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
            if (!v)
                gp_diag_add(d, "", "%s.%s: missing (a local time of day, \"HH:MM\")", path, key);
            else if (!cJSON_IsString(v) || parse_hhmm(v->valuestring, k, &mins[k]) != 0)
                gp_diag_add(d, "", "%s.%s: %s%s%sis not a time of day \"HH:MM\" (00:00 to %s)",
                            path, key, cJSON_IsString(v) ? "'" : "",
                            cJSON_IsString(v) ? v->valuestring : "", cJSON_IsString(v) ? "' " : "",
                            k ? "24:00" : "23:59");
            else
                text[2 * i + k] = v->valuestring;
        }
        if (d->n == errs && mins[0] == mins[1])
            gp_diag_add(d, "",
                        "%s.to: the same as from (a period needs a length; for the whole "
                        "day give only tariff.default)",
                        path);
        p[i].from_min = mins[0];
        p[i].to_min = mins[1];
        p[i].import = period_price(e, path, "import", NAN, 1, d);
        p[i].export_ = period_price(e, path, "export", src->default_export, 0, d);
        ok[i] = d->n == errs;
    }
    /* Overlaps: each minute of the day belongs to at most one period (periods wrap). */
    int owner[1440];
    for (int m = 0; m < 1440; m++)
        owner[m] = -1;
    for (i = 0; i < (int)n; i++) {
        if (!ok[i]) continue;
        int len = (p[i].to_min - p[i].from_min + 1440) % 1440;
        if (len == 0) len = 1440;
        int clash = -1;
        for (int k = 0; k < len; k++) {
            int m = (p[i].from_min + k) % 1440;
            if (owner[m] >= 0 && clash < 0) clash = owner[m];
            if (owner[m] < 0) owner[m] = i;
        }
        if (clash >= 0)
            gp_diag_add(d, "", "tariff.periods[%d]: %s-%s overlaps tariff.periods[%d] (%s-%s)", i,
                        text[2 * i], text[2 * i + 1], clash, text[2 * clash], text[2 * clash + 1]);
    }
    gp_tariff *t = NULL;
    if (d->n == before && src->timezone) {
        char err[256];
        gp_tz *tz = gp_tz_load(src->timezone, err, sizeof err);
        if (!tz)
            gp_diag_add(d, "timezone", "%s", err);
        else
            t = gp_tariff_from_periods(p, n, tz, src->default_import, src->default_export);
    }
    free(p);
    free(ok);
    free(text);
    return t;
}

gp_tariff *gp_tariff_load(const gp_tariff_source *src, gp_diag *d)
{
    double unit = 0;
    int bad_unit = unit_scale(src, d, &unit) != 0;
    if (src->file && src->periods) {
        gp_diag_add(d, "tariff.periods", "give either tariff.file or tariff.periods, not both");
        return NULL;
    }
    if (src->export_file && !src->file) {
        gp_diag_add(d, "tariff.export_file", "needs tariff.file (the import prices)");
        return NULL;
    }
    if (src->periods) return bad_unit ? NULL : load_periods(src, d);
    if (!src->file)
        return bad_unit ? NULL : gp_tariff_fixed(src->default_import, src->default_export);
    gp_tariff *t = load_files(src, unit, d);
    if (bad_unit) {
        gp_tariff_free(t);
        return NULL;
    }
    return t;
}
