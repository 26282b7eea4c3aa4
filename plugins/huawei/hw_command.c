/*
 * Commands. Setpoints and releases become vpp/chargeAndDischarge tasks, DoD goes to vpp/dod
 * with the plant's battery dns, on/off to vpp/devOnOff with its inverter dns. Commands of one
 * command() call with identical parameters share a request (at most 100 plant codes or dns);
 * each chargeAndDischarge request gets a fresh requestID from the host's durable sequence.
 *
 * Signs: our setpoint W is + discharging; Huawei's powerDispatch is > 0 for charge and < 0
 * for discharge (seed 5.3.6), so powerDispatch = -W, dispatchSwitch 1 (charge) for W < 0 and
 * 2 (discharge) for W > 0. A release is a stop (dispatchSwitch 0). W == 0 ("hold 0 W") is
 * refused: powerDispatch 0 is invalid and a stop hands the battery back to its own mode.
 *
 * Never two vendor tasks from one command: when a charge/discharge request may have reached
 * the vendor but no usable answer came back, its commands are reported PENDING under the
 * request's requestID, and the task status (hw_task.c) tells whether the task exists. A
 * failure the core retries would go out with a new requestID and could start a second task.
 * Stops are the exception: sending one again does no harm, so they stay retryable failures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

enum { K_CD, K_DOD, K_ONOFF };

static const char *const api_of[] = {"vpp/chargeAndDischarge", "vpp/dod", "vpp/devOnOff"};
static const char *const quota_of[] = {"chargeAndDischarge", "dod", "devOnOff"};

/* What goes into the request body besides the plant codes / dns. */
typedef struct params {
    int kind;         /* K_* */
    int sw;           /* dispatchSwitch 0 stop, 1 charge, 2 discharge */
    int control;      /* chargeAndDischarge: 0 none, 1 SoC, 2 duration; devOnOff: 1 on, 2 off */
    long power;       /* powerDispatch, W, Huawei's sign */
    unsigned minutes; /* dispatchTime */
    double soc;       /* targetSOC */
    int dod;
} params;

typedef struct item {
    uint64_t id;
    char *code;  /* owned; the plant code */
    hw_strv dns; /* owned; battery or inverter dns (dod, devOnOff) */
} item;

/* One request: commands with identical parameters. */
typedef struct group {
    hw *s;
    params p;
    item *items; /* owned */
    size_t n, cap;
    size_t n_dns;
    int full;
    uint64_t request_id;
    int64_t sent_ms;    /* host clock when the request was handed to the host */
    struct group *next; /* while grouping */
} group;

static void group_free(group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->items[i].code);
        hw_strv_free(&g->items[i].dns);
    }
    free(g->items);
    free(g);
}

static int same_params(const params *a, const params *b)
{
    return a->kind == b->kind && a->sw == b->sw && a->control == b->control &&
           a->power == b->power && a->minutes == b->minutes && a->dod == b->dod &&
           (a->soc == b->soc || (isnan(a->soc) && isnan(b->soc)));
}

static void answer(hw *s, uint64_t id, gp_status st, int code, int retry, const char *msg,
                   const char *ref, const char *detail)
{
    gp_result r = hw_result(st, code, retry, msg, ref);
    r.detail = detail;
    H->command_result(s->h, id, &r);
}

static void fail(hw *s, uint64_t id, int code, const char *fmt, const char *arg)
{
    char msg[HW_MSG_LEN];
    snprintf(msg, sizeof msg, fmt, arg);
    answer(s, id, GP_FAILED, code, 0, msg, NULL, NULL);
}

/* ---- from gp_cmd to parameters -------------------------------------------------------- */

/* Fill p (and the dns to use) for c, or answer c now and return -1. */
static int classify(hw *s, const gp_cmd *c, params *p, const hw_plant **plant)
{
    const char *code = c->target.vendor_id;
    memset(p, 0, sizeof(*p));
    p->soc = NAN;
    if (!code || !*code) {
        fail(s, c->id, GP_E_REJECTED, "huawei: command for a device without a plant code%s", "");
        return -1;
    }
    *plant = hw_find_plant(s, c->target.local, code);
    if (c->kind == GP_CMD_SETPOINT || c->kind == GP_CMD_RELEASE) {
        if (*plant && !((*plant)->caps & GP_CAP_SETPOINT)) {
            fail(s, c->id, GP_E_UNSUPPORTED, "huawei: plant %s has no battery to dispatch", code);
            return -1;
        }
        p->kind = K_CD;
        double w = c->kind == GP_CMD_RELEASE ? 0 : c->value;
        if (!isfinite(w) || fabs(w) > 2e9) {
            fail(s, c->id, GP_E_REJECTED, "huawei: setpoint for %s is not a usable number", code);
            return -1;
        }
        p->power = lround(-w);
        if (c->kind == GP_CMD_RELEASE) return 0; /* a stop: dispatchSwitch 0, nothing else */
        if (p->power == 0) {
            fail(s, c->id, GP_E_UNSUPPORTED,
                 "huawei: %s: Huawei cannot hold 0 W; send release to return the plant to its "
                 "own mode",
                 code);
            return -1;
        }
        p->sw = w < 0 ? 1 : 2;
        if (!isnan(c->soc_target)) {
            if (!(c->soc_target >= 0 && c->soc_target <= 100)) {
                fail(s, c->id, GP_E_REJECTED, "huawei: soc_target for %s is outside 0..100", code);
                return -1;
            }
            p->control = 1;
            p->soc = c->soc_target;
            return 0;
        }
        p->control = 2;
        uint64_t min = c->duration_s ? ((uint64_t)c->duration_s + 59) / 60 : s->default_min;
        if (min > HW_MAX_MINUTES) {
            H->log(s->h, GP_LOG_WARN,
                   "huawei: %s: duration %u s is over Huawei's 24 h; dispatching for 24 h", code,
                   c->duration_s);
            min = HW_MAX_MINUTES;
        }
        p->minutes = (unsigned)min;
        return 0;
    }
    if (c->kind == GP_CMD_DOD) {
        if (!*plant || !(*plant)->batteries.n) {
            fail(s, c->id, GP_E_UNSUPPORTED, "huawei: plant %s has no battery dn for vpp/dod",
                 code);
            return -1;
        }
        /* The request takes 0..100 (20039), but a Huawei battery's end-of-discharge SoC is
         * 0..20 % (seed 5.3.8): the vendor would quietly use the closest allowed value. */
        if (!(c->value >= HW_DOD_MIN && c->value <= HW_DOD_MAX)) {
            char msg[HW_MSG_LEN];
            snprintf(msg, sizeof msg,
                     "huawei: dod %.4g for %s is outside %d..%d (Huawei batteries allow an "
                     "end-of-discharge SoC of 0..20 %%)",
                     c->value, code, HW_DOD_MIN, HW_DOD_MAX);
            answer(s, c->id, GP_FAILED, GP_E_REJECTED, 0, msg, NULL, NULL);
            return -1;
        }
        p->kind = K_DOD;
        p->dod = (int)lround(c->value);
        return 0;
    }
    if (c->kind == GP_CMD_ONOFF) {
        if (!*plant || !(*plant)->inverters.n) {
            fail(s, c->id, GP_E_UNSUPPORTED, "huawei: plant %s has no inverter dn for vpp/devOnOff",
                 code);
            return -1;
        }
        if (!isfinite(c->value)) {
            fail(s, c->id, GP_E_REJECTED, "huawei: on/off value for %s is not a number", code);
            return -1;
        }
        p->kind = K_ONOFF;
        p->control = c->value != 0 ? 1 : 2;
        return 0;
    }
    fail(s, c->id, GP_E_UNSUPPORTED, "huawei: command kind not supported for %s", code);
    return -1;
}

/* ---- grouping ------------------------------------------------------------------------- */

static int group_has(const group *g, const char *code)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->items[i].code, code) == 0) return 1;
    return 0;
}

static void add(hw *s, group **groups, const gp_cmd *c, const params *p, const hw_plant *plant)
{
    const hw_strv *dns = p->kind == K_DOD     ? &plant->batteries
                         : p->kind == K_ONOFF ? &plant->inverters
                                              : NULL;
    size_t need = p->kind == K_CD ? 1 : dns->n;
    if (need > HW_MAX_CODES) {
        fail(s, c->id, GP_E_UNSUPPORTED,
             "huawei: plant %s has more than 100 devices for this "
             "command",
             c->target.vendor_id);
        return;
    }
    group *g = *groups;
    for (; g; g = g->next) {
        if (g->full || !same_params(&g->p, p)) continue;
        size_t used = p->kind == K_CD ? g->n : g->n_dns;
        if (used + need > HW_MAX_CODES) {
            g->full = 1;
            continue;
        }
        /* A plant once per request: Huawei answers per plant code. */
        if (!group_has(g, c->target.vendor_id)) break;
    }
    if (!g) {
        g = hw_xcalloc(1, sizeof(*g));
        g->s = s;
        g->p = *p;
        g->next = *groups;
        *groups = g;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->items = hw_xrealloc(g->items, g->cap * sizeof(item));
    }
    item *it = &g->items[g->n++];
    memset(it, 0, sizeof(*it));
    it->id = c->id;
    it->code = hw_xstrdup(c->target.vendor_id);
    for (size_t i = 0; dns && i < dns->n; i++)
        hw_strv_push(&it->dns, dns->v[i]);
    g->n_dns += need;
}

/* ---- answers -------------------------------------------------------------------------- */

static void fail_all(group *g, const hw_err *err)
{
    for (size_t i = 0; i < g->n; i++)
        answer(g->s, g->items[i].id, GP_FAILED, err->code, err->retryable, err->msg, NULL, NULL);
}

/* A charge/discharge whose outcome is unknown (why: one line saying what went wrong): the
 * command becomes a task to poll under the request's requestID. A stop fails retryably
 * instead: sending it again is harmless. */
static void cd_unknown(group *g, const item *it, int code, const char *why)
{
    char msg[HW_MSG_LEN + 120];
    if (g->p.sw == 0) {
        snprintf(msg, sizeof msg, "%s; the stop will be sent again", why);
        answer(g->s, it->id, GP_FAILED, code, 1, msg, NULL, NULL);
        return;
    }
    char ref[32];
    snprintf(ref, sizeof ref, "%llu", (unsigned long long)g->request_id);
    snprintf(msg, sizeof msg, "%s; outcome unknown: polling request %s instead of sending it again",
             why, ref);
    answer(g->s, it->id, GP_PENDING, 0, 0, msg, ref, NULL);
}

/* The whole request's answer is missing or unusable but the vendor may have acted. */
static void cd_unknown_all(group *g, const hw_err *err)
{
    if (g->p.sw != 0) {
        hw_sent_note(g->s, g->request_id, g->sent_ms, 1);
        H->log(g->s->h, GP_LOG_WARN,
               "%s; outcome of request %llu (%zu plant(s)) unknown: polling its task status "
               "instead of sending it again",
               err->msg, (unsigned long long)g->request_id, g->n);
    }
    for (size_t i = 0; i < g->n; i++)
        cd_unknown(g, &g->items[i], err->code, err->msg);
}

/* chargeAndDischarge: the entries for one plant (one per ESS) decide its outcome. */
static void cd_item(group *g, const item *it, const gp_json *list)
{
    hw *s = g->s;
    const char *api = api_of[K_CD];
    size_t found = 0, ok = 0, refused = 0, bad = 0;
    const gp_json *first = NULL;
    for (size_t i = 0; i < H->json_len(list); i++) {
        const gp_json *e = H->json_at(list, i);
        const char *code = hw_jstr(e, "plantCode");
        if (!code || strcmp(code, it->code) != 0) continue;
        double res = hw_jnum(e, "dispatchResult");
        found++;
        if (res == 0) {
            ok++;
            if (!first) first = e;
        } else if (res == 1) {
            refused++;
        } else {
            bad++;
        }
    }
    char msg[HW_MSG_LEN];
    if (!ok) {
        if (found && refused == found) {
            snprintf(msg, sizeof msg, "huawei: %s: vendor refused the task for this plant (%s)",
                     api, it->code);
            answer(s, it->id, GP_FAILED, GP_E_REJECTED, 0, msg, NULL, NULL);
        } else {
            /* Accepted as a whole, silent or garbled about this plant: it may run there. */
            snprintf(msg, sizeof msg,
                     found ? "huawei: %s: dispatchResult for plant %s is missing or not 0/1"
                           : "huawei: %s: no result for plant %s in the answer",
                     api, it->code);
            cd_unknown(g, it, GP_E_PROTOCOL, msg);
        }
        return;
    }
    char ref[32];
    snprintf(ref, sizeof ref, "%llu", (unsigned long long)g->request_id);
    gp_str *d = H->str_new();
    H->str_printf(d, "{\"requestID\":%s,\"remoteID\":", ref);
    H->str_json(d, hw_jstr(first, "remoteID"));
    H->str_printf(d, ",\"sn\":");
    H->str_json(d, hw_jstr(first, "sn"));
    H->str_printf(d, "}");
    if (g->p.sw == 0 && refused) {
        snprintf(msg, sizeof msg,
                 "huawei: %s: vendor refused the stop for %zu of the %zu batteries of plant %s",
                 api, refused, found, it->code);
        answer(s, it->id, GP_FAILED, GP_E_REJECTED, 0, msg, NULL, H->str_data(d, NULL));
    } else if (g->p.sw == 0 && bad) {
        snprintf(msg, sizeof msg,
                 "huawei: %s: dispatchResult for plant %s is missing or not 0/1 for %zu of its %zu "
                 "batteries; the stop will be sent again",
                 api, it->code, bad, found);
        answer(s, it->id, GP_FAILED, GP_E_PROTOCOL, 1, msg, NULL, H->str_data(d, NULL));
    } else if (g->p.sw == 0) {
        answer(s, it->id, GP_DONE, 0, 0, NULL, NULL, H->str_data(d, NULL));
    } else if (refused || bad) {
        /* Huawei runs the task on every ESS of the plant that took it: a task to poll. */
        snprintf(msg, sizeof msg,
                 "huawei: %s: plant %s: %zu of its %zu batteries did not take the task "
                 "(dispatchResult %s); it runs on the others",
                 api, it->code, refused + bad, found, bad ? "1 or not 0/1" : "1");
        H->log(s->h, GP_LOG_WARN, "%s", msg);
        answer(s, it->id, GP_PENDING, 0, 0, msg, ref, H->str_data(d, NULL));
    } else {
        answer(s, it->id, GP_PENDING, 0, 0, NULL, ref, H->str_data(d, NULL));
    }
    H->str_free(d);
}

static void cd_answer(group *g, const gp_json *list)
{
    if (g->p.sw != 0) {
        /* The request arrived when any of its plants took the task. Noted before the results
         * go out, so no poll can come first. */
        int confirmed = 0;
        for (size_t k = 0; k < H->json_len(list) && !confirmed; k++) {
            const gp_json *e = H->json_at(list, k);
            const char *code = hw_jstr(e, "plantCode");
            for (size_t i = 0; code && i < g->n && !confirmed; i++)
                confirmed =
                    strcmp(code, g->items[i].code) == 0 && hw_jnum(e, "dispatchResult") == 0;
        }
        hw_sent_note(g->s, g->request_id, g->sent_ms, !confirmed);
    }
    for (size_t i = 0; i < g->n; i++)
        cd_item(g, &g->items[i], list);
}

/* dod / devOnOff: every dn of the plant must report result 0, and a DoD the vendor says it
 * applied (setDOD) must be the one asked for: else the core would believe a DoD in force
 * that is not. */
static void dn_item(group *g, const item *it, const gp_json *list)
{
    hw *s = g->s;
    const char *api = api_of[g->p.kind];
    char msg[HW_MSG_LEN];
    const char *other_dn = NULL; /* first battery whose setDOD differs, borrowed */
    double other_dod = NAN;
    gp_str *d = H->str_new();
    H->str_printf(d, "{\"results\":[");
    for (size_t k = 0; k < it->dns.n; k++) {
        const gp_json *e = NULL;
        for (size_t i = 0; i < H->json_len(list) && !e; i++) {
            const char *dn = hw_jstr(H->json_at(list, i), "dn");
            if (dn && strcmp(dn, it->dns.v[k]) == 0) e = H->json_at(list, i);
        }
        double res = e ? hw_jnum(e, "result") : NAN;
        const char *what = g->p.kind == K_DOD ? "DoD setting" : "on/off command";
        if (!e || (res != 0 && res != 1)) {
            snprintf(msg, sizeof msg, "huawei: %s: %s for device %s of plant %s", api,
                     e ? "result missing or not 0/1" : "no result", it->dns.v[k], it->code);
            answer(s, it->id, GP_FAILED, GP_E_PROTOCOL, 0, msg, NULL, NULL);
            H->str_free(d);
            return;
        }
        if (res == 1) {
            snprintf(msg, sizeof msg, "huawei: %s: vendor refused the %s for device %s of plant %s",
                     api, what, it->dns.v[k], it->code);
            answer(s, it->id, GP_FAILED, GP_E_REJECTED, 0, msg, NULL, NULL);
            H->str_free(d);
            return;
        }
        H->str_printf(d, "%s{\"dn\":", k ? "," : "");
        H->str_json(d, it->dns.v[k]);
        double set = hw_jnum(e, "setDOD");
        if (g->p.kind == K_DOD && isfinite(set)) {
            H->str_printf(d, ",\"setDOD\":%.17g", set);
            if (set != g->p.dod && !other_dn) {
                other_dn = it->dns.v[k];
                other_dod = set;
            }
        }
        H->str_printf(d, "}");
    }
    H->str_printf(d, "]}");
    if (other_dn) {
        snprintf(msg, sizeof msg,
                 "huawei: %s: battery %s of plant %s applied DoD %.4g %%, not the requested %d %%",
                 api, other_dn, it->code, other_dod, g->p.dod);
        answer(s, it->id, GP_FAILED, GP_E_REJECTED, 0, msg, NULL, H->str_data(d, NULL));
    } else {
        answer(s, it->id, GP_DONE, 0, 0, NULL, NULL, H->str_data(d, NULL));
    }
    H->str_free(d);
}

static void on_answer(void *ud, const gp_http_resp *r)
{
    group *g = ud;
    const char *api = api_of[g->p.kind];
    hw_err err;
    gp_json *doc = hw_answer(g->s, api, quota_of[g->p.kind], r, &err);
    if (!doc) {
        if (g->p.kind == K_CD && err.unknown)
            cd_unknown_all(g, &err);
        else
            fail_all(g, &err);
        group_free(g);
        return;
    }
    const gp_json *list = H->json_get(doc, "data");
    if (H->json_type(list) != GP_JSON_ARRAY) {
        hw_err_set(&err, GP_E_PROTOCOL, 0, "huawei: %s: data is not a list of results", api);
        if (g->p.kind == K_CD)
            cd_unknown_all(g, &err); /* failCode 0: the vendor took the request */
        else
            fail_all(g, &err);
    } else if (g->p.kind == K_CD) {
        cd_answer(g, list);
    } else {
        for (size_t i = 0; i < g->n; i++)
            dn_item(g, &g->items[i], list);
    }
    H->json_free(doc);
    group_free(g);
}

static void on_drop(void *ud)
{
    group_free(ud);
}

static void body_of(group *g, gp_str *b)
{
    const params *p = &g->p;
    if (p->kind == K_CD) {
        char **codes = hw_xcalloc(g->n, sizeof(char *));
        for (size_t i = 0; i < g->n; i++)
            codes[i] = g->items[i].code;
        H->str_printf(b, "{\"plantCodes\":\"");
        hw_join(b, codes, g->n);
        free(codes);
        H->str_printf(b, "\",\"dispatchSwitch\":%d", p->sw);
        if (p->control == 1) H->str_printf(b, ",\"controlType\":1,\"targetSOC\":%.10g", p->soc);
        if (p->control == 2) H->str_printf(b, ",\"controlType\":2,\"dispatchTime\":%u", p->minutes);
        if (p->sw) H->str_printf(b, ",\"powerDispatch\":%ld", p->power);
        H->str_printf(b, ",\"requestID\":%llu}", (unsigned long long)g->request_id);
        return;
    }
    H->str_printf(b, "{\"dns\":\"");
    for (size_t i = 0; i < g->n; i++) {
        if (i) H->str_printf(b, ",");
        hw_join(b, g->items[i].dns.v, g->items[i].dns.n);
    }
    if (p->kind == K_DOD)
        H->str_printf(b, "\",\"dod\":%d}", p->dod);
    else
        H->str_printf(b, "\",\"controlType\":%d}", p->control);
}

static void send_group(hw *s, group *g)
{
    if (g->p.kind == K_CD) g->request_id = H->next_request_id(s->h);
    g->sent_ms = H->now_ms(s->h);
    gp_str *b = H->str_new();
    body_of(g, b);
    hw_err err;
    if (hw_post(s, api_of[g->p.kind], quota_of[g->p.kind], H->str_data(b, NULL), GP_PRIO_CONTROL, 1,
                on_answer, on_drop, g, &err) != 0) {
        fail_all(g, &err);
        group_free(g);
    }
    H->str_free(b);
}

void hw_command(hw *s, const gp_cmd *c, size_t n)
{
    group *groups = NULL;
    for (size_t i = 0; i < n; i++) {
        params p;
        const hw_plant *plant = NULL;
        if (classify(s, &c[i], &p, &plant) == 0) add(s, &groups, &c[i], &p, plant);
    }
    /* Oldest group first, so requests go out in the order the commands came. */
    group *rev = NULL;
    while (groups) {
        group *g = groups;
        groups = g->next;
        g->next = rev;
        rev = g;
    }
    while (rev) {
        group *g = rev;
        rev = g->next;
        g->next = NULL;
        if (!s->token) {
            hw_err err;
            hw_err_set(&err, GP_E_AUTH, 0, "huawei: %s: not logged in", api_of[g->p.kind]);
            fail_all(g, &err);
            group_free(g);
            continue;
        }
        send_group(s, g);
    }
}
