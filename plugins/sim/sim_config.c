/* The sim plugin's configuration: strict validation, device templates, the device list,
 * load profiles. Every problem is reported with its path; nothing is half-built. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define H sim_host

#define MAX_COUNT        1000000
#define MAX_PROFILE_SIZE (16u << 20)

/* Validation context: the host handle and the number of problems reported. */
typedef struct cfg {
    gp_hctx *h;
    int errors;
} cfg;

static void cerr(cfg *c, const char *path, const char *fmt, ...) GP_PRINTF(3, 4);
static void cerr(cfg *c, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H->config_error(c->h, path, "%s", msg);
    c->errors++;
}

void *sim_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) abort(); /* like the host: nothing sensible continues without memory */
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) abort();
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sim_xcalloc(n, 1);
    memcpy(d, s, n);
    return d;
}

/* ---- typed getters: absent keys give the default, wrong ones are reported -------------- */

/* A number in [lo, hi] (lo excluded when lo_open). */
static double get_num(cfg *c, const gp_json *obj, const char *prefix, const char *key, double dflt,
                      double lo, int lo_open, double hi, const char *rule)
{
    const gp_json *v = H->json_get(obj, key);
    if (!v) return dflt;
    double x = H->json_type(v) == GP_JSON_NUMBER ? H->json_num(v) : NAN;
    if (!isfinite(x) || x < lo || (lo_open && x == lo) || x > hi) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", prefix, key);
        if (isfinite(x) && x > hi && hi >= 1e9)
            cerr(c, path, "must be a number <= %g", hi);
        else
            cerr(c, path, "must be a number %s", rule);
        return dflt;
    }
    return x;
}

/* An integer in [lo, hi]. */
static int64_t get_int(cfg *c, const gp_json *obj, const char *key, int64_t dflt, double lo,
                       double hi, const char *rule)
{
    const gp_json *v = H->json_get(obj, key);
    if (!v) return dflt;
    double x = H->json_type(v) == GP_JSON_NUMBER ? H->json_num(v) : NAN;
    if (!isfinite(x) || x != floor(x) || x < lo || x > hi) {
        cerr(c, key, "must be an integer%s", rule);
        return dflt;
    }
    return (int64_t)x;
}

static int64_t get_duration(cfg *c, const gp_json *obj, const char *key, const char *dflt,
                            int positive)
{
    const gp_json *v = H->json_get(obj, key);
    const char *text = v ? H->json_str(v) : dflt;
    int64_t ms = 0;
    char why[160] = "";
    if (!text || H->parse_duration_ms(text, &ms, why, sizeof why) != 0 || (positive && ms <= 0)) {
        if (!text || !why[0])
            cerr(c, key, "must be a %sduration like \"500ms\", \"30s\", \"5m\", \"1h\" or \"1d\"",
                 positive ? "non-zero " : "");
        else
            cerr(c, key, "%s", why);
        H->parse_duration_ms(dflt, &ms, why, sizeof why);
    }
    return ms;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!isalnum(ch) && !strchr("_-.:=", ch)) return 0;
    }
    return 1;
}

/* ---- load profiles -------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* "HH:MM" (or "H:MM") into seconds after midnight, or -1. */
static double parse_hhmm(const char *s)
{
    size_t n = strlen(s);
    if (n != 4 && n != 5) return -1;
    const char *m = s + n - 3;
    for (const char *p = s; p < s + n; p++)
        if (p != m && !isdigit((unsigned char)*p)) return -1;
    if (*m != ':') return -1;
    int hh = atoi(s), mm = atoi(m + 1);
    if (hh > 23 || mm > 59) return -1;
    return hh * 3600.0 + mm * 60.0;
}

static char *read_text(const char *path, size_t *len, const char **why)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        *why = strerror(errno);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = sim_xcalloc(cap, 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (n > MAX_PROFILE_SIZE) {
            fclose(fp);
            free(buf);
            *why = "file too large (over 16 MiB)";
            return NULL;
        }
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        *why = "read error";
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Parse one profile file; on a problem report it (file and line) once and return -1. */
static int load_profile(cfg *c, const char *path, const char *file, const char *column,
                        sim_profile *out)
{
    size_t len = 0;
    const char *why = NULL;
    char *text = read_text(file, &len, &why);
    if (!text) {
        cerr(c, path, "%s: cannot read: %s", file, why);
        return -1;
    }
    if (memchr(text, '\0', len)) {
        cerr(c, path, "%s: not a text file", file);
        free(text);
        return -1;
    }
    size_t cap = 0;
    int line = 0, header = 0, rc = 0;
    char *save = NULL;
    /* strtok_r skips empty lines, so count lines by hand from the raw text. */
    char *p = text;
    if (strncmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a UTF-8 BOM, as spreadsheets write */
    while (p && *p && rc == 0) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        char *row = trim(p);
        p = nl ? nl + 1 : NULL;
        if (*row == '\0') continue;
        if (!header) {
            char *a = strtok_r(row, ",", &save), *b = strtok_r(NULL, ",", &save);
            char *extra = strtok_r(NULL, ",", &save);
            if (!a || !b || extra || strcmp(trim(a), "time") != 0 || strcmp(trim(b), column) != 0) {
                cerr(c, path, "%s line %d: the header must be \"time,%s\"", file, line, column);
                rc = -1;
            }
            header = 1;
            continue;
        }
        char *comma = strchr(row, ',');
        if (!comma || strchr(comma + 1, ',')) {
            cerr(c, path, "%s line %d: expected two fields \"HH:MM,%s\"", file, line, column);
            rc = -1;
            break;
        }
        *comma = '\0';
        char *ts = trim(row), *ws = trim(comma + 1), *end = NULL;
        double t = parse_hhmm(ts);
        errno = 0;
        double w = strtod(ws, &end);
        if (t < 0) {
            cerr(c, path, "%s line %d: time \"%s\" is not HH:MM (UTC, 00:00 to 23:59)", file, line,
                 ts);
            rc = -1;
        } else if (!*ws || *end || !isfinite(w) || w < 0) {
            cerr(c, path, "%s line %d: %s \"%s\" is not a number >= 0", file, line, column, ws);
            rc = -1;
        } else if (out->n > 0 && t <= out->t_s[out->n - 1]) {
            cerr(c, path, "%s line %d: time %s is not after the previous row", file, line, ts);
            rc = -1;
        } else {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 64;
                out->t_s = xrealloc(out->t_s, cap * sizeof(double));
                out->w = xrealloc(out->w, cap * sizeof(double));
            }
            out->t_s[out->n] = t;
            out->w[out->n] = w;
            out->n++;
        }
    }
    if (rc == 0 && !header) {
        cerr(c, path, "%s: empty file (want a header \"time,%s\" and rows)", file, column);
        rc = -1;
    } else if (rc == 0 && out->n == 0) {
        cerr(c, path, "%s: no data rows after the header", file);
        rc = -1;
    }
    free(text);
    return rc;
}

/* ---- templates ------------------------------------------------------------------------ */

static const char *const tmpl_keys[] = {
    "id",           "capacity_wh", "max_charge_w", "max_discharge_w", "soc_pct",
    "efficiency",   "soc_min_pct", "soc_max_pct",  "pv_peak_w",       "load_w",
    "load_profile", "pv_profile",  "own_mode",     "pv_season",       NULL,
};

static void parse_tmpl(cfg *c, const gp_json *o, size_t idx, sim_tmpl *t)
{
    char pre[48], path[80];
    snprintf(pre, sizeof pre, "devices[%zu].", idx);
    snprintf(path, sizeof path, "devices[%zu]", idx);
    if (H->json_type(o) != GP_JSON_OBJECT) {
        cerr(c, path, "must be an object");
        return;
    }
    c->errors += H->config_check_keys(c->h, o, path, tmpl_keys);

    const char *id = H->json_str(H->json_get(o, "id"));
    snprintf(path, sizeof path, "%sid", pre);
    if (!H->json_get(o, "id"))
        cerr(c, path, "required: the device's id");
    else if (!id || !valid_id(id))
        cerr(c, path, "must be 1 to 64 letters, digits or any of _-.:=");
    else
        t->id = xstrdup(id);

    t->phys.capacity_wh = get_num(c, o, pre, "capacity_wh", 13500, 0, 0, 1e9, ">= 0");
    t->phys.max_charge_w = get_num(c, o, pre, "max_charge_w", 5000, 0, 0, 1e9, ">= 0");
    t->phys.max_discharge_w = get_num(c, o, pre, "max_discharge_w", 5000, 0, 0, 1e9, ">= 0");
    t->soc_pct = get_num(c, o, pre, "soc_pct", 50, 0, 0, 100, "between 0 and 100");
    t->phys.efficiency = get_num(c, o, pre, "efficiency", 0.95, 0, 1, 1, "in (0, 1]");
    t->soc_min_pct = get_num(c, o, pre, "soc_min_pct", 5, 0, 0, 100, "between 0 and 100");
    t->phys.soc_max_pct = get_num(c, o, pre, "soc_max_pct", 100, 0, 0, 100, "between 0 and 100");
    t->phys.pv_peak_w = get_num(c, o, pre, "pv_peak_w", 4000, 0, 0, 1e9, ">= 0");
    t->phys.load_w = get_num(c, o, pre, "load_w", 400, 0, 0, 1e9, ">= 0");
    t->phys.pv_season = get_num(c, o, pre, "pv_season", 0, 0, 0, 0.95, "between 0 and 0.95");
    if (t->soc_min_pct > t->phys.soc_max_pct) {
        snprintf(path, sizeof path, "%ssoc_min_pct", pre);
        cerr(c, path, "must not be above soc_max_pct (%g)", t->phys.soc_max_pct);
    } else if (t->soc_pct < t->soc_min_pct || t->soc_pct > t->phys.soc_max_pct) {
        snprintf(path, sizeof path, "%ssoc_pct", pre);
        cerr(c, path, "must be between soc_min_pct (%g) and soc_max_pct (%g)", t->soc_min_pct,
             t->phys.soc_max_pct);
    }

    static const char *const profiles[][2] = {{"load_profile", "load_w"}, {"pv_profile", "pv_w"}};
    for (size_t k = 0; k < 2; k++) {
        const gp_json *lp = H->json_get(o, profiles[k][0]);
        if (!lp) continue;
        snprintf(path, sizeof path, "%s%s", pre, profiles[k][0]);
        const char *rel = H->json_str(lp);
        sim_profile *out = k == 0 ? &t->phys.profile : &t->phys.pv_profile;
        if (!rel || !*rel)
            cerr(c, path, "must be the path of a CSV file with header \"time,%s\"", profiles[k][1]);
        else
            load_profile(c, path, H->resolve_path(c->h, rel), profiles[k][1], out);
    }

    const gp_json *om = H->json_get(o, "own_mode");
    if (om) {
        const char *mode = H->json_str(om);
        snprintf(path, sizeof path, "%sown_mode", pre);
        if (mode && strcmp(mode, "idle") == 0)
            t->phys.idle_own = 1;
        else if (!mode || strcmp(mode, "self_consumption") != 0)
            cerr(c, path, "must be \"self_consumption\" (the default) or \"idle\"");
    }
}

/* ---- the device list ------------------------------------------------------------------ */

static const sim *cmp_sim; /* qsort has no context argument; single-threaded by the ABI */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(cmp_sim->names + cmp_sim->dev[*(const uint32_t *)a].name,
                  cmp_sim->names + cmp_sim->dev[*(const uint32_t *)b].name);
}

long sim_find_device(const sim *s, const char *id)
{
    size_t lo = 0, hi = s->n_dev;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(id, sim_dev_id(s, s->by_name[mid]));
        if (r == 0) return (long)s->by_name[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

static int digits_of(size_t n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

void sim_dev_reset(sim *s, uint32_t i)
{
    sim_dev *d = &s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    sim_phys_reset(&t->phys, &d->ph, t->soc_pct, t->soc_min_pct);
    d->dirty = 0;
    d->until_ms = 0;
    d->last_ms = SIM_NOT_STARTED;
    d->task = 0;
    d->task_start_ms = d->task_deadline_ms = 0;
}

/* Lay out count devices over the templates: ids, index, initial state. */
static void build_devices(sim *s, size_t count)
{
    int width = digits_of(count);
    int suffix = count > s->n_tmpl;
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += strlen(s->tmpl[i % s->n_tmpl].id) + (suffix ? (size_t)width + 2 : 1);
    s->names = sim_xcalloc(bytes, 1);
    s->dev = sim_xcalloc(count, sizeof(sim_dev));
    s->by_name = sim_xcalloc(count, sizeof(uint32_t));
    s->n_dev = count;
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        sim_dev *d = &s->dev[i];
        d->tmpl = (uint32_t)(i % s->n_tmpl);
        d->name = (uint32_t)off;
        const char *tid = s->tmpl[d->tmpl].id;
        int n = suffix ? snprintf(s->names + off, bytes - off, "%s-%0*zu", tid, width, i + 1)
                       : snprintf(s->names + off, bytes - off, "%s", tid);
        off += (size_t)n + 1;
        s->by_name[i] = (uint32_t)i;
        sim_dev_reset(s, (uint32_t)i);
    }
    cmp_sim = s;
    qsort(s->by_name, count, sizeof(uint32_t), cmp_name);
    cmp_sim = NULL;
}

static const char *const root_keys[] = {
    "devices",   "count", "seed",       "async",    "latency",
    "task_time", "fail",  "trace_file", "snapshot", NULL,
};

/* The fail list; ids are only checked once the device list exists (built). */
static void parse_fail(cfg *c, sim *s, const gp_json *fail, int built)
{
    if (!fail) return;
    if (H->json_type(fail) != GP_JSON_ARRAY) {
        if (!built) cerr(c, "fail", "must be an array of device ids");
        return;
    }
    for (size_t i = 0; built && i < H->json_len(fail); i++) {
        char path[32];
        snprintf(path, sizeof path, "fail[%zu]", i);
        const char *id = H->json_str(H->json_at(fail, i));
        long d = id ? sim_find_device(s, id) : -1;
        if (!id)
            cerr(c, path, "must be a device id (a string)");
        else if (d < 0)
            cerr(c, path, "no device named \"%s\"", id);
        else
            s->dev[d].fail = 1;
    }
}

static void open_trace(cfg *c, sim *s, const gp_json *tf)
{
    const char *rel = H->json_str(tf);
    if (!rel || !*rel) return;
    const char *file = H->resolve_path(c->h, rel);
    s->trace = fopen(file, "a");
    if (!s->trace) cerr(c, "trace_file", "cannot open %s: %s", file, strerror(errno));
}

sim *sim_config_build(gp_hctx *h, const gp_json *config)
{
    cfg c = {.h = h, .errors = 0};
    if (H->json_type(config) != GP_JSON_OBJECT) {
        cerr(&c, "", "the sim config must be an object with a \"devices\" array");
        return NULL;
    }
    sim *s = sim_xcalloc(1, sizeof(sim));
    s->h = h;
    c.errors += H->config_check_keys(h, config, "", root_keys);

    const gp_json *devs = H->json_get(config, "devices");
    size_t nt = H->json_type(devs) == GP_JSON_ARRAY ? H->json_len(devs) : 0;
    if (!devs)
        cerr(&c, "devices", "required: an array of device templates");
    else if (nt == 0)
        cerr(&c, "devices", "must be a non-empty array of device objects");
    s->n_tmpl = nt;
    s->tmpl = sim_xcalloc(nt, sizeof(sim_tmpl));
    for (size_t i = 0; i < nt; i++) {
        parse_tmpl(&c, H->json_at(devs, i), i, &s->tmpl[i]);
        for (size_t j = 0; j < i && s->tmpl[i].id; j++) {
            if (s->tmpl[j].id && strcmp(s->tmpl[i].id, s->tmpl[j].id) == 0) {
                char path[48];
                snprintf(path, sizeof path, "devices[%zu].id", i);
                cerr(&c, path, "duplicate id \"%s\" (also devices[%zu])", s->tmpl[i].id, j);
            }
        }
    }

    int64_t count = get_int(&c, config, "count", (int64_t)nt, 1, MAX_COUNT, " from 1 to 1000000");
    if (nt > 0 && count < (int64_t)nt && H->json_get(config, "count"))
        cerr(&c, "count", "must be at least the number of device templates (%zu)", nt);
    int64_t seed =
        get_int(&c, config, "seed", 1, -9007199254740992.0, 9007199254740992.0, " (within +-2^53)");
    sim_phys_world_init(&s->world, (uint64_t)seed);
    const gp_json *as = H->json_get(config, "async");
    if (as && H->json_type(as) != GP_JSON_BOOL) cerr(&c, "async", "must be true or false");
    s->async = H->json_bool(as, 0);
    s->latency_ms = get_duration(&c, config, "latency", "0ms", 0);
    s->task_time_ms = get_duration(&c, config, "task_time", "60s", 1);
    s->snapshot_ms = get_duration(&c, config, "snapshot", "1h", 1);
    const gp_json *tf = H->json_get(config, "trace_file");
    if (tf && (!H->json_str(tf) || !*H->json_str(tf)))
        cerr(&c, "trace_file", "must be a file path");
    parse_fail(&c, s, H->json_get(config, "fail"), 0);

    if (c.errors == 0) {
        build_devices(s, (size_t)count);
        parse_fail(&c, s, H->json_get(config, "fail"), 1);
    }
    /* Opened last, so an invalid config leaves no file behind. */
    if (c.errors == 0) open_trace(&c, s, tf);
    if (c.errors) {
        sim_free(s);
        return NULL;
    }
    return s;
}

void sim_free(sim *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_tmpl; i++) {
        free(s->tmpl[i].id);
        free(s->tmpl[i].phys.profile.t_s);
        free(s->tmpl[i].phys.profile.w);
        free(s->tmpl[i].phys.pv_profile.t_s);
        free(s->tmpl[i].phys.pv_profile.w);
    }
    free(s->tmpl);
    free(s->dev);
    free(s->names);
    free(s->by_name);
    free(s->ended);
    if (s->trace) fclose(s->trace);
    free(s);
}
