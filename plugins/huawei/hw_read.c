/*
 * Telemetry: POST vpp/plantRealtimeKpi {plantCodes} (at most 100 per call) and the
 * conversion of its dataItemMap to the contract's units and signs:
 *
 *   pv_w      =  1000 * pvPower        (kW, >= 0)
 *   battery_w =  1000 * batteryPower   (kW, > 0 discharging: already ours)
 *   grid_w    = -1000 * meterPower     (kW, > 0 feed-in; ours is + importing; the seed's
 *                                      example's pmeterPower when meterPower is no number)
 *   load_w    =  1000 * loadPower      (kW)
 *   soc_pct   =  batterySOC            (%)
 *   soc_min   =  100 - batteryDOD      (%, when given)
 *   online    =  healthState != 1      (0 healthy, 1 disconnected, 2 faulty)
 *
 * null or missing values are NAN, never 0. A plant missing from the answer is not reported
 * (the host marks it stale).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

#define API   "vpp/plantRealtimeKpi"
#define QUOTA "plantRealtimeKpi"

typedef struct read_op {
    hw *s;
    uint64_t op;
    size_t n;
    uint32_t *device;        /* owned; host handles */
    char **code;             /* owned; plant codes */
    unsigned char *reported; /* owned; one flag per target */
    unsigned refs;           /* requests in flight */
    hw_err err;              /* what read_done reports; code 0: DONE */
} read_op;

typedef struct read_chunk {
    read_op *op;
    size_t from, n;
} read_chunk;

static void op_free(read_op *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->code[i]);
    free(o->code);
    free(o->device);
    free(o->reported);
    free(o);
}

/* Keep the failure that matters most to the host: an expired session (it logs in and
 * replays), then the first one seen. */
static void note_err(read_op *o, const hw_err *e)
{
    if (!e->code) return;
    if (o->err.code == 0 || (e->code == GP_E_AUTH && o->err.code != GP_E_AUTH)) o->err = *e;
}

static void complete(read_op *o)
{
    gp_result r = hw_err_result(&o->err);
    H->read_done(o->s->h, o->op, &r);
    op_free(o);
}

/* A kW value in W; NAN when null or missing, NAN with a warning when of the wrong type. */
static double field(hw *s, const char *code, const gp_json *map, const char *key, double scale)
{
    if (hw_jbad_num(map, key)) {
        H->log(s->h, GP_LOG_WARN, "huawei: " API ": %s: %s is not a number; ignored", code, key);
        return NAN;
    }
    double v = hw_jnum(map, key);
    return isnan(v) ? NAN : v * scale;
}

static void extra_num(hw *s, gp_str *b, const gp_json *map, const char *key, int *first)
{
    double v = hw_jbad_num(map, key) ? NAN : hw_jnum(map, key);
    (void)s;
    if (!isfinite(v)) return;
    H->str_printf(b, "%s\"%s\":%.17g", *first ? "" : ",", key, v);
    *first = 0;
}

static void report(read_op *o, size_t k, const char *code, const gp_json *map)
{
    hw *s = o->s;
    double soc = field(s, code, map, "batterySOC", 1);
    double dod = field(s, code, map, "batteryDOD", 1);
    /* The seed's table names it meterPower, its example pmeterPower: the first that holds a
     * number (a server may send both, one of them null). */
    double meter = field(s, code, map, "meterPower", 1000);
    if (isnan(meter)) meter = field(s, code, map, "pmeterPower", 1000);
    double health = field(s, code, map, "healthState", 1);
    gp_str *x = H->str_new();
    int first = 1;
    H->str_printf(x, "{");
    static const char *const extras[] = {"healthState", "dayEnergy", "monthEnergy", "totalEnergy",
                                         "batteryDOD"};
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++)
        extra_num(s, x, map, extras[i], &first);
    H->str_printf(x, "}");
    size_t len = 0;
    const char *text = H->str_data(x, &len);
    char err[64];
    gp_json *extra = H->json_parse(text, len, err, sizeof err);
    gp_reading r = {
        .size = sizeof(gp_reading),
        .ts_ms = 0,
        .online = health != 1,
        .soc_pct = soc >= 0 && soc <= 100 ? soc : NAN,
        .battery_w = field(s, code, map, "batteryPower", 1000),
        .pv_w = field(s, code, map, "pvPower", 1000),
        .load_w = field(s, code, map, "loadPower", 1000),
        .grid_w = -meter,
        .capacity_wh = NAN,
        .max_charge_w = NAN,
        .max_discharge_w = NAN,
        .soc_min_pct = dod >= 0 && dod <= 100 ? 100.0 - dod : NAN,
        .soc_max_pct = NAN,
        .extra = extra,
    };
    if (r.grid_w == 0) r.grid_w = 0; /* no "-0" */
    H->reading(s->h, o->device[k], &r);
    H->json_free(extra);
    H->str_free(x);
    o->reported[k] = 1;
}

static void read_entries(read_chunk *c, const gp_json *list)
{
    read_op *o = c->op;
    size_t n = H->json_len(list), no_map = 0, unknown = 0;
    for (size_t i = 0; i < n; i++) {
        const gp_json *e = H->json_at(list, i);
        const char *code = hw_jstr(e, "plantCode");
        const gp_json *map = H->json_get(e, "dataItemMap");
        int matched = 0;
        for (size_t k = c->from; code && k < c->from + c->n; k++) {
            if (o->reported[k] || strcmp(o->code[k], code) != 0) continue;
            matched = 1;
            if (H->json_type(map) != GP_JSON_OBJECT) {
                no_map++;
                break;
            }
            report(o, k, code, map);
        }
        unknown += !matched;
    }
    if (no_map)
        H->log(o->s->h, GP_LOG_WARN, "huawei: " API ": %zu plant(s) without a dataItemMap object",
               no_map);
    if (unknown)
        H->log(o->s->h, GP_LOG_DEBUG, "huawei: " API ": %zu entries for plants not asked for",
               unknown);
}

static void chunk_done(read_chunk *c)
{
    read_op *o = c->op;
    free(c);
    if (--o->refs == 0) complete(o);
}

static void on_answer(void *ud, const gp_http_resp *r)
{
    read_chunk *c = ud;
    hw_err err;
    gp_json *doc = hw_answer(c->op->s, API, QUOTA, r, &err);
    if (doc) {
        const gp_json *list = H->json_get(doc, "data");
        if (H->json_type(list) != GP_JSON_ARRAY)
            hw_err_set(&err, GP_E_PROTOCOL, 0, "huawei: " API ": data is not a list of plants");
        else
            read_entries(c, list);
        H->json_free(doc);
    }
    note_err(c->op, &err);
    chunk_done(c);
}

static void on_drop(void *ud)
{
    read_chunk *c = ud;
    read_op *o = c->op;
    free(c);
    if (--o->refs == 0) op_free(o);
}

void hw_read(hw *s, uint64_t op, const gp_target *t, size_t n)
{
    read_op *o = hw_xcalloc(1, sizeof(*o));
    o->s = s;
    o->op = op;
    o->device = hw_xcalloc(n, sizeof(uint32_t));
    o->code = hw_xcalloc(n, sizeof(char *));
    o->reported = hw_xcalloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        if (!t[i].vendor_id || !*t[i].vendor_id || strpbrk(t[i].vendor_id, ",\"\\")) {
            H->log(s->h, GP_LOG_WARN, "huawei: read of a device without a usable plant code");
            continue;
        }
        o->device[o->n] = t[i].device;
        o->code[o->n++] = hw_xstrdup(t[i].vendor_id);
    }
    if (!s->token) {
        hw_err_set(&o->err, GP_E_AUTH, 0, "huawei: " API ": not logged in");
        complete(o);
        return;
    }
    o->refs = 1; /* held while issuing, so an early answer cannot complete the op */
    for (size_t from = 0; from < o->n; from += HW_MAX_CODES) {
        read_chunk *c = hw_xcalloc(1, sizeof(*c));
        c->op = o;
        c->from = from;
        c->n = o->n - from < HW_MAX_CODES ? o->n - from : HW_MAX_CODES;
        gp_str *body = H->str_new();
        H->str_printf(body, "{\"plantCodes\":\"");
        hw_join(body, o->code + from, c->n);
        H->str_printf(body, "\"}");
        hw_err err;
        o->refs++;
        if (hw_post(s, API, QUOTA, H->str_data(body, NULL), GP_PRIO_TELEMETRY, 1, on_answer,
                    on_drop, c, &err) != 0) {
            note_err(o, &err);
            o->refs--;
            free(c);
        }
        H->str_free(body);
    }
    if (--o->refs == 0) complete(o);
}
