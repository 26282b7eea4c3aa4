/*
 * Battery charge and discharge tasks: chargeAndDischarge starts one sub-task per plant (forced
 * mode in the physics), chargeAndDischargeStatus reports them as of their latest 3-minute
 * refresh. A sub-task ends when its duration or target SoC is reached (status 0), after 24 h
 * (status 2), or when a later task or a stop replaces it on its plant (status 0, "replaced").
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_huawei.h"

hw_sub *hw_running(hw *h, const hw_plant *p)
{
    return p->run_task >= 0 ? &h->tasks[p->run_task].subs[p->run_sub] : NULL;
}

void hw_sub_end(hw *h, hw_plant *p, int state, int64_t at_ms)
{
    hw_sub *s = hw_running(h, p);
    if (!s) return;
    s->state = state;
    s->end_ms = at_ms;
    s->wh = p->site.st.forced_wh;
    p->run_task = -1;
    emu_site_release(&p->site);
}

void hw_sub_ended_by_physics(hw *h, hw_plant *p, int64_t at_ms)
{
    if (p->run_task < 0) return;
    const hw_task *t = &h->tasks[p->run_task];
    /* A duration always ends within the 24 h; a target SoC not reached by then times out. */
    int timeout = t->control_type == 1 && at_ms >= t->start_ms + HW_TASK_LIMIT_MS;
    hw_sub_end(h, p, timeout ? 2 : 0, at_ms);
}

int64_t hw_next_refresh(const hw *h, const hw_plant *p, int64_t t)
{
    if (p->run_task < 0) return INT64_MAX;
    int64_t start = h->tasks[p->run_task].start_ms;
    return start + ((t - start) / HW_REFRESH_MS + 1) * HW_REFRESH_MS;
}

/* requestID: a positive integer (a JSON number up to 2^53, or a string of up to 19 digits),
 * canonical decimal into out. 0, or -1 when absent or invalid. */
static int request_id(const cJSON *b, char *out, size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "requestID");
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(d >= 1 && d <= 9007199254740992.0) || d != floor(d)) return -1;
        snprintf(out, len, "%lld", (long long)d);
        return 0;
    }
    const char *s = cJSON_GetStringValue(v);
    if (!s) return -1;
    while (*s == '0' && s[1])
        s++;
    size_t n = strlen(s);
    if (n == 0 || n > 19 || strspn(s, "0123456789") != n || strcmp(s, "0") == 0) return -1;
    snprintf(out, len, "%s", s);
    return 0;
}

static long find_task(const hw *h, const char *id)
{
    for (size_t t = h->n_tasks; t-- > 0;)
        if (strcmp(h->tasks[t].request_id, id) == 0) return (long)t;
    return -1;
}

/* Every parameter check of the document, in the order of its error list. Fills t (no subs) and
 * the plant indexes; returns 0 or the error code (msg may name the culprit). */
static int check(hw *h, const cJSON *b, hw_task *t, uint32_t **idx, long *n, char *msg,
                 size_t msglen)
{
    char **ids;
    *n = hw_split_ids(b, "plantCodes", &ids, HW_MAX_ITEMS);
    *idx = NULL;
    if (*n < 0) return HW_E_NO_PLANTS;
    *idx = gp_xcalloc((size_t)*n, sizeof(uint32_t));
    int code = 0;
    long long sw = -1, ct = 0, minutes = 0, power = 0;
    double soc = NAN;
    if (*n > HW_MAX_ITEMS) {
        code = HW_E_PLANTS_100;
    } else if (hw_int(b, "dispatchSwitch", &sw) <= 0 || sw < 0 || sw > 2) {
        code = HW_E_DISPATCH_PARAM;
    } else if (sw != 0 && hw_int(b, "controlType", &ct) == 0) {
        code = HW_E_CONTROL_TYPE;
    } else if (sw != 0 && (hw_int(b, "controlType", &ct) < 0 || (ct != 1 && ct != 2))) {
        code = HW_E_DISPATCH_PARAM;
    } else if (sw != 0 && ct == 1 &&
               (hw_number(b, "targetSOC", &soc) <= 0 || soc < 0 || soc > 100)) {
        code = HW_E_TARGET_SOC;
    } else if (sw != 0 && ct == 2 &&
               (hw_int(b, "dispatchTime", &minutes) <= 0 || minutes < 0 || minutes > 1440)) {
        code = HW_E_DURATION;
    } else if (request_id(b, t->request_id, sizeof t->request_id) != 0) {
        code = HW_E_REQUEST_ID;
    }
    for (long k = 0; !code && k < *n; k++) {
        long i = hw_find_plant(h, ids[k]);
        if (i < 0) {
            snprintf(msg, msglen, "Unauthorized PV plants exist in the input parameters (%.60s).",
                     ids[k]);
            code = HW_E_PLANT_AUTH;
        } else {
            (*idx)[k] = (uint32_t)i;
        }
    }
    int prc = code ? 0 : hw_int(b, "powerDispatch", &power);
    if (!code && sw != 0 && (prc < 0 || (prc > 0 && (sw == 1 ? power <= 0 : power >= 0))))
        code = HW_E_POWER;
    /* 20048 comes before 20053 in the interface's error list (5.3.6). */
    if (!code && find_task(h, t->request_id) >= 0) code = HW_E_DUP_REQUEST;
    for (long k = 0; !code && sw != 0 && ct == 1 && k < *n; k++) {
        const hw_plant *p = &h->plants[(*idx)[k]];
        if (p->battery && !p->soc_control) {
            snprintf(msg, msglen, "SOC control is not supported and an update is needed (%s).",
                     p->code);
            code = HW_E_SOC_UNSUPPORTED;
        }
    }
    hw_free_ids(ids, *n);
    t->dispatch_switch = (int)sw;
    t->control_type = sw == 0 ? 0 : (int)ct;
    t->target_soc = ct == 1 ? soc : NAN;
    t->dispatch_time = ct == 2 ? (int)minutes : 0;
    t->has_power = prc > 0;
    t->power_w = (long)power;
    return code;
}

/* Start sub-task k of task ti on its plant at now. */
static void start_sub(hw *h, long ti, size_t k, int64_t now)
{
    hw_task *t = &h->tasks[ti];
    hw_sub *s = &t->subs[k];
    hw_plant *p = &h->plants[s->plant];
    hw_plant_advance(h, s->plant, now);
    s->end_ms = now;
    s->state = 0;
    if (!p->battery) { /* nothing to charge: not delivered */
        s->result = 1;
        return;
    }
    snprintf(s->remote_id, sizeof s->remote_id, "%llu", (unsigned long long)++h->next_remote);
    if (p->run_task >= 0) {
        h->tasks[p->run_task].subs[p->run_sub].replaced = 1;
        hw_sub_end(h, p, 0, now);
    }
    emu_site_release(&p->site);
    if (t->dispatch_switch == 0) return; /* a stop: done once the plant is back in self mode */
    /* The default power is the battery's limit; above it, the limit ("the maximum value"). */
    double w = t->has_power ? fabs((double)t->power_w) : INFINITY;
    double set_w = t->dispatch_switch == 1 ? -w : w;
    int64_t end =
        t->control_type == 2 ? now + (int64_t)t->dispatch_time * 60000 : now + HW_TASK_LIMIT_MS;
    emu_site_force(&p->site, set_w, t->control_type == 1 ? t->target_soc : NAN, end);
    s->state = 1;
    s->wh = s->rep_wh = 0;
    p->run_task = ti;
    p->run_sub = k;
}

void hw_dispatch(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_DISPATCH)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    hw_task t = {.start_ms = req->now_ms};
    uint32_t *idx;
    long n;
    char msg[200] = "";
    int code = check(h, b, &t, &idx, &n, msg, sizeof msg);
    cJSON_Delete(b);
    if (code) {
        free(idx);
        hw_error_msg(r, code, msg[0] ? msg : NULL);
        return;
    }
    t.n_subs = (size_t)n;
    t.subs = gp_xcalloc(t.n_subs, sizeof(hw_sub));
    for (size_t k = 0; k < t.n_subs; k++)
        t.subs[k].plant = idx[k];
    free(idx);
    if (h->n_tasks == h->cap_tasks) {
        h->cap_tasks = h->cap_tasks ? 2 * h->cap_tasks : 16;
        h->tasks = gp_xrealloc(h->tasks, h->cap_tasks * sizeof(hw_task));
    }
    long ti = (long)h->n_tasks++;
    h->tasks[ti] = t;
    cJSON *list = cJSON_CreateArray();
    for (size_t k = 0; k < t.n_subs; k++) {
        start_sub(h, ti, k, req->now_ms);
        const hw_sub *s = &h->tasks[ti].subs[k];
        const hw_plant *p = &h->plants[s->plant];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "plantCode", p->code);
        cJSON_AddStringToObject(o, "sn", p->inv_sn);
        cJSON_AddNumberToObject(o, "dispatchResult", s->result);
        if (s->result == 0)
            cJSON_AddStringToObject(o, "remoteID", s->remote_id);
        else
            cJSON_AddNullToObject(o, "remoteID");
        cJSON_AddItemToArray(list, o);
    }
    hw_ok(r, list);
}

/* A kWh amount for the direction the task moves energy, null for the other. */
static cJSON *capacity(const hw_task *t, int dir, double wh)
{
    return t->dispatch_switch == dir ? hw_num(wh / 1000, 3) : cJSON_CreateNull();
}

/* What sub s looks like as of its latest refresh. */
static cJSON *status_json(hw *h, const hw_task *t, const hw_sub *s, int64_t now)
{
    const hw_plant *p = &h->plants[s->plant];
    int64_t elapsed = now - t->start_ms;
    int64_t refreshed = t->start_ms + elapsed / HW_REFRESH_MS * HW_REFRESH_MS;
    int status = 1;
    double wh = s->rep_wh;
    if (elapsed < HW_REFRESH_MS) { /* not refreshed yet: just received */
        wh = 0;
    } else if (s->state != 1 && s->end_ms <= refreshed) {
        status = s->state;
        wh = s->wh;
    }
    char start[40], end[40];
    hw_iso(h, t->start_ms, start, sizeof start);
    hw_iso(h, s->end_ms, end, sizeof end);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "plantCode", p->code);
    cJSON_AddStringToObject(o, "sn", p->inv_sn);
    cJSON_AddStringToObject(o, "remoteID", s->remote_id);
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddItemToObject(o, "chargedCapacity", capacity(t, 1, wh));
    cJSON_AddItemToObject(o, "dischargedCapacity", capacity(t, 2, wh));
    cJSON_AddStringToObject(o, "execStartTime", start);
    if (status == 0)
        cJSON_AddStringToObject(o, "execEndTime", end);
    else
        cJSON_AddNullToObject(o, "execEndTime");
    return o;
}

void hw_status(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_STATUS)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    char id[24];
    int bad = request_id(b, id, sizeof id);
    cJSON_Delete(b);
    long ti = bad ? -1 : find_task(h, id);
    if (bad || ti < 0) {
        hw_error(r, bad ? HW_E_REQUEST_ID : HW_E_NO_TASK);
        return;
    }
    cJSON *list = cJSON_CreateArray();
    for (size_t k = 0; k < h->tasks[ti].n_subs; k++) {
        const hw_sub *s = &h->tasks[ti].subs[k];
        if (s->result != 0) continue; /* never delivered: nothing to report */
        hw_plant_advance(h, s->plant, req->now_ms);
        cJSON_AddItemToArray(list, status_json(h, &h->tasks[ti], s, req->now_ms));
    }
    hw_ok(r, list);
}

cJSON *hw_task_state(hw *h, const hw_task *t, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "requestID", t->request_id);
    cJSON_AddNumberToObject(o, "dispatchSwitch", t->dispatch_switch);
    cJSON_AddNumberToObject(o, "controlType", t->control_type);
    cJSON_AddItemToObject(o, "targetSOC", hw_num(t->target_soc, 3));
    cJSON_AddNumberToObject(o, "dispatchTime", t->dispatch_time);
    if (t->has_power)
        cJSON_AddNumberToObject(o, "powerDispatch", (double)t->power_w);
    else
        cJSON_AddNullToObject(o, "powerDispatch");
    cJSON_AddNumberToObject(o, "start_ms", (double)t->start_ms);
    cJSON *plants = cJSON_AddArrayToObject(o, "plants");
    for (size_t k = 0; k < t->n_subs; k++) {
        const hw_sub *s = &t->subs[k];
        hw_plant *p = &h->plants[s->plant];
        if (s->state == 1) hw_plant_advance(h, s->plant, now);
        cJSON *sj = cJSON_CreateObject();
        cJSON_AddStringToObject(sj, "plantCode", p->code);
        cJSON_AddNumberToObject(sj, "dispatchResult", s->result);
        if (s->result == 0)
            cJSON_AddStringToObject(sj, "remoteID", s->remote_id);
        else
            cJSON_AddNullToObject(sj, "remoteID");
        /* The state in fact, not as the 3-minute refresh reports it. */
        cJSON_AddNumberToObject(sj, "status", s->state);
        cJSON_AddBoolToObject(sj, "replaced", s->replaced);
        if (s->state == 1)
            cJSON_AddNullToObject(sj, "end_ms");
        else
            cJSON_AddNumberToObject(sj, "end_ms", (double)s->end_ms);
        cJSON_AddItemToObject(sj, "energy_kwh",
                              hw_num((s->state == 1 ? p->site.st.forced_wh : s->wh) / 1000, 3));
        cJSON_AddItemToArray(plants, sj);
    }
    return o;
}

void hw_tasks_free(hw *h)
{
    for (size_t t = 0; t < h->n_tasks; t++)
        free(h->tasks[t].subs);
    free(h->tasks);
    h->tasks = NULL;
    h->n_tasks = h->cap_tasks = 0;
}
