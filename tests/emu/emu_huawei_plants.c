/*
 * The Huawei emulator's plants: generated from the seed, simulated lazily with the shared
 * physics, sampled every 5 minutes for plantRealtimeKpi, and the APIs that list, read and
 * configure them (plants, devices, plantRealtimeKpi, dod, devOnOff).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu_huawei.h"

#define DAY_MS 86400000LL

/* Streams of the identity draws. */
enum { D_INV_SN = 201, D_BAT_SN, D_LAT, D_LON, D_GRID_DAY, D_YIELD };

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && ((a < 0) != (b < 0))) q--;
    return q;
}

static int64_t offset_ms(const hw *h)
{
    return (int64_t)h->utc_offset_min * 60000;
}

/* Day of the month (1-31) at the local time of instant ms. */
static int local_mday(const hw *h, int64_t ms)
{
    time_t t = (time_t)(floor_div(ms + offset_ms(h), 1000));
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_mday;
}

/* ---- building and running the plants ------------------------------------------------------ */

static void take_sample(hw *h, hw_plant *p, int64_t at)
{
    const sim_phys_state *st = &p->site.st;
    hw_sample *s = &p->sample;
    s->at_ms = at;
    sim_phys_instant(&h->world, &p->site.p, p->site.idx, st, at, &s->pw);
    s->soc = emu_site_soc(&p->site);
    s->dod = p->battery ? p->dod : NAN;
    double pv = st->ctr[SIM_PV];
    s->day_wh = pv - p->day_start_pv;
    s->month_wh = p->month_base_wh + pv - p->month_start_pv;
    s->total_wh = p->total_base_wh + pv;
}

/* At a local midnight the day's yield starts again, and the month's on the 1st. */
static void day_boundary(hw *h, hw_plant *p, int64_t at)
{
    if ((at + offset_ms(h)) % DAY_MS != 0) return;
    double pv = p->site.st.ctr[SIM_PV];
    p->day_start_pv = pv;
    if (local_mday(h, at) == 1) {
        p->month_base_wh = 0;
        p->month_start_pv = pv;
    }
}

void hw_plants_build(hw *h, const emu_opts *o, size_t no_soc_every)
{
    /* Simulated from the local midnight before the start, so dayEnergy is a whole day's. */
    int64_t day0 = floor_div(o->start_ms + offset_ms(h), DAY_MS) * DAY_MS - offset_ms(h);
    int mday = local_mday(h, day0);
    h->n_plants = o->plants;
    h->plants = gp_xcalloc(o->plants ? o->plants : 1, sizeof(hw_plant));
    for (size_t k = 0; k < o->plants; k++) {
        uint32_t i = (uint32_t)k;
        hw_plant *p = &h->plants[i];
        p->battery = !(o->batteries_every >= 2 && (k + 1) % o->batteries_every == 0);
        p->soc_control = !(no_soc_every >= 1 && (k + 1) % no_soc_every == 0);
        p->dod = HW_INITIAL_DOD;
        emu_site_init(&p->site, o->seed, i, p->battery, 100 - p->dod, day0);
        snprintf(p->code, sizeof p->code, "NE=%u", HW_CODE_BASE + i);
        snprintf(p->name, sizeof p->name, "emu-plant-%06u", i + 1);
        snprintf(p->inv_dn, sizeof p->inv_dn, "NE=%u", HW_INV_BASE + i);
        snprintf(p->bat_dn, sizeof p->bat_dn, "NE=%u", HW_BAT_BASE + i);
        snprintf(p->inv_sn, sizeof p->inv_sn, "HV%08llX",
                 (unsigned long long)(emu_hash(o->seed, i, D_INV_SN) & 0xffffffffu));
        snprintf(p->bat_sn, sizeof p->bat_sn, "BT%08llX",
                 (unsigned long long)(emu_hash(o->seed, i, D_BAT_SN) & 0xffffffffu));
        p->lat = round((48 + 8 * emu_hash01(o->seed, i, D_LAT)) * 1e6) / 1e6;
        p->lon = round((-2 + 14 * emu_hash01(o->seed, i, D_LON)) * 1e6) / 1e6;
        /* Connected on a day of 2018-2024 (1514764800000 is 2018-01-01). */
        int64_t days = (int64_t)(emu_hash(o->seed, i, D_GRID_DAY) % 2557);
        p->grid_ms = 1514764800000LL + days * DAY_MS - offset_ms(h);
        if (p->grid_ms > day0) p->grid_ms = day0;
        /* History: about 2.8 kWh per kWp and day. */
        double per_day = p->site.p.pv_peak_w * (2.4 + 0.8 * emu_hash01(o->seed, i, D_YIELD));
        p->total_base_wh = (double)((day0 - p->grid_ms) / DAY_MS) * per_day;
        p->month_base_wh = (mday - 1) * per_day;
        p->run_task = -1;
        take_sample(h, p, day0);
    }
}

void hw_plant_advance(hw *h, uint32_t i, int64_t now)
{
    hw_plant *p = &h->plants[i];
    while (p->site.last_ms < now) {
        /* A big clock jump would cost a second of CPU per plant-year: beyond a week back, a
         * plant without a task stands still (its counters do not grow over the gap). */
        if (p->run_task < 0 && now - p->site.last_ms > HW_MAX_CATCHUP_MS)
            p->site.last_ms = now - HW_MAX_CATCHUP_MS;
        int64_t t = p->site.last_ms;
        int64_t sample = (floor_div(t, HW_SAMPLE_MS) + 1) * HW_SAMPLE_MS;
        int64_t refresh = hw_next_refresh(h, p, t);
        int64_t next = sample < refresh ? sample : refresh;
        if (now < next) next = now;
        int64_t ended = emu_site_advance(&h->world, &p->site, next);
        if (ended != SIM_PHYS_NO_END) hw_sub_ended_by_physics(h, p, ended);
        hw_sub *s = hw_running(h, p);
        if (s && next == refresh) s->rep_wh = p->site.st.forced_wh;
        if (next == sample) {
            day_boundary(h, p, next);
            take_sample(h, p, next);
        }
    }
}

long hw_find_plant(const hw *h, const char *code)
{
    if (!code || strncmp(code, "NE=", 3) != 0) return -1;
    char *end;
    unsigned long n = strtoul(code + 3, &end, 10);
    if (*end || n < HW_CODE_BASE || n - HW_CODE_BASE >= h->n_plants) return -1;
    long i = (long)(n - HW_CODE_BASE);
    return strcmp(h->plants[i].code, code) == 0 ? i : -1;
}

long hw_find_dn(const hw *h, const char *dn, int *battery)
{
    if (!dn || strncmp(dn, "NE=", 3) != 0) return -1;
    char *end;
    unsigned long n = strtoul(dn + 3, &end, 10);
    if (*end) return -1;
    for (int b = 0; b < 2; b++) {
        unsigned long base = b ? HW_BAT_BASE : HW_INV_BASE;
        if (n < base || n - base >= h->n_plants) continue;
        long i = (long)(n - base);
        const hw_plant *p = &h->plants[i];
        if ((b && !p->battery) || strcmp(b ? p->bat_dn : p->inv_dn, dn) != 0) return -1;
        *battery = b;
        return i;
    }
    return -1;
}

long hw_split_ids(const cJSON *body, const char *key, char ***out, size_t max)
{
    *out = NULL;
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, key));
    if (!s) return -1;
    char **ids = gp_xcalloc(max + 1, sizeof(char *));
    long n = 0;
    while (*s && (size_t)n <= max) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t len = strcspn(s, ",");
        while (len && s[len - 1] == ' ')
            len--;
        if (len) {
            char *id = gp_xmalloc(len + 1);
            memcpy(id, s, len);
            id[len] = 0;
            long k = 0;
            while (k < n && strcmp(ids[k], id) != 0)
                k++;
            if (k < n)
                free(id); /* a repeated id counts once */
            else
                ids[n++] = id;
        }
        s += len;
        s += strcspn(s, ",");
    }
    if (n == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

void hw_free_ids(char **ids, long n)
{
    for (long k = 0; k < n; k++)
        free(ids[k]);
    free(ids);
}

/* Parse plantCodes into plant indexes (caller frees *idx), or answer the error. */
static long plant_list(hw *h, const cJSON *b, emu_resp *r, uint32_t **idx)
{
    char **ids;
    long n = hw_split_ids(b, "plantCodes", &ids, HW_MAX_ITEMS);
    *idx = NULL;
    if (n < 0) {
        hw_error_msg(
            r, HW_E_NO_PLANTS,
            "The plant list cannot be empty (plantCodes: plant codes separated by commas).");
        return -1;
    }
    if (n > HW_MAX_ITEMS) {
        hw_free_ids(ids, n);
        hw_error(r, HW_E_PLANTS_100);
        return -1;
    }
    *idx = gp_xcalloc((size_t)n, sizeof(uint32_t));
    for (long k = 0; k < n; k++) {
        long i = hw_find_plant(h, ids[k]);
        if (i < 0) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "The system does not have the desired power plant resources (%.60s).", ids[k]);
            hw_error_msg(r, HW_E_NO_PLANT, msg);
            hw_free_ids(ids, n);
            free(*idx);
            *idx = NULL;
            return -1;
        }
        (*idx)[k] = (uint32_t)i;
    }
    hw_free_ids(ids, n);
    return n;
}

/* pageNo (>= 1) and pageSize (10, 20, 30, 50 or 100): 0, or the error code. */
static int paging(const cJSON *b, long long *no, long long *size)
{
    int rc = hw_int(b, "pageNo", no);
    if (rc == 0) return HW_E_PAGE_NO;
    if (rc < 0 || *no < 1) return HW_E_PAGE_NO_RANGE;
    rc = hw_int(b, "pageSize", size);
    if (rc == 0) return HW_E_PAGE_SIZE;
    if (rc < 0 || (*size != 10 && *size != 20 && *size != 30 && *size != 50 && *size != 100))
        return HW_E_PAGE_SIZE_RANGE;
    return 0;
}

/* The paged data map: {total, pageCount, pageNo, pageSize, list}; list is returned to fill. */
static cJSON *page_map(size_t total, long long no, long long size, cJSON **list)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "total", (double)total);
    cJSON_AddNumberToObject(d, "pageCount", (double)((total + (size_t)size - 1) / (size_t)size));
    cJSON_AddNumberToObject(d, "pageNo", (double)no);
    cJSON_AddNumberToObject(d, "pageSize", (double)size);
    *list = cJSON_AddArrayToObject(d, "list");
    return d;
}

/* ---- plants --------------------------------------------------------------------------- */

static cJSON *plant_json(const hw *h, const hw_plant *p)
{
    char date[40];
    hw_iso(h, p->grid_ms, date, sizeof date);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "plantCode", p->code);
    cJSON_AddStringToObject(o, "plantName", p->name);
    cJSON_AddNullToObject(o, "plantAddress");
    cJSON_AddNumberToObject(o, "longitude", p->lon);
    cJSON_AddNumberToObject(o, "latitude", p->lat);
    cJSON_AddItemToObject(o, "capacity", hw_num(p->site.p.pv_peak_w / 1000, 3));
    cJSON_AddStringToObject(o, "contactPerson", "");
    cJSON_AddStringToObject(o, "contactMethod", "");
    cJSON_AddStringToObject(o, "gridConnectionDate", date);
    return o;
}

void hw_plants(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_PLANTS)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    long long no, size;
    int code = paging(b, &no, &size);
    cJSON_Delete(b);
    if (code) {
        hw_error(r, code);
        return;
    }
    cJSON *list;
    cJSON *d = page_map(h->n_plants, no, size, &list);
    for (size_t k = (size_t)((no - 1) * size); k < h->n_plants && k < (size_t)(no * size); k++)
        cJSON_AddItemToArray(list, plant_json(h, &h->plants[k]));
    hw_ok(r, d);
}

/* ---- devices -------------------------------------------------------------------------- */

enum { DEV_INVERTER = 20822, DEV_BATTERY = 20815 };

static cJSON *device_json(const hw_plant *p, int battery)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "plantCode", p->code);
    cJSON_AddStringToObject(o, "dn", battery ? p->bat_dn : p->inv_dn);
    cJSON_AddStringToObject(o, "sn", battery ? p->bat_sn : p->inv_sn);
    cJSON_AddStringToObject(o, "deviceName", battery ? p->bat_sn : p->inv_sn);
    cJSON_AddNumberToObject(o, "deviceTypeId", battery ? DEV_BATTERY : DEV_INVERTER);
    cJSON *m = cJSON_AddObjectToObject(o, "dataItemMap");
    char model[40];
    if (battery) {
        double kwh = p->site.p.capacity_wh / 1000;
        snprintf(model, sizeof model, "LUNA2000-%.0f-S0", kwh);
        cJSON_AddStringToObject(m, "model", model);
        cJSON_AddItemToObject(m, "ratedCapacity", hw_num(kwh, 3));
        cJSON_AddItemToObject(m, "usableCapacity", hw_num(kwh * p->dod / 100.0, 3));
        cJSON_AddNumberToObject(m, "dod", p->dod);
    } else {
        double kw = ceil(p->site.p.pv_peak_w / 1000);
        snprintf(model, sizeof model, "SUN2000-%.0fKTL-L1", kw);
        cJSON_AddStringToObject(m, "model", model);
        cJSON_AddNumberToObject(m, "ratedPower", kw);
        cJSON_AddStringToObject(m, "softwareVersion", "V100R001C00SPC333");
        cJSON_AddNumberToObject(m, "optimizerNumber", 0);
    }
    return o;
}

void hw_devices(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_DEVICES)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    uint32_t *idx;
    long n = plant_list(h, b, r, &idx);
    long long type = 0, no = 0, size = 0;
    int code = 0;
    if (n >= 0) {
        int rc = hw_int(b, "deviceTypeId", &type);
        code = rc < 0 ? HW_E_DEVTYPE : paging(b, &no, &size);
        if (rc == 0) type = 0;
    }
    cJSON_Delete(b);
    if (n < 0) return;
    if (code) {
        free(idx);
        hw_error(r, code);
        return;
    }
    /* Inverter then battery of each plant, in the order asked. */
    size_t total = 0, first = (size_t)((no - 1) * size), last = (size_t)(no * size);
    cJSON *list;
    cJSON *d = page_map(0, no, size, &list);
    for (long k = 0; k < n; k++) {
        const hw_plant *p = &h->plants[idx[k]];
        for (int bat = 0; bat < 2; bat++) {
            if (bat && !p->battery) continue;
            if (type && type != (bat ? DEV_BATTERY : DEV_INVERTER)) continue;
            if (total >= first && total < last) cJSON_AddItemToArray(list, device_json(p, bat));
            total++;
        }
    }
    free(idx);
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "total"), (double)total);
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "pageCount"),
                         (double)((total + (size_t)size - 1) / (size_t)size));
    hw_ok(r, d);
}

/* ---- plantRealtimeKpi ------------------------------------------------------------------- */

static cJSON *kpi_json(const hw_plant *p)
{
    const hw_sample *s = &p->sample;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "plantCode", p->code);
    cJSON *m = cJSON_AddObjectToObject(o, "dataItemMap");
    cJSON_AddItemToObject(m, "dayEnergy", hw_num(s->day_wh / 1000, 3));
    cJSON_AddItemToObject(m, "monthEnergy", hw_num(s->month_wh / 1000, 3));
    cJSON_AddItemToObject(m, "totalEnergy", hw_num(s->total_wh / 1000, 3));
    cJSON_AddItemToObject(m, "pvPower", hw_num(s->pw.pv_w / 1000, 3));
    /* The table names it meterPower, the example pmeterPower: both, same value (> 0 feed-in). */
    cJSON_AddItemToObject(m, "meterPower", hw_num(-s->pw.grid_w / 1000, 3));
    cJSON_AddItemToObject(m, "pmeterPower", hw_num(-s->pw.grid_w / 1000, 3));
    cJSON_AddItemToObject(m, "batteryPower", hw_num(s->pw.battery_w / 1000, 3));
    cJSON_AddItemToObject(m, "loadPower", hw_num(s->pw.load_w / 1000, 3));
    cJSON_AddItemToObject(m, "batterySOC", hw_num(s->soc, 1));
    cJSON_AddItemToObject(m, "batteryDOD", hw_num(s->dod, 1));
    cJSON_AddNumberToObject(m, "healthState", 0);
    return o;
}

void hw_kpi(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_KPI)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    uint32_t *idx;
    long n = plant_list(h, b, r, &idx);
    cJSON_Delete(b);
    if (n < 0) return;
    cJSON *list = cJSON_CreateArray();
    for (long k = 0; k < n; k++) {
        hw_plant_advance(h, idx[k], req->now_ms);
        cJSON_AddItemToArray(list, kpi_json(&h->plants[idx[k]]));
    }
    free(idx);
    hw_ok(r, list);
}

/* ---- dod and devOnOff --------------------------------------------------------------------- */

/* Parse dns into plant indexes and kinds (caller frees both), or answer the error. */
static long dn_list(hw *h, const cJSON *b, emu_resp *r, uint32_t **idx, int **bat, char ***ids)
{
    long n = hw_split_ids(b, "dns", ids, HW_MAX_ITEMS);
    *idx = NULL;
    *bat = NULL;
    if (n < 0) {
        hw_error(r, HW_E_NO_DEVICES);
        return -1;
    }
    if (n > HW_MAX_ITEMS) {
        hw_free_ids(*ids, n);
        hw_error(r, HW_E_DEVICES_100);
        return -1;
    }
    *idx = gp_xcalloc((size_t)n, sizeof(uint32_t));
    *bat = gp_xcalloc((size_t)n, sizeof(int));
    for (long k = 0; k < n; k++) {
        long i = hw_find_dn(h, (*ids)[k], &(*bat)[k]);
        if (i < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "Unauthorized devices exist in the input parameters (%.60s).",
                     (*ids)[k]);
            hw_error_msg(r, HW_E_DEVICE_AUTH, msg);
            hw_free_ids(*ids, n);
            free(*idx);
            free(*bat);
            return -1;
        }
        (*idx)[k] = (uint32_t)i;
    }
    return n;
}

void hw_dod(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_DOD)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    long long dod = 0;
    uint32_t *idx;
    int *bat;
    char **ids;
    long n = dn_list(h, b, r, &idx, &bat, &ids);
    int rc = n < 0 ? 0 : hw_int(b, "dod", &dod);
    cJSON_Delete(b);
    if (n < 0) return;
    if (rc <= 0 || dod < 0 || dod > 100) {
        hw_free_ids(ids, n);
        free(idx);
        free(bat);
        hw_error(r, HW_E_DOD);
        return;
    }
    /* "If the DoD value is out of range, the closest allowed DoD value will be used." */
    int set = dod < HW_MIN_DOD ? HW_MIN_DOD : (int)dod;
    cJSON *list = cJSON_CreateArray();
    for (long k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dn", ids[k]);
        if (bat[k]) {
            hw_plant *p = &h->plants[idx[k]];
            hw_plant_advance(h, idx[k], req->now_ms);
            p->dod = set;
            p->site.st.soc_min_pct = 100 - set;
            cJSON_AddNumberToObject(o, "result", 0);
            cJSON_AddNumberToObject(o, "setDOD", set);
        } else { /* an inverter has no DoD */
            cJSON_AddNumberToObject(o, "result", 1);
            cJSON_AddNullToObject(o, "setDOD");
        }
        cJSON_AddItemToArray(list, o);
    }
    hw_free_ids(ids, n);
    free(idx);
    free(bat);
    hw_ok(r, list);
}

void hw_onoff(void *v, const emu_req *req, emu_resp *r)
{
    hw *h = v;
    if (!hw_begin(h, req, r, HW_ONOFF)) return;
    cJSON *b = hw_body(req, r);
    if (!b) return;
    long long ct = 0;
    uint32_t *idx;
    int *bat;
    char **ids;
    long n = dn_list(h, b, r, &idx, &bat, &ids);
    int rc = n < 0 ? 0 : hw_int(b, "controlType", &ct);
    cJSON_Delete(b);
    if (n < 0) return;
    if (rc <= 0 || (ct != 1 && ct != 2)) {
        hw_free_ids(ids, n);
        free(idx);
        free(bat);
        hw_error(r, HW_E_SWITCH_TYPE);
        return;
    }
    cJSON *list = cJSON_CreateArray();
    for (long k = 0; k < n; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dn", ids[k]);
        if (!bat[k]) {
            hw_plant_advance(h, idx[k], req->now_ms);
            h->plants[idx[k]].site.st.on = ct == 1;
        }
        cJSON_AddNumberToObject(o, "result", bat[k] ? 1 : 0); /* only inverters switch */
        cJSON_AddItemToArray(list, o);
    }
    hw_free_ids(ids, n);
    free(idx);
    free(bat);
    hw_ok(r, list);
}

/* ---- /_emu/state ------------------------------------------------------------------------ */

cJSON *hw_plant_state(hw *h, uint32_t i, int64_t now)
{
    const hw_plant *p = &h->plants[i];
    const sim_phys_state *st = &p->site.st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", p->code);
    cJSON_AddBoolToObject(o, "has_battery", p->battery);
    cJSON_AddItemToObject(o, "soc_pct", hw_num(emu_site_soc(&p->site), 3));
    cJSON_AddStringToObject(o, "mode", st->mode == SIM_FORCED ? "forced" : "self");
    if (st->mode == SIM_FORCED)
        cJSON_AddNumberToObject(o, "setpoint_w", st->set_w);
    else
        cJSON_AddNullToObject(o, "setpoint_w");
    if (p->battery)
        cJSON_AddNumberToObject(o, "dod", p->dod);
    else
        cJSON_AddNullToObject(o, "dod");
    cJSON_AddItemToObject(o, "soc_min_pct", hw_num(p->battery ? st->soc_min_pct : NAN, 3));
    cJSON_AddBoolToObject(o, "inverter_on", st->on);
    cJSON_AddBoolToObject(o, "soc_control", p->soc_control);
    cJSON_AddStringToObject(o, "inverter_dn", p->inv_dn);
    if (p->battery)
        cJSON_AddStringToObject(o, "battery_dn", p->bat_dn);
    else
        cJSON_AddNullToObject(o, "battery_dn");
    cJSON_AddNumberToObject(o, "capacity_wh", p->site.p.capacity_wh);
    cJSON_AddNumberToObject(o, "max_charge_w", p->site.p.max_charge_w);
    cJSON_AddNumberToObject(o, "max_discharge_w", p->site.p.max_discharge_w);
    cJSON_AddNumberToObject(o, "pv_peak_w", p->site.p.pv_peak_w);
    sim_power pw;
    sim_phys_instant(&h->world, &p->site.p, p->site.idx, st, now, &pw);
    cJSON *pj = cJSON_AddObjectToObject(o, "power_w");
    cJSON_AddItemToObject(pj, "pv", hw_num(pw.pv_w, 3));
    cJSON_AddItemToObject(pj, "load", hw_num(pw.load_w, 3));
    cJSON_AddItemToObject(pj, "battery", hw_num(pw.battery_w, 3));
    cJSON_AddItemToObject(pj, "grid", hw_num(pw.grid_w, 3));
    static const char *const ctr_names[SIM_NCTR] = {"import", "export",    "pv",  "load",
                                                    "charge", "discharge", "loss"};
    cJSON *ej = cJSON_AddObjectToObject(o, "energy_wh");
    for (int k = 0; k < SIM_NCTR; k++)
        cJSON_AddItemToObject(ej, ctr_names[k], hw_num(st->ctr[k], 3));
    cJSON_AddNumberToObject(o, "sample_ms", (double)p->sample.at_ms);
    /* What plantRealtimeKpi answers now (in W, contract signs): tests compare a client's
     * reading with it, since power_w moves between the 5-minute samples. */
    cJSON *sj = cJSON_AddObjectToObject(o, "sample_w");
    cJSON_AddItemToObject(sj, "pv", hw_num(p->sample.pw.pv_w, 3));
    cJSON_AddItemToObject(sj, "load", hw_num(p->sample.pw.load_w, 3));
    cJSON_AddItemToObject(sj, "battery", hw_num(p->sample.pw.battery_w, 3));
    cJSON_AddItemToObject(sj, "grid", hw_num(p->sample.pw.grid_w, 3));
    if (p->run_task >= 0) {
        const hw_task *t = &h->tasks[p->run_task];
        cJSON *tj = cJSON_AddObjectToObject(o, "task");
        cJSON_AddStringToObject(tj, "requestID", t->request_id);
        cJSON_AddStringToObject(tj, "remoteID", t->subs[p->run_sub].remote_id);
    } else {
        cJSON_AddNullToObject(o, "task");
    }
    return o;
}
