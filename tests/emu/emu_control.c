/* The control API: one small handler per endpoint, dispatched by method and path. */
#include "emu_control.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void error(emu_resp *r, int status, const char *msg)
{
    r->status = status;
    gp_str_reset(&r->body);
    gp_str_puts(&r->body, "{\"error\":");
    gp_str_json(&r->body, msg);
    gp_str_puts(&r->body, "}");
}

/* A query argument as an unsigned integer (dflt when absent); -1 when malformed. */
static int query_u64(const emu_req *req, const char *name, uint64_t dflt, uint64_t *out)
{
    const char *v = emu_req_query(req, name);
    *out = dflt;
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') return -1;
    *out = n;
    return 0;
}

static cJSON *parse_body(const emu_req *req, emu_resp *r)
{
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        error(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

static void requests(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    if (strcmp(req->method, "DELETE") == 0) {
        gp_str_printf(&r->body, "{\"deleted\":%zu}", emu_log_clear(&c->log));
        return;
    }
    uint64_t since, limit;
    if (query_u64(req, "since", 0, &since) || query_u64(req, "limit", 0, &limit)) {
        error(r, 400, "since and limit must be unsigned integers");
        return;
    }
    emu_log_json(&c->log, since, (size_t)limit, &r->body);
}

static void faults(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    if (strcmp(req->method, "DELETE") == 0) {
        gp_str_printf(&r->body, "{\"deleted\":%zu}", emu_faults_clear(&c->faults));
    } else if (strcmp(req->method, "GET") == 0) {
        gp_str_puts(&r->body, "{\"faults\":");
        emu_faults_json(&c->faults, &r->body);
        gp_str_puts(&r->body, "}");
    } else {
        cJSON *j = parse_body(req, r);
        if (!j) return;
        char err[200];
        uint64_t id = emu_faults_add(&c->faults, j, err, sizeof err);
        cJSON_Delete(j);
        if (id)
            gp_str_printf(&r->body, "{\"id\":%llu}", (unsigned long long)id);
        else
            error(r, 400, err);
    }
}

static void clock_json(emu_ctx *c, emu_resp *r)
{
    gp_str_printf(&r->body, "{\"now_ms\":%lld,\"speed\":", (long long)emu_clock_now(&c->clock));
    gp_str_json_num(&r->body, c->clock.speed);
    gp_str_puts(&r->body, "}");
}

/* A non-negative finite number member, or -1 (absent) / -2 (bad). */
static double member(const cJSON *j, const char *key, double max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return -1;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > max)
        return -2;
    return v->valuedouble;
}

static void clock_set(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    cJSON *j = parse_body(req, r);
    if (!j) return;
    double speed = member(j, "speed", 1e6);
    double adv_s = member(j, "advance_s", 1e9), adv_ms = member(j, "advance_ms", 1e12);
    int unknown = 0;
    for (const cJSON *m = j->child; m; m = m->next)
        unknown += strcmp(m->string, "speed") && strcmp(m->string, "advance_s") &&
                   strcmp(m->string, "advance_ms");
    cJSON_Delete(j);
    if (speed == -2 || adv_s == -2 || adv_ms == -2 || unknown ||
        (speed < 0 && adv_s < 0 && adv_ms < 0)) {
        error(r, 400,
              "clock: give \"speed\" (0 to 1e6), \"advance_s\" (0 to 1e9) and/or "
              "\"advance_ms\" (0 to 1e12)");
        return;
    }
    if (speed >= 0) emu_clock_set_speed(&c->clock, speed);
    if (adv_s > 0) emu_clock_advance(&c->clock, llround(adv_s * 1000));
    if (adv_ms > 0) emu_clock_advance(&c->clock, llround(adv_ms));
    clock_json(c, r);
}

/* method, path (after /_emu), handler */
typedef struct ctl_route {
    const char *method, *path;
    void (*fn)(emu_ctx *c, const emu_req *req, emu_resp *r);
} ctl_route;

static void state(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    c->vendor->state(c->vstate, req->now_ms, emu_req_query(req, "plant"), &r->body);
}

static void clock_get(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    (void)req;
    clock_json(c, r);
}

static void expire(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    (void)req;
    gp_str_printf(&r->body, "{\"expired\":%zu}", c->vendor->expire_sessions(c->vstate));
}

static void stats(emu_ctx *c, const emu_req *req, emu_resp *r)
{
    (void)req;
    emu_stats_json(&c->stats, &r->body);
}

static const ctl_route routes[] = {
    {"GET", "/requests", requests},     {"DELETE", "/requests", requests},
    {"GET", "/state", state},           {"GET", "/faults", faults},
    {"POST", "/faults", faults},        {"DELETE", "/faults", faults},
    {"GET", "/clock", clock_get},       {"POST", "/clock", clock_set},
    {"POST", "/tokens/expire", expire}, {"GET", "/stats", stats},
};

void emu_control_handle(emu_ctx *c, const emu_req *req, emu_resp *resp)
{
    const char *sub = req->path + strlen("/_emu");
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, sub) != 0) continue;
        path_known = 1;
        if (strcmp(routes[i].method, req->method) == 0) {
            routes[i].fn(c, req, resp);
            return;
        }
    }
    error(resp, path_known ? 405 : 404,
          path_known ? "method not allowed" : "no such control endpoint (see tests/emu/README.md)");
}
