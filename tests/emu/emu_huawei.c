/*
 * The Huawei vendor of gp-emu: its route table, options, sessions (XSRF-TOKEN, 30 minutes
 * idle), per-API quotas, the {success, failCode, message, data} envelope, login and logout,
 * and the control hooks (state, session expiry, fault answers).
 */
#include "emu_huawei.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Per-minute limits of each NBI account, from each interface's "Invoking Suggestion". */
static const size_t quota_per_min[HW_NAPI] = {
    [HW_LOGIN] = 1,      [HW_LOGOUT] = 1,   [HW_PLANTS] = 1, [HW_DEVICES] = 10, [HW_KPI] = 10,
    [HW_DISPATCH] = 100, [HW_STATUS] = 100, [HW_DOD] = 10,   [HW_ONOFF] = 10,
};

static const struct {
    int code;
    const char *text;
} messages[] = {
    {HW_E_NOT_LOGGED_IN, "You are not in the login state. You need to log in again."},
    {401, "You do not have the related data interface permission."},
    {HW_E_QUOTA, "The interface access frequency is too high."},
    {HW_E_NO_USER, "The third-party system ID does not exist."},
    {HW_E_SERVER, "The server is abnormal."},
    {HW_E_NO_PLANT, "The system does not have the desired power plant resources."},
    {HW_E_NO_PLANTS, "The plant list cannot be empty."},
    {HW_E_NO_DEVICES, "The device list cannot be empty."},
    {HW_E_DEVTYPE, "The device type is incorrect."},
    {HW_E_PLANTS_100, "A maximum of 100 plants can be queried at a time."},
    {HW_E_DEVICES_100, "A maximum of 100 devices can be queried at a time."},
    {HW_E_SWITCH_TYPE, "The switch type is incorrect. 1 and 2 indicate switch-on and "
                       "switch-off respectively."},
    {HW_E_DOD, "In the input parameters, the DOD value is out of range. The allowed range is "
               "[0, 100]."},
    {HW_E_DISPATCH_PARAM, "The charge/discharge parameter value is invalid."},
    {HW_E_CONTROL_TYPE, "The control type cannot be empty for forced charge and discharge."},
    {HW_E_TARGET_SOC, "The target SOC for charge/discharge is empty or invalid."},
    {HW_E_DURATION, "The charge/discharge duration is empty or invalid."},
    {HW_E_REQUEST_ID, "The unique ID of a charge/discharge task cannot be empty."},
    {HW_E_PLANT_AUTH, "Unauthorized PV plants exist in the input parameters."},
    {HW_E_DEVICE_AUTH, "Unauthorized devices exist in the input parameters."},
    {HW_E_POWER, "The forced charge/discharge power in the input parameters is invalid."},
    {HW_E_DUP_REQUEST, "Duplicate charging and discharging task ID"},
    {20049, "Failed to deliver the charging and discharging task."},
    {HW_E_NO_TASK, "The charging and discharging task query parameter does not exist."},
    {20051, "Failed to set the battery DOD."},
    {20052, "Failed to start or shut down the inverter."},
    {HW_E_SOC_UNSUPPORTED, "SOC control is not supported and an update is needed."},
    {HW_E_PASSWORD, "The username or password of the third-party system is incorrect."},
    {HW_E_PAGE_NO, "The value of pageNo cannot be empty."},
    {HW_E_PAGE_SIZE, "The value of pageSize cannot be empty."},
    {HW_E_PAGE_SIZE_RANGE, "The value of pageSize is out of range. The allowed range is {10, "
                           "20, 30, 50, 100}."},
    {HW_E_PAGE_NO_RANGE, "The value of pageNo is smaller than 0."},
};

static const char *message_of(int code)
{
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (messages[i].code == code) return messages[i].text;
    return NULL;
}

/* ---- envelope and helpers --------------------------------------------------------------- */

static void put_json(emu_resp *r, cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    gp_str_reset(&r->body);
    gp_str_puts(&r->body, text);
    cJSON_free(text);
    cJSON_Delete(j);
}

void hw_ok(emu_resp *r, cJSON *data)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "success", 1);
    cJSON_AddItemToObject(j, "data", data ? data : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "failCode", 0);
    cJSON_AddNullToObject(j, "message");
    put_json(r, j);
    emu_resp_code(r, 0);
}

/* The failure envelope; login and logout answer without "data", as in the document. `msg`
 * (NULL: the document's text for the code) goes in "message". */
static void error_envelope(emu_resp *r, int code, int with_data, const char *msg)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "success", 0);
    if (with_data) cJSON_AddNullToObject(j, "data");
    cJSON_AddNumberToObject(j, "failCode", code);
    if (!msg) msg = message_of(code);
    if (msg)
        cJSON_AddStringToObject(j, "message", msg);
    else
        cJSON_AddNullToObject(j, "message");
    put_json(r, j);
    emu_resp_code(r, code);
    r->quota_hit = code == HW_E_QUOTA;
}

void hw_error(emu_resp *r, int code)
{
    error_envelope(r, code, 1, NULL);
}

void hw_error_msg(emu_resp *r, int code, const char *msg)
{
    error_envelope(r, code, 1, msg);
}

/* The server is Java: a JSON string of digits binds to an Integer or Double parameter too. */
int hw_number(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return isfinite(*out) ? 1 : -1;
    }
    const char *t = cJSON_GetStringValue(v);
    if (!t || !*t) return t ? 0 : -1;
    char *end;
    errno = 0;
    *out = strtod(t, &end);
    return *end || errno || !isfinite(*out) ? -1 : 1;
}

int hw_int(const cJSON *o, const char *key, long long *out)
{
    double d;
    int rc = hw_number(o, key, &d);
    if (rc <= 0) return rc;
    if (d != floor(d) || fabs(d) > 9007199254740992.0) return -1;
    *out = (long long)d;
    return 1;
}

cJSON *hw_body(const emu_req *req, emu_resp *r)
{
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    if (cJSON_IsObject(j)) return j;
    cJSON_Delete(j);
    r->status = 400;
    error_envelope(r, HW_E_SERVER, 1, "the request body is not a JSON object");
    return NULL;
}

void hw_iso(const hw *h, int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)((ms - (ms % 1000 + 1000) % 1000) / 1000) + h->utc_offset_min * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    int off = h->utc_offset_min < 0 ? -h->utc_offset_min : h->utc_offset_min;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, h->utc_offset_min < 0 ? '-' : '+',
             off / 60, off % 60);
}

cJSON *hw_num(double v, int decimals)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    double f = decimals == 1 ? 10 : 1000;
    double x = round(v * f) / f;
    return cJSON_CreateNumber(x == 0 ? 0 : x); /* no "-0" */
}

/* ---- sessions --------------------------------------------------------------------------- */

static void drop_expired(hw *h, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < h->n_sessions; i++)
        if (now - h->sessions[i].last_ms <= HW_IDLE_MS) h->sessions[w++] = h->sessions[i];
    h->n_sessions = w;
}

static hw_session *find_session(hw *h, const char *token, int64_t now)
{
    drop_expired(h, now);
    for (size_t i = 0; token && i < h->n_sessions; i++)
        if (strcmp(h->sessions[i].token, token) == 0) return &h->sessions[i];
    return NULL;
}

static void end_session(hw *h, const char *token)
{
    for (size_t i = 0; token && i < h->n_sessions; i++) {
        if (strcmp(h->sessions[i].token, token) == 0) {
            h->sessions[i] = h->sessions[--h->n_sessions];
            return;
        }
    }
}

/* "x-" and 96 characters of [0-9a-z], like the document's tokens. */
static void new_token(char *out, size_t len)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[96];
    size_t got = 0;
    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0 && errno != EINTR) abort(); /* no randomness: nothing sensible to do */
        if (n > 0) got += (size_t)n;
    }
    size_t k = 0;
    out[k++] = 'x';
    out[k++] = '-';
    for (size_t i = 0; i < sizeof rnd && k + 1 < len; i++)
        out[k++] = alphabet[rnd[i] % 36];
    out[k] = 0;
}

const hw_session *hw_begin(hw *h, const emu_req *req, emu_resp *r, enum hw_api api)
{
    hw_session *s = find_session(h, emu_req_header(req, "XSRF-TOKEN"), req->now_ms);
    if (!s) {
        hw_error(r, HW_E_NOT_LOGGED_IN);
        return NULL;
    }
    s->last_ms = req->now_ms;
    if (emu_quota_hit(&h->quota[api], req->now_ms)) {
        hw_error(r, HW_E_QUOTA);
        return NULL;
    }
    return s;
}

/* A string member under either spelling. */
static const char *str_member(const cJSON *o, const char *a, const char *b)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, a));
    return v ? v : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, b));
}

static void login(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    /* Counted before the credentials are looked at: the limit is what stops guessing. */
    if (emu_quota_hit(&h->quota[HW_LOGIN], req->now_ms)) {
        error_envelope(r, HW_E_QUOTA, 0, NULL);
        return;
    }
    cJSON *b = hw_body(req, r);
    if (!b) return;
    /* V7 spells them username/password; the older /thirdData/login userName/systemCode. */
    const char *user = str_member(b, "username", "userName");
    const char *pass = str_member(b, "password", "systemCode");
    int code = !user || strcmp(user, h->user) != 0  ? HW_E_NO_USER
               : !pass || strcmp(pass, h->password) ? HW_E_PASSWORD
                                                    : HW_OK;
    cJSON_Delete(b);
    if (code) {
        error_envelope(r, code, 0, NULL);
        return;
    }
    drop_expired(h, req->now_ms);
    if (h->n_sessions == h->cap_sessions) {
        h->cap_sessions = h->cap_sessions ? 2 * h->cap_sessions : 8;
        h->sessions = gp_xrealloc(h->sessions, h->cap_sessions * sizeof(hw_session));
    }
    hw_session *s = &h->sessions[h->n_sessions++];
    new_token(s->token, sizeof s->token);
    s->last_ms = req->now_ms;
    /* As in the document's example: one set-cookie header carrying both cookies, the token
     * in xsrf-token (V500R007C00SPC110 notes) and xsrftoken (the V7 example). */
    char cookie[200], jsession[40];
    snprintf(jsession, sizeof jsession, "%016llX%016llX",
             (unsigned long long)emu_hash(h->seed, (uint64_t)req->now_ms, h->n_sessions),
             (unsigned long long)emu_hash(h->seed, (uint64_t)req->now_ms, ~h->n_sessions));
    snprintf(cookie, sizeof cookie, "JSESSIONID=%s; Path=/; Secure; HttpOnly, XSRF-TOKEN=%s",
             jsession, s->token);
    emu_resp_header(r, "set-cookie", cookie);
    emu_resp_header(r, "xsrf-token", s->token);
    emu_resp_header(r, "xsrftoken", s->token);
    gp_str_puts(&r->body, "{\"success\":true,\"failCode\":0,\"message\":null}");
    emu_resp_code(r, 0);
}

static void logout(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    cJSON *b = cJSON_ParseWithLength(req->body, req->body_len);
    const char *tok = str_member(b, "xsrftoken", "xsrfToken");
    if (!tok) tok = emu_req_header(req, "XSRF-TOKEN");
    hw_session *s = find_session(h, tok, req->now_ms);
    if (!s) {
        error_envelope(r, HW_E_NOT_LOGGED_IN, 0, NULL);
    } else if (emu_quota_hit(&h->quota[HW_LOGOUT], req->now_ms)) {
        s->last_ms = req->now_ms;
        error_envelope(r, HW_E_QUOTA, 0, NULL);
    } else {
        end_session(h, s->token);
        gp_str_puts(&r->body, "{\"success\":true,\"failCode\":0,\"message\":null}");
        emu_resp_code(r, 0);
    }
    cJSON_Delete(b);
}

/* ---- control hooks ---------------------------------------------------------------------- */

static void state(void *v, int64_t now, const char *plant, gp_str *out)
{
    hw *h = v;
    drop_expired(h, now);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "now_ms", (double)now);
    cJSON_AddNumberToObject(j, "sessions", (double)h->n_sessions);
    cJSON *plants = cJSON_AddArrayToObject(j, "plants");
    long only = plant ? hw_find_plant(h, plant) : -1;
    for (uint32_t i = 0; i < h->n_plants; i++) {
        if (plant && (long)i != only) continue;
        hw_plant_advance(h, i, now);
        cJSON_AddItemToArray(plants, hw_plant_state(h, i, now));
    }
    cJSON *tasks = cJSON_AddArrayToObject(j, "tasks");
    for (size_t t = 0; t < h->n_tasks; t++) {
        int show = !plant;
        for (size_t k = 0; !show && k < h->tasks[t].n_subs; k++)
            show = (long)h->tasks[t].subs[k].plant == only;
        if (show) cJSON_AddItemToArray(tasks, hw_task_state(h, &h->tasks[t], now));
    }
    char *text = cJSON_PrintUnformatted(j);
    gp_str_puts(out, text);
    cJSON_free(text);
    cJSON_Delete(j);
}

static size_t expire_sessions(void *v)
{
    hw *h = v;
    size_t n = h->n_sessions;
    h->n_sessions = 0;
    return n;
}

static void fail(void *v, const emu_req *req, int code, emu_resp *r)
{
    (void)v;
    int bare =
        strcmp(req->path, HW_BASE "/login") == 0 || strcmp(req->path, HW_BASE "/logout") == 0;
    error_envelope(r, code, !bare, NULL);
}

static void auth_expired(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    end_session(h, emu_req_header(req, "XSRF-TOKEN"));
    fail(v, req, HW_E_NOT_LOGGED_IN, r);
}

/* ---- options, create, destroy ------------------------------------------------------------ */

/* "+08:00", "-05:30", "Z" or "+00:00" into minutes (a multiple of 15). */
static int parse_offset(const char *s, int *out)
{
    if (strcmp(s, "Z") == 0) {
        *out = 0;
        return 0;
    }
    int hh, mm;
    char sign, extra;
    if (sscanf(s, "%c%2d:%2d%c", &sign, &hh, &mm, &extra) != 3 || (sign != '+' && sign != '-') ||
        hh > 14 || mm > 59 || mm % 15 != 0 || strlen(s) != 6)
        return -1;
    *out = (sign == '-' ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

/* A non-negative integer option value. */
static int set_uint(const char *key, const char *val, size_t *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long k = strtoull(val, &end, 10);
    if (*val && !*end && !errno && *val != '-') {
        *out = (size_t)k;
        return 0;
    }
    snprintf(err, errlen, "--set %s=%s: give an integer >= 0", key, val);
    return -1;
}

static int parse_sets(hw *h, const emu_opts *o, size_t *no_soc_every, size_t *count_refused,
                      char *err, size_t errlen)
{
    for (const char *const *p = o->sets; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        size_t klen = eq ? (size_t)(eq - *p) : strlen(*p);
        const char *val = eq ? eq + 1 : "";
        if (klen == 10 && strncmp(*p, "utc_offset", klen) == 0) {
            if (parse_offset(val, &h->utc_offset_min) == 0) continue;
            snprintf(err, errlen, "--set utc_offset=%s: give +HH:MM or -HH:MM (15-minute steps)",
                     val);
            return -1;
        }
        if (klen == 20 && strncmp(*p, "no_soc_control_every", klen) == 0) {
            if (set_uint("no_soc_control_every", val, no_soc_every, err, errlen)) return -1;
            continue;
        }
        if (klen == 20 && strncmp(*p, "quota_counts_refused", klen) == 0) {
            if (set_uint("quota_counts_refused", val, count_refused, err, errlen)) return -1;
            continue;
        }
        snprintf(err, errlen,
                 "--set %s: unknown huawei option (known: utc_offset, no_soc_control_every, "
                 "quota_counts_refused)",
                 *p);
        return -1;
    }
    return 0;
}

static void destroy(void *v)
{
    hw *h = v;
    if (!h) return;
    hw_tasks_free(h);
    for (int a = 0; a < HW_NAPI; a++)
        emu_quota_free(&h->quota[a]);
    free(h->plants);
    free(h->sessions);
    free(h->user);
    free(h->password);
    free(h);
}

static void *create(const emu_opts *o, char *err, size_t errlen)
{
    if (o->plants > HW_MAX_PLANTS) {
        snprintf(err, errlen, "--plants %zu: the huawei emulator serves at most %d", o->plants,
                 HW_MAX_PLANTS);
        return NULL;
    }
    hw *h = gp_xcalloc(1, sizeof(hw));
    size_t no_soc_every = 0, count_refused = 1;
    if (parse_sets(h, o, &no_soc_every, &count_refused, err, errlen) != 0) {
        destroy(h);
        return NULL;
    }
    h->seed = o->seed;
    sim_phys_world_init(&h->world, o->seed);
    h->user = gp_xstrdup(o->user);
    h->password = gp_xstrdup(o->password);
    for (int a = 0; a < HW_NAPI; a++)
        emu_quota_init(&h->quota[a], quota_per_min[a], 60000, count_refused != 0);
    h->next_remote = 70000000; /* remoteIDs look like the document's "12345678" */
    hw_plants_build(h, o, no_soc_every);
    return h;
}

static const emu_route routes[] = {
    {"POST", HW_BASE "/login", "login", login},
    {"POST", HW_BASE "/logout", "logout", logout},
    {"POST", HW_BASE "/plants", "plants", hw_plants},
    {"POST", HW_BASE "/devices", "devices", hw_devices},
    {"POST", HW_BASE "/vpp/plantRealtimeKpi", "plantRealtimeKpi", hw_kpi},
    {"POST", HW_BASE "/vpp/chargeAndDischarge", "chargeAndDischarge", hw_dispatch},
    {"POST", HW_BASE "/vpp/chargeAndDischargeStatus", "chargeAndDischargeStatus", hw_status},
    {"POST", HW_BASE "/vpp/dod", "dod", hw_dod},
    {"POST", HW_BASE "/vpp/devOnOff", "devOnOff", hw_onoff},
};

const emu_vendor emu_huawei = {
    .name = "huawei",
    .routes = routes,
    .n_routes = sizeof routes / sizeof routes[0],
    .create = create,
    .destroy = destroy,
    .state = state,
    .expire_sessions = expire_sessions,
    .fail = fail,
    .auth_expired = auth_expired,
};
