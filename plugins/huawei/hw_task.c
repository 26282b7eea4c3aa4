/*
 * Task polls: POST vpp/chargeAndDischargeStatus {requestID} once per vendor reference (the
 * requestID the command answered PENDING with). Per plant: status 0 complete → DONE with the
 * energy moved (chargedCapacity or dischargedCapacity, kWh → Wh), 1 in progress → PENDING,
 * 2 timeout (24 h) → TIMEOUT. A plant the answer does not list yet stays PENDING, and so does
 * one whose status is missing or unknown (with a warning). failCode 20050 (unknown requestID)
 * fails every task of the reference for good: the vendor has no such task, which for a
 * request whose answer was lost means the command never arrived.
 *
 * A malformed or truncated answer fails the poll as GP_E_PROTOCOL but retryable: the task is
 * still running at Huawei, and the next poll may well get a whole answer. Whatever the
 * answers, a task not final 25 h after its request went out ends GP_TIMEOUT (Huawei's own
 * limit is 24 h): the send times are remembered here, in memory and in the host's kv store.
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
    hw_sent sent;     /* when the request went out; sent.id 0 when not known */
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

/* Whether the core would poll the task again after this result. */
static int still_open(gp_status st, int code, int retry)
{
    return st == GP_PENDING || (st == GP_FAILED && (retry || code == GP_E_TRANSPORT ||
                                                    code == GP_E_RATE_LIMIT || code == GP_E_AUTH));
}

static void result(poll_op *o, size_t k, gp_status st, int code, int retry, const char *msg,
                   double wh, const char *detail)
{
    char late[HW_MSG_LEN];
    int64_t age = o->sent.id ? H->now_ms(o->s->h) - o->sent.sent_ms : 0;
    if (o->sent.id && age >= HW_TASK_GIVE_UP_MS && still_open(st, code, retry)) {
        snprintf(late, sizeof late,
                 "huawei: task %s for plant %s is not final %.1f h after it was sent (Huawei "
                 "ends its tasks within 24 h); giving up on it",
                 o->ref, o->code[k], (double)age / 3600000.0);
        H->log(o->s->h, GP_LOG_WARN, "%s", late);
        st = GP_TIMEOUT;
        msg = late;
    }
    gp_result r = hw_result(st, code, retry, msg, o->ref);
    r.energy_wh = wh;
    r.detail = detail;
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
        /* The vendor knows the task; a garbled state does not end it. Ask again. */
        snprintf(msg, sizeof msg,
                 "huawei: " API ": status for plant %s under request %s is missing or not 0/1/2; "
                 "asking again at the next poll",
                 o->code[k], o->ref);
        H->log(o->s->h, GP_LOG_WARN, "%s", msg);
        result(o, k, GP_PENDING, 0, 0, msg, NAN, NULL);
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
        if (err.code == 20050) {
            /* "The charging and discharging task query parameter does not exist": no task
             * under this requestID, and there never will be. */
            if (o->sent.id && o->sent.unconfirmed)
                hw_err_set(&err, 20050, 0,
                           "huawei: " API ": the vendor has no task %s: the command never arrived "
                           "(its answer was lost; failCode 20050)",
                           o->ref);
            else
                hw_err_set(&err, 20050, 0,
                           "huawei: " API ": the vendor has no task %s (failCode 20050: %s)",
                           o->ref, hw_fail_text(20050));
        }
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
    if (!hw_sent_find(s, strtoull(ref, NULL, 10), &o->sent)) o->sent.id = 0;
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

/* ---- send times ----------------------------------------------------------------------- */

/*
 * Every chargeAndDischarge request that may leave tasks is remembered for 48 h: when it went
 * out (for the 25 h limit) and whether its answer was lost (for a clear message when the
 * vendor does not know it). The copy in the host's kv store survives a restart; it is kept in
 * one key per minute of sending ("sent.<minute>", lines "<requestID> <sent_ms> <0|1>") listed
 * in "sent.minutes": a request rewrites only its minute's key (no more lines than the
 * chargeAndDischarge quota lets out in a minute), and old minutes are deleted whole.
 */

#define SENT_KEEP_MS (48LL * 3600 * 1000)
#define SLOT_MS      60000LL
#define KEY_SLOTS    "sent.minutes"

static int64_t slot_of(int64_t ms)
{
    return ms >= 0 ? ms / SLOT_MS : -((-ms + SLOT_MS - 1) / SLOT_MS);
}

static void sent_push(hw *s, uint64_t id, int64_t sent_ms, int unconfirmed)
{
    for (size_t i = 0; i < s->n_sent; i++) {
        if (s->sent[i].id == id) {
            s->sent[i].sent_ms = sent_ms;
            s->sent[i].unconfirmed = unconfirmed;
            return;
        }
    }
    if (s->n_sent == s->cap_sent) {
        s->cap_sent = s->cap_sent ? 2 * s->cap_sent : 64;
        s->sent = hw_xrealloc(s->sent, s->cap_sent * sizeof(hw_sent));
    }
    s->sent[s->n_sent++] = (hw_sent){.id = id, .sent_ms = sent_ms, .unconfirmed = unconfirmed};
}

static int has_slot(const hw *s, int64_t slot)
{
    for (size_t i = 0; i < s->n_sent; i++)
        if (slot_of(s->sent[i].sent_ms) == slot) return 1;
    return 0;
}

/* Add slot to the set v[0..*n) (grown as needed). */
static void slot_add(int64_t **v, size_t *n, int64_t slot)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == slot) return;
    *v = hw_xrealloc(*v, (*n + 1) * sizeof(int64_t));
    (*v)[(*n)++] = slot;
}

static int cmp_slot(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The list of minutes, sorted: up to 2880 of them over tens of thousands of requests, so
 * sort and skip repeats rather than search a set per request. */
static void write_slots(hw *s)
{
    int64_t *slots = hw_xrealloc(NULL, (s->n_sent ? s->n_sent : 1) * sizeof(int64_t));
    for (size_t i = 0; i < s->n_sent; i++)
        slots[i] = slot_of(s->sent[i].sent_ms);
    qsort(slots, s->n_sent, sizeof(int64_t), cmp_slot);
    gp_str *b = H->str_new();
    size_t n = 0;
    for (size_t i = 0; i < s->n_sent; i++) {
        if (i && slots[i] == slots[i - 1]) continue;
        H->str_printf(b, "%s%lld", n++ ? " " : "", (long long)slots[i]);
    }
    free(slots);
    size_t len = 0;
    const char *text = H->str_data(b, &len);
    H->kv_set(s->h, KEY_SLOTS, n ? text : NULL, len);
    H->str_free(b);
}

static void write_slot(hw *s, int64_t slot)
{
    char key[40];
    snprintf(key, sizeof key, "sent.%lld", (long long)slot);
    gp_str *b = H->str_new();
    size_t n = 0;
    for (size_t i = 0; i < s->n_sent; i++) {
        const hw_sent *e = &s->sent[i];
        if (slot_of(e->sent_ms) != slot) continue;
        H->str_printf(b, "%llu %lld %d\n", (unsigned long long)e->id, (long long)e->sent_ms,
                      e->unconfirmed);
        n++;
    }
    size_t len = 0;
    const char *text = H->str_data(b, &len);
    H->kv_set(s->h, key, n ? text : NULL, len);
    H->str_free(b);
}

/* Forget the minutes that ended more than 48 h ago, in memory and in kv: whole keys go, so the
 * store sees one delete per minute, not one rewrite per request. */
static void sent_prune(hw *s, int64_t now)
{
    int64_t oldest = slot_of(now - SENT_KEEP_MS);
    int64_t *gone = NULL;
    size_t k = 0, n_gone = 0;
    for (size_t i = 0; i < s->n_sent; i++) {
        int64_t slot = slot_of(s->sent[i].sent_ms);
        if (slot >= oldest)
            s->sent[k++] = s->sent[i];
        else
            slot_add(&gone, &n_gone, slot);
    }
    s->n_sent = k;
    for (size_t j = 0; j < n_gone; j++) {
        char key[40];
        snprintf(key, sizeof key, "sent.%lld", (long long)gone[j]);
        H->kv_set(s->h, key, NULL, 0);
    }
    free(gone);
    if (n_gone) write_slots(s);
}

/* One "<id> <sent_ms> <0|1>" line; 0 on success. */
static int parse_line(const char *line, uint64_t *id, int64_t *ms, int *unconfirmed)
{
    unsigned long long a;
    long long b;
    int c, used = 0;
    if (sscanf(line, "%llu %lld %d%n", &a, &b, &c, &used) != 3 || a == 0 || (c != 0 && c != 1))
        return -1;
    *id = a;
    *ms = b;
    *unconfirmed = c;
    return 0;
}

static void load_slot(hw *s, long long slot, size_t *bad)
{
    char key[40];
    snprintf(key, sizeof key, "sent.%lld", slot);
    size_t len = 0;
    char *text = H->kv_get(s->h, key, &len);
    if (!text) return;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        uint64_t id;
        int64_t ms;
        int u;
        if (parse_line(line, &id, &ms, &u) == 0)
            sent_push(s, id, ms, u);
        else if (*line)
            (*bad)++;
        if (!end) break;
        line = end + 1;
    }
    H->free(text);
}

/* Read the kv copy once, on first need (create does no I/O of any kind). */
static void sent_load(hw *s)
{
    if (s->sent_loaded) return;
    s->sent_loaded = 1;
    char *slots = H->kv_get(s->h, KEY_SLOTS, NULL);
    if (!slots) return;
    size_t bad = 0;
    for (char *p = slots; *p;) {
        char *end;
        long long slot = strtoll(p, &end, 10);
        if (end == p) {
            bad++;
            break;
        }
        load_slot(s, slot, &bad);
        p = end;
        while (*p == ' ')
            p++;
    }
    H->free(slots);
    if (bad)
        H->log(s->h, GP_LOG_WARN, "huawei: %zu unreadable entries in the stored send times ignored",
               bad);
    sent_prune(s, H->now_ms(s->h));
}

void hw_sent_note(hw *s, uint64_t request_id, int64_t sent_ms, int unconfirmed)
{
    sent_load(s);
    int64_t slot = slot_of(sent_ms);
    int new_slot = !has_slot(s, slot);
    sent_push(s, request_id, sent_ms, unconfirmed);
    write_slot(s, slot);
    if (new_slot) write_slots(s);
    sent_prune(s, H->now_ms(s->h));
}

int hw_sent_find(hw *s, uint64_t request_id, hw_sent *out)
{
    sent_load(s);
    for (size_t i = 0; i < s->n_sent; i++) {
        if (s->sent[i].id == request_id) {
            *out = s->sent[i];
            return 1;
        }
    }
    return 0;
}

void hw_sent_free(hw *s)
{
    free(s->sent);
    s->sent = NULL;
    s->n_sent = s->cap_sent = 0;
}
