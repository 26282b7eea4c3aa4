/*
 * Task polls: POST vpp/chargeAndDischargeStatus {requestID} once per vendor reference (the
 * requestID the command answered PENDING with). Per plant: status 0 complete → DONE with the
 * energy moved (chargedCapacity or dischargedCapacity, kWh → Wh), 1 in progress → PENDING,
 * 2 timeout (24 h) → TIMEOUT. A plant the answer does not list yet stays PENDING; failCode
 * 20050 (unknown requestID) fails every task of the reference.
 *
 * A malformed or truncated answer fails the poll as GP_E_PROTOCOL but retryable: the task is
 * still running at Huawei, and the next poll may well get a whole answer.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

#define API   "vpp/chargeAndDischargeStatus"
#define QUOTA "chargeAndDischargeStatus"

typedef struct poll_op {
    hw *s;
    char *ref; /* owned; the requestID as decimal text */
    size_t n;
    uint64_t *cmd_id; /* owned */
    char **code;      /* owned; plant codes */
    double *value;    /* owned; the setpoint, whose sign says charge or discharge */
} poll_op;

static void op_free(poll_op *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->code[i]);
    free(o->code);
    free(o->cmd_id);
    free(o->value);
    free(o->ref);
    free(o);
}

static void result(poll_op *o, size_t k, gp_status st, int code, int retry, const char *msg,
                   double wh, const char *detail)
{
    gp_result r = {
        .size = sizeof(gp_result),
        .status = st,
        .code = st == GP_FAILED ? code : 0,
        .retryable = st == GP_FAILED ? retry : 0,
        .message = msg,
        .vendor_ref = o->ref,
        .energy_wh = wh,
        .detail = detail,
    };
    H->task_result(o->s->h, o->cmd_id[k], &r);
}

static void fail_all(poll_op *o, const hw_err *err)
{
    for (size_t k = 0; k < o->n; k++)
        result(o, k, GP_FAILED, err->code, err->retryable, err->msg, NAN, NULL);
}

/* data may be a list of entries (the seed's example) or one entry (its table says Map). */
static size_t n_entries(const gp_json *data)
{
    int t = H->json_type(data);
    return t == GP_JSON_ARRAY ? H->json_len(data) : t == GP_JSON_OBJECT ? 1 : 0;
}

static const gp_json *entry(const gp_json *data, size_t i)
{
    return H->json_type(data) == GP_JSON_ARRAY ? H->json_at(data, i) : data;
}

static void detail_str(gp_str *d, const char *key, const char *val, int *first)
{
    if (!val) return;
    H->str_printf(d, "%s\"%s\":", *first ? "" : ",", key);
    H->str_json(d, val);
    *first = 0;
}

static void detail_of(const gp_json *e, gp_str *d)
{
    int first = 1;
    H->str_printf(d, "{");
    detail_str(d, "remoteID", hw_jstr(e, "remoteID"), &first);
    detail_str(d, "sn", hw_jstr(e, "sn"), &first);
    /* The seed's example also spells them startTime / endTime. */
    const char *start = hw_jstr(e, "execStartTime"), *end = hw_jstr(e, "execEndTime");
    detail_str(d, "execStartTime", start ? start : hw_jstr(e, "startTime"), &first);
    detail_str(d, "execEndTime", end ? end : hw_jstr(e, "endTime"), &first);
    H->str_printf(d, "}");
}

static void one_task(poll_op *o, size_t k, const gp_json *data)
{
    const char *mine = o->value[k] < 0 ? "chargedCapacity" : "dischargedCapacity";
    const char *other = o->value[k] < 0 ? "dischargedCapacity" : "chargedCapacity";
    size_t found = 0, running = 0, timeout = 0, bad = 0;
    double kwh = NAN;
    const gp_json *first = NULL;
    for (size_t i = 0; i < n_entries(data); i++) {
        const gp_json *e = entry(data, i);
        const char *code = hw_jstr(e, "plantCode");
        if (!code || strcmp(code, o->code[k]) != 0) continue;
        found++;
        if (!first) first = e;
        double st = hw_jnum(e, "status");
        running += st == 1;
        timeout += st == 2;
        bad += st != 0 && st != 1 && st != 2;
        double v = hw_jnum(e, mine);
        if (isnan(v)) v = hw_jnum(e, other);
        if (v >= 0 && isfinite(v)) kwh = isnan(kwh) ? v : kwh + v;
    }
    if (!found) {
        H->log(o->s->h, GP_LOG_DEBUG,
               "huawei: " API ": no status for plant %s under request %s yet", o->code[k], o->ref);
        result(o, k, GP_PENDING, 0, 0, NULL, NAN, NULL);
        return;
    }
    char msg[HW_MSG_LEN];
    if (bad) {
        snprintf(msg, sizeof msg, "huawei: " API ": status for plant %s is missing or not 0/1/2",
                 o->code[k]);
        result(o, k, GP_FAILED, GP_E_PROTOCOL, 0, msg, NAN, NULL);
        return;
    }
    gp_str *d = H->str_new();
    detail_of(first, d);
    double wh = isnan(kwh) ? NAN : kwh * 1000.0;
    if (running)
        result(o, k, GP_PENDING, 0, 0, NULL, wh, H->str_data(d, NULL));
    else if (timeout)
        result(o, k, GP_TIMEOUT, 0, 0, "huawei: the task timed out at Huawei (24 h)", wh,
               H->str_data(d, NULL));
    else
        result(o, k, GP_DONE, 0, 0, NULL, wh, H->str_data(d, NULL));
    H->str_free(d);
}

static void on_answer(void *ud, const gp_http_resp *r)
{
    poll_op *o = ud;
    hw_err err;
    gp_json *doc = hw_answer(o->s, API, QUOTA, r, &err);
    if (!doc) {
        if (err.code == GP_E_PROTOCOL) err.retryable = 1;
        fail_all(o, &err);
        op_free(o);
        return;
    }
    const gp_json *data = H->json_get(doc, "data");
    int t = H->json_type(data);
    if (t != GP_JSON_ARRAY && t != GP_JSON_OBJECT && t != GP_JSON_NULL && t != GP_JSON_MISSING) {
        hw_err_set(&err, GP_E_PROTOCOL, 1, "huawei: " API ": data is not a list of task states");
        fail_all(o, &err);
    } else {
        for (size_t k = 0; k < o->n; k++)
            one_task(o, k, data);
    }
    H->json_free(doc);
    op_free(o);
}

static void on_drop(void *ud)
{
    op_free(ud);
}

static int is_request_id(const char *ref)
{
    size_t len = ref ? strlen(ref) : 0;
    if (len == 0 || len > 19) return 0;     /* 19 digits always fit a signed Long */
    if (len > 1 && ref[0] == '0') return 0; /* JSON numbers have no leading zeros */
    for (size_t i = 0; i < len; i++)
        if (ref[i] < '0' || ref[i] > '9') return 0;
    return 1;
}

/* Poll the tasks in t[] whose vendor_ref equals ref (marked in done[]). */
static void poll_ref(hw *s, const gp_task *t, size_t n, const char *ref, unsigned char *done)
{
    poll_op *o = hw_xcalloc(1, sizeof(*o));
    o->s = s;
    o->ref = hw_xstrdup(ref);
    o->cmd_id = hw_xcalloc(n, sizeof(uint64_t));
    o->code = hw_xcalloc(n, sizeof(char *));
    o->value = hw_xcalloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const char *r = t[i].vendor_ref ? t[i].vendor_ref : "";
        if (done[i] || strcmp(r, ref) != 0) continue;
        done[i] = 1;
        o->cmd_id[o->n] = t[i].cmd_id;
        o->code[o->n] = hw_xstrdup(t[i].target.vendor_id ? t[i].target.vendor_id : "");
        o->value[o->n++] = t[i].value;
    }
    hw_err err;
    if (!is_request_id(ref)) {
        hw_err_set(&err, GP_E_PROTOCOL, 0, "huawei: " API ": \"%.40s\" is not a Huawei requestID",
                   ref);
        fail_all(o, &err);
        op_free(o);
        return;
    }
    if (!s->token) {
        hw_err_set(&err, GP_E_AUTH, 0, "huawei: " API ": not logged in");
        fail_all(o, &err);
        op_free(o);
        return;
    }
    char body[64];
    snprintf(body, sizeof body, "{\"requestID\":%s}", ref);
    if (hw_post(s, API, QUOTA, body, GP_PRIO_CONTROL, 1, on_answer, on_drop, o, &err) != 0) {
        fail_all(o, &err);
        op_free(o);
    }
}

void hw_task_poll(hw *s, const gp_task *t, size_t n)
{
    /* The host groups one reference per call; split anyway should it not. */
    unsigned char *done = hw_xcalloc(n, 1);
    for (size_t i = 0; i < n; i++)
        if (!done[i]) poll_ref(s, t, n, t[i].vendor_ref ? t[i].vendor_ref : "", done);
    free(done);
}
