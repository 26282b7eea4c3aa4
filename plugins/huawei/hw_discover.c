/*
 * Discovery: the account's plants (POST plants, every page), then their devices (POST
 * devices, at most 100 plant codes per call, every page). Each plant becomes one gridpilot
 * device named by its plant code: READ always; SETPOINT and SOC_TARGET when it has a battery
 * (devTypeId 20815), DOD when that battery has a dn; ONOFF when it has an inverter (20822)
 * with a dn. The dns are kept for vpp/dod and vpp/devOnOff.
 *
 * Requests go one after the other. A discovery without a session logs in first; one that
 * meets failCode 305 logs in once (unless it just did) and repeats the request. The plant
 * table is replaced only when the whole discovery succeeded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

#define MAX_PAGES 10000 /* a runaway pageCount must not page forever */

enum { D_PLANTS, D_DEVICES };

struct hw_disc {
    hw *s;
    int stage;
    int logged_in;   /* this discovery logged in already */
    int resent;      /* requests sent again after a "session changed" answer */
    uint32_t page;   /* page of the current listing, from 1 */
    size_t seen;     /* entries on the pages of the current listing so far */
    hw_plant *found; /* owned; sorted by code once the plant list is complete */
    size_t n, cap;
    size_t chunk;   /* first plant of the current devices call */
    size_t no_code; /* plant entries without a usable plantCode */
    size_t no_dn;   /* battery / inverter entries without a dn */
};

void hw_disc_free(hw_disc *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++)
        hw_plant_free(&d->found[i]);
    free(d->found);
    free(d);
}

static void finish(hw_disc *d, int ok, const char *msg)
{
    hw *s = d->s;
    s->disc = NULL;
    if (!ok) H->log(s->h, GP_LOG_WARN, "%s", msg);
    H->discovered(s->h, ok, msg);
    hw_disc_free(d);
}

static void on_answer(void *ud, const gp_http_resp *r);

static void issue(hw_disc *d)
{
    hw *s = d->s;
    if (!s->token) {
        if (d->logged_in) {
            finish(d, 0, "huawei: discovery: no session after a successful login");
            return;
        }
        d->logged_in = 1;
        hw_login(s, 0, 1);
        return;
    }
    gp_str *body = H->str_new();
    const char *api;
    if (d->stage == D_PLANTS) {
        api = "plants";
        H->str_printf(body, "{\"pageNo\":%u,\"pageSize\":%u}", d->page, s->page_size);
    } else {
        api = "devices";
        size_t n = d->n - d->chunk < HW_MAX_CODES ? d->n - d->chunk : HW_MAX_CODES;
        char **codes = hw_xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            codes[i] = d->found[d->chunk + i].code;
        H->str_printf(body, "{\"plantCodes\":\"");
        hw_join(body, codes, n);
        H->str_printf(body, "\",\"pageNo\":%u,\"pageSize\":%u}", d->page, s->page_size);
        free(codes);
    }
    hw_err err;
    int rc = hw_post(s, api, api, H->str_data(body, NULL), GP_PRIO_TELEMETRY, 1, on_answer, NULL, d,
                     &err);
    H->str_free(body);
    if (rc != 0) finish(d, 0, err.msg);
}

void hw_disc_login_done(hw *s, int ok, const hw_err *err)
{
    hw_disc *d = s->disc;
    if (!d) return;
    if (!ok) {
        char msg[HW_MSG_LEN + 40];
        snprintf(msg, sizeof msg, "huawei: discovery: login failed: %s", err->msg);
        finish(d, 0, msg);
        return;
    }
    issue(d);
}

/* Whether the listing has pages after the one just read (n entries on it). */
static int more_pages(hw_disc *d, const gp_json *page, size_t n)
{
    d->seen += n;
    if (!page || n == 0) return 0;
    if (d->page >= MAX_PAGES) {
        H->log(d->s->h, GP_LOG_WARN, "huawei: discovery: stopped after %u pages", d->page);
        return 0;
    }
    double count = hw_jnum(page, "pageCount"), total = hw_jnum(page, "total");
    if (isfinite(count)) return (double)d->page < count;
    if (isfinite(total)) return (double)d->seen < total;
    return n >= d->s->page_size;
}

static int cmp_plant(const void *a, const void *b)
{
    return strcmp(((const hw_plant *)a)->code, ((const hw_plant *)b)->code);
}

static int cmp_key(const void *key, const void *elem)
{
    return strcmp(key, ((const hw_plant *)elem)->code);
}

/* The plant found so far with this code, or NULL. */
static hw_plant *found_plant(hw_disc *d, const char *code)
{
    if (!code || d->n == 0) return NULL;
    return bsearch(code, d->found, d->n, sizeof(hw_plant), cmp_key);
}

static void add_plant(hw_disc *d, const char *code)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->found = hw_xrealloc(d->found, d->cap * sizeof(hw_plant));
    }
    hw_plant *p = &d->found[d->n++];
    memset(p, 0, sizeof(*p));
    p->code = hw_xstrdup(code);
    p->capacity_wh = NAN;
    p->dod_pct = NAN;
    p->caps = GP_CAP_READ;
}

static int usable_code(const char *c)
{
    if (!c || !*c || strlen(c) > 200) return 0;
    for (const unsigned char *p = (const unsigned char *)c; *p; p++)
        if (*p < 0x21 || *p == ',' || *p == '"' || *p == '\\' || *p == 0x7f) return 0;
    return 1;
}

/* Sort, drop repeats, and name configured plants the account does not have. */
static void plants_complete(hw_disc *d)
{
    hw *s = d->s;
    if (d->n) qsort(d->found, d->n, sizeof(hw_plant), cmp_plant);
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (k > 0 && strcmp(d->found[k - 1].code, d->found[i].code) == 0) {
            hw_plant_free(&d->found[i]);
            continue;
        }
        d->found[k++] = d->found[i];
    }
    d->n = k;
    if (d->no_code)
        H->log(s->h, GP_LOG_WARN, "huawei: plants: %zu entries without a usable plantCode ignored",
               d->no_code);
    gp_str *missing = H->str_new();
    size_t n_missing = 0;
    for (size_t i = 0; i < s->only.n; i++) {
        if (found_plant(d, s->only.v[i])) continue;
        if (n_missing < 20) H->str_printf(missing, "%s%s", n_missing ? ", " : "", s->only.v[i]);
        n_missing++;
    }
    if (n_missing)
        H->log(s->h, GP_LOG_WARN, "huawei: %zu configured plant(s) not in the account: %s%s",
               n_missing, H->str_data(missing, NULL), n_missing > 20 ? ", ..." : "");
    H->str_free(missing);
}

static int read_plants(hw_disc *d, const gp_json *doc, char *msg, size_t len)
{
    const gp_json *page, *list = hw_data_list(H->json_get(doc, "data"), &page);
    if (!list) {
        snprintf(msg, len, "huawei: plants: data is neither a list nor a page of plants");
        return -1;
    }
    size_t n = H->json_len(list);
    for (size_t i = 0; i < n; i++) {
        const char *code = hw_jstr(H->json_at(list, i), "plantCode");
        if (!usable_code(code)) {
            d->no_code++;
            continue;
        }
        if (d->s->only.n && !hw_strv_has(&d->s->only, code)) continue;
        add_plant(d, code);
    }
    if (more_pages(d, page, n)) {
        d->page++;
        return 1;
    }
    plants_complete(d);
    return 0;
}

/* batterySOC is a percentage of the rated capacity, so that is the capacity to announce;
 * usableCapacity (rated x DoD) only stands in when the rating is missing. */
static void add_capacity(hw_plant *p, const gp_json *map)
{
    double kwh = hw_jnum(map, "ratedCapacity");
    if (!(kwh > 0)) kwh = hw_jnum(map, "usableCapacity");
    if (!(kwh > 0) || !isfinite(kwh)) return;
    p->capacity_wh = isnan(p->capacity_wh) ? kwh * 1000.0 : p->capacity_wh + kwh * 1000.0;
}

static void add_device(hw_disc *d, const gp_json *e)
{
    hw_plant *p = found_plant(d, hw_jstr(e, "plantCode"));
    if (!p) return;
    double type = hw_jnum(e, "deviceTypeId");
    if (isnan(type)) type = hw_jnum(e, "devTypeId"); /* the legacy interfaces' name */
    if (type != HW_TYPE_BATTERY && type != HW_TYPE_INVERTER) return;
    const char *dn = hw_jstr(e, "dn");
    int dn_ok = usable_code(dn);
    if (!dn_ok) d->no_dn++;
    const gp_json *map = H->json_get(e, "dataItemMap");
    const char *model = hw_jstr(map, "model");
    if (type == HW_TYPE_BATTERY) {
        p->caps |= GP_CAP_SETPOINT | GP_CAP_SOC_TARGET;
        if (dn_ok && !hw_strv_has(&p->batteries, dn)) {
            hw_strv_push(&p->batteries, dn);
            p->caps |= GP_CAP_DOD;
            add_capacity(p, map);
        }
        double dod = hw_jnum(map, "dod");
        if (dod >= 0 && dod <= 100) p->dod_pct = dod;
        if (model && *model) {
            free(p->model);
            p->model = hw_xstrdup(model);
        }
    } else {
        if (dn_ok && !hw_strv_has(&p->inverters, dn)) {
            hw_strv_push(&p->inverters, dn);
            p->caps |= GP_CAP_ONOFF;
        }
        if (model && *model && !p->model) p->model = hw_xstrdup(model);
    }
}

static int read_devices(hw_disc *d, const gp_json *doc, char *msg, size_t len)
{
    const gp_json *page, *list = hw_data_list(H->json_get(doc, "data"), &page);
    if (!list) {
        snprintf(msg, len, "huawei: devices: data is neither a list nor a page of devices");
        return -1;
    }
    size_t n = H->json_len(list);
    for (size_t i = 0; i < n; i++)
        add_device(d, H->json_at(list, i));
    if (more_pages(d, page, n)) {
        d->page++;
        return 1;
    }
    d->chunk += HW_MAX_CODES;
    d->page = 1;
    d->seen = 0;
    return d->chunk < d->n ? 1 : 0;
}

static void announce(hw_disc *d)
{
    hw *s = d->s;
    size_t n_bat = 0, n_inv = 0;
    for (size_t i = 0; i < d->n; i++) {
        const hw_plant *p = &d->found[i];
        int battery = (p->caps & GP_CAP_SETPOINT) != 0;
        n_bat += battery;
        n_inv += (p->caps & GP_CAP_ONOFF) != 0;
        gp_device_info info = {
            .size = sizeof(gp_device_info),
            .vendor_id = p->code,
            .local = (uint32_t)i,
            .caps = p->caps,
            .capacity_wh = p->capacity_wh,
            /* The API gives no battery power limits: config battery_power_w, else unknown. */
            .max_charge_w = battery ? s->battery_power_w : NAN,
            .max_discharge_w = battery ? s->battery_power_w : NAN,
            .soc_min_pct = isnan(p->dod_pct) ? NAN : 100.0 - p->dod_pct,
            .soc_max_pct = NAN,
            .model = p->model,
        };
        H->device_add(s->h, &info);
    }
    if (d->no_dn)
        H->log(s->h, GP_LOG_WARN, "huawei: devices: %zu battery/inverter entries without a dn",
               d->no_dn);
    H->log(s->h, GP_LOG_INFO, "huawei: %zu plant(s): %zu with a battery, %zu with an inverter",
           d->n, n_bat, n_inv);
    for (size_t i = 0; i < s->n_plants; i++)
        hw_plant_free(&s->plants[i]);
    free(s->plants);
    s->plants = d->found;
    s->n_plants = d->n;
    d->found = NULL;
    d->n = d->cap = 0;
    finish(d, 1, NULL);
}

static void on_answer(void *ud, const gp_http_resp *r)
{
    hw_disc *d = ud;
    hw_err err;
    const char *api = d->stage == D_PLANTS ? "plants" : "devices";
    gp_json *doc = hw_answer(d->s, api, api, r, &err);
    if (!doc) {
        if (err.code == GP_E_AUTH && !d->logged_in) {
            issue(d); /* the session is gone: log in once, then ask again */
            return;
        }
        if (err.session_changed && d->resent++ < 3) {
            issue(d); /* sent before a newer login: ask again with the new token */
            return;
        }
        char msg[HW_MSG_LEN + 40];
        snprintf(msg, sizeof msg, "%s", err.msg);
        finish(d, 0, msg);
        return;
    }
    char msg[HW_MSG_LEN];
    int rc = d->stage == D_PLANTS ? read_plants(d, doc, msg, sizeof msg)
                                  : read_devices(d, doc, msg, sizeof msg);
    H->json_free(doc);
    if (rc < 0) {
        finish(d, 0, msg);
    } else if (rc > 0) {
        issue(d);
    } else if (d->stage == D_PLANTS && d->n > 0) {
        d->stage = D_DEVICES;
        d->page = 1;
        d->seen = 0;
        d->chunk = 0;
        issue(d);
    } else {
        if (d->n == 0) H->log(d->s->h, GP_LOG_WARN, "huawei: discovery found no plants");
        announce(d);
    }
}

void hw_discover(hw *s)
{
    if (s->disc) {
        /* The running discovery answers; a second one would only double the requests. */
        H->log(s->h, GP_LOG_DEBUG, "huawei: discovery already in progress");
        return;
    }
    hw_disc *d = hw_xcalloc(1, sizeof(*d));
    d->s = s;
    d->stage = D_PLANTS;
    d->page = 1;
    s->disc = d;
    issue(d);
}
