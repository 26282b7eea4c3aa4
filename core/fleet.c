/* Fleet registry: flat device array, id arena, open-addressing index by id. */
#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

typedef struct fleet_adapter {
    char *id;
    int64_t stale_ms;
} fleet_adapter;

/* Vendor extras are rare and variable in size: one reusable buffer per device that has any,
 * so steady-state readings do not allocate. */
typedef struct extra_buf {
    char *text;
    size_t cap;
} extra_buf;

struct gp_fleet {
    gp_device *dev;
    size_t n, cap;
    extra_buf *extra; /* parallel to dev, allocated lazily */
    char *arena;      /* NUL-separated id strings */
    size_t arena_len, arena_cap;
    uint32_t *index; /* open addressing: device index + 1, 0 = empty */
    size_t index_cap;
    fleet_adapter *adapters;
    size_t n_adapters;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

gp_fleet *gp_fleet_new(void)
{
    return gp_xcalloc(1, sizeof(gp_fleet));
}

void gp_fleet_free(gp_fleet *f)
{
    if (!f) return;
    if (f->extra)
        for (size_t i = 0; i < f->n; i++)
            free(f->extra[i].text);
    free(f->extra);
    free(f->dev);
    free(f->arena);
    free(f->index);
    for (size_t i = 0; i < f->n_adapters; i++)
        free(f->adapters[i].id);
    free(f->adapters);
    free(f);
}

int gp_fleet_add_adapter(gp_fleet *f, const char *id, int64_t stale_ms)
{
    f->adapters = gp_xrealloc(f->adapters, (f->n_adapters + 1) * sizeof(*f->adapters));
    f->adapters[f->n_adapters].id = gp_xstrdup(id);
    f->adapters[f->n_adapters].stale_ms = stale_ms;
    return (int)f->n_adapters++;
}

const char *gp_fleet_adapter_id(const gp_fleet *f, unsigned adapter)
{
    return adapter < f->n_adapters ? f->adapters[adapter].id : "";
}

size_t gp_fleet_adapter_count(const gp_fleet *f)
{
    return f->n_adapters;
}

static uint32_t arena_put(gp_fleet *f, const char *s)
{
    size_t n = strlen(s) + 1;
    if (f->arena_len + n > f->arena_cap) {
        size_t cap = f->arena_cap ? f->arena_cap : 4096;
        while (cap < f->arena_len + n)
            cap *= 2;
        f->arena = gp_xrealloc(f->arena, cap);
        f->arena_cap = cap;
    }
    uint32_t off = (uint32_t)f->arena_len;
    memcpy(f->arena + off, s, n);
    f->arena_len += n;
    return off;
}

static void index_insert(gp_fleet *f, size_t idx)
{
    size_t mask = f->index_cap - 1;
    size_t h = (size_t)hash_str(f->arena + f->dev[idx].id_off) & mask;
    while (f->index[h])
        h = (h + 1) & mask;
    f->index[h] = (uint32_t)idx + 1;
}

static void index_grow(gp_fleet *f)
{
    size_t cap = f->index_cap ? f->index_cap * 2 : 1024;
    free(f->index);
    f->index = gp_xcalloc(cap, sizeof(uint32_t));
    f->index_cap = cap;
    for (size_t i = 0; i < f->n; i++)
        index_insert(f, i);
}

int64_t gp_fleet_find(const gp_fleet *f, const char *id)
{
    if (!f->index_cap || !id) return -1;
    size_t mask = f->index_cap - 1;
    for (size_t h = (size_t)hash_str(id) & mask; f->index[h]; h = (h + 1) & mask) {
        size_t idx = f->index[h] - 1;
        if (strcmp(f->arena + f->dev[idx].id_off, id) == 0) return (int64_t)idx;
    }
    return -1;
}

static double nan_or(double v)
{
    return isfinite(v) ? v : NAN;
}

static void set_limits(gp_device *d, const gp_device_info *info)
{
    d->local = info->local;
    d->caps = info->caps;
    d->capacity_wh = nan_or(info->capacity_wh);
    d->max_charge_w = nan_or(info->max_charge_w);
    d->max_discharge_w = nan_or(info->max_discharge_w);
    d->soc_min_pct = nan_or(info->soc_min_pct);
    d->soc_max_pct = nan_or(info->soc_max_pct);
}

int64_t gp_fleet_add(gp_fleet *f, unsigned adapter, const gp_device_info *info, int *existed,
                     char *err, size_t errlen)
{
    if (existed) *existed = 0;
    if (adapter >= f->n_adapters) {
        snprintf(err, errlen, "unknown adapter index %u", adapter);
        return -1;
    }
    const char *vendor = info->vendor_id ? info->vendor_id : "";
    for (const char *p = vendor; *p; p++)
        if ((unsigned char)*p < 0x20) {
            snprintf(err, errlen, "vendor id has a control character");
            return -1;
        }
    gp_str id = {0};
    gp_str_puts(&id, f->adapters[adapter].id);
    if (*vendor) gp_str_printf(&id, "/%s", vendor);
    int64_t old = gp_fleet_find(f, gp_str_cstr(&id));
    if (old >= 0) {
        gp_str_clear(&id);
        set_limits(&f->dev[old], info);
        if (existed) *existed = 1;
        return old;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        f->dev = gp_xrealloc(f->dev, cap * sizeof(gp_device));
        if (f->extra) {
            f->extra = gp_xrealloc(f->extra, cap * sizeof(extra_buf));
            memset(f->extra + f->cap, 0, (cap - f->cap) * sizeof(extra_buf));
        }
        f->cap = cap;
    }
    /* Keep the index at most half full. */
    if ((f->n + 1) * 2 > f->index_cap) index_grow(f);
    size_t idx = f->n++;
    gp_device *d = &f->dev[idx];
    memset(d, 0, sizeof *d);
    d->id_off = arena_put(f, gp_str_cstr(&id));
    d->vendor_off = arena_put(f, vendor);
    gp_str_clear(&id);
    d->adapter = (uint16_t)adapter;
    set_limits(d, info);
    d->soc_pct = d->battery_w = d->pv_w = d->load_w = d->grid_w = NAN;
    for (int s = 0; s < GP_SLOT_N; s++) {
        d->slot[s].cmd.soc_target = NAN;
        d->slot[s].queued.soc_target = NAN;
    }
    index_insert(f, idx);
    return (int64_t)idx;
}

size_t gp_fleet_count(const gp_fleet *f)
{
    return f->n;
}

gp_device *gp_fleet_dev(gp_fleet *f, size_t idx)
{
    return &f->dev[idx];
}

const gp_device *gp_fleet_cdev(const gp_fleet *f, size_t idx)
{
    return &f->dev[idx];
}

const char *gp_fleet_id(const gp_fleet *f, size_t idx)
{
    return f->arena + f->dev[idx].id_off;
}

const char *gp_fleet_vendor(const gp_fleet *f, size_t idx)
{
    return f->arena + f->dev[idx].vendor_off;
}

static void set_if(double *dst, double v)
{
    if (isfinite(v)) *dst = v;
}

void gp_fleet_reading(gp_fleet *f, size_t idx, const gp_reading *r, int64_t now_ms)
{
    gp_device *d = &f->dev[idx];
    /* A reading replaces the telemetry wholesale: a field the vendor no longer reports is
     * unknown now, not its old value. */
    d->soc_pct = nan_or(r->soc_pct);
    d->battery_w = nan_or(r->battery_w);
    d->pv_w = nan_or(r->pv_w);
    d->load_w = nan_or(r->load_w);
    d->grid_w = nan_or(r->grid_w);
    /* A vendor clock ahead of ours must not keep a device "fresh" for ever. */
    d->ts_ms = r->ts_ms > 0 && r->ts_ms < now_ms ? r->ts_ms : now_ms;
    d->have_reading = 1;
    d->online = r->online ? 1 : 0;
    set_if(&d->capacity_wh, r->capacity_wh);
    set_if(&d->max_charge_w, r->max_charge_w);
    set_if(&d->max_discharge_w, r->max_discharge_w);
    set_if(&d->soc_min_pct, r->soc_min_pct);
    set_if(&d->soc_max_pct, r->soc_max_pct);
}

void gp_fleet_set_extra(gp_fleet *f, size_t idx, const char *json)
{
    if (!json) {
        if (f->extra && f->extra[idx].text) f->extra[idx].text[0] = '\0';
        return;
    }
    if (!f->extra) f->extra = gp_xcalloc(f->cap, sizeof(extra_buf));
    extra_buf *e = &f->extra[idx];
    size_t n = strlen(json) + 1;
    if (n > e->cap) {
        e->text = gp_xrealloc(e->text, n);
        e->cap = n;
    }
    memcpy(e->text, json, n);
}

const char *gp_fleet_extra(const gp_fleet *f, size_t idx)
{
    if (!f->extra || !f->extra[idx].text || !f->extra[idx].text[0]) return NULL;
    return f->extra[idx].text;
}

void gp_fleet_refresh_online(gp_fleet *f, int64_t now_ms)
{
    for (size_t i = 0; i < f->n; i++) {
        gp_device *d = &f->dev[i];
        int64_t stale = f->adapters[d->adapter].stale_ms;
        if (d->online && stale > 0 && now_ms - d->ts_ms > stale) d->online = 0;
    }
}

double gp_fleet_age_s(const gp_fleet *f, size_t idx, int64_t now_ms)
{
    const gp_device *d = &f->dev[idx];
    if (!d->have_reading) return NAN;
    double age = (double)(now_ms - d->ts_ms) / 1000.0;
    return age < 0 ? 0 : age;
}

/* Sum only what is known; a sum of nothing known is unknown (NAN), not 0. */
static void add_known(double *sum, double v)
{
    if (!isfinite(v)) return;
    *sum = isfinite(*sum) ? *sum + v : v;
}

void gp_fleet_site(const gp_fleet *f, gp_site *out)
{
    memset(out, 0, sizeof *out);
    out->battery_w = out->pv_w = out->load_w = out->grid_w = NAN;
    double soc_wh = 0, soc_cap = 0;
    for (size_t i = 0; i < f->n; i++) {
        const gp_device *d = &f->dev[i];
        out->devices++;
        if (!d->online) continue;
        out->online++;
        add_known(&out->battery_w, d->battery_w);
        add_known(&out->pv_w, d->pv_w);
        add_known(&out->load_w, d->load_w);
        add_known(&out->grid_w, d->grid_w);
        if (isfinite(d->capacity_wh)) {
            out->capacity_wh += d->capacity_wh;
            if (isfinite(d->soc_pct)) {
                soc_wh += d->capacity_wh * d->soc_pct / 100.0;
                soc_cap += d->capacity_wh;
            }
        }
    }
    out->soc_pct = soc_cap > 0 ? 100.0 * soc_wh / soc_cap : NAN;
}

int gp_slot_of(gp_cmd_kind kind)
{
    switch (kind) {
    case GP_CMD_DOD:
        return GP_SLOT_DOD;
    case GP_CMD_ONOFF:
        return GP_SLOT_ONOFF;
    default:
        return GP_SLOT_DISPATCH;
    }
}

size_t gp_fleet_bytes(const gp_fleet *f)
{
    size_t b = sizeof *f + f->cap * sizeof(gp_device) + f->arena_cap +
               f->index_cap * sizeof(uint32_t) + f->n_adapters * sizeof(fleet_adapter);
    if (f->extra) {
        b += f->cap * sizeof(extra_buf);
        for (size_t i = 0; i < f->n; i++)
            b += f->extra[i].cap;
    }
    return b;
}

gp_reading gp_reading_unknown(int64_t ts_ms)
{
    return (gp_reading){.size = sizeof(gp_reading),
                        .ts_ms = ts_ms,
                        .online = 1,
                        .soc_pct = NAN,
                        .battery_w = NAN,
                        .pv_w = NAN,
                        .load_w = NAN,
                        .grid_w = NAN,
                        .capacity_wh = NAN,
                        .max_charge_w = NAN,
                        .max_discharge_w = NAN,
                        .soc_min_pct = NAN,
                        .soc_max_pct = NAN};
}
