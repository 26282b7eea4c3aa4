/*
 * The sim plugin's physics. PV and load are piecewise constant per UTC minute and depend only
 * on (seed, device index, minute), so results do not depend on how often the plugin is asked:
 * a device is integrated lazily from its last update to now, split at minute boundaries and at
 * the instants its state changes (a bound or soc_target reached, a duration or task ending).
 */
#include <math.h>

#include "sim.h"

#define H sim_host

#define MAX_CATCHUP_MS (400LL * 86400000LL)

enum { SALT_CLOUD = 1, SALT_WEATHER = 2, SALT_LOAD = 3 };

/* Relative demand at each hour (interpolated between): higher 07-09 and 17-21. */
static const double load_shape[24] = {
    0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.9, 1.5, 1.6, 1.3, 0.9, 0.9,
    1.0, 0.9, 0.8, 0.8, 1.0, 1.5, 1.8, 1.9, 1.8, 1.5, 1.0, 0.8,
};

void sim_model_init(sim *s)
{
    /* Linear interpolation around a cycle averages to the mean of the points. */
    double sum = 0;
    for (int i = 0; i < 24; i++)
        sum += load_shape[i];
    s->load_norm = 24.0 / sum;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A uniform number in [0, 1) from (seed, device, stream, k): no global random state. */
static double hash01(uint64_t seed, uint32_t dev, uint32_t salt, int64_t k)
{
    uint64_t x = splitmix64(seed);
    x = splitmix64(x ^ ((uint64_t)dev << 32 | salt));
    x = splitmix64(x ^ (uint64_t)k);
    return (double)(x >> 11) * 0x1.0p-53;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && ((a < 0) != (b < 0))) q--;
    return q;
}

/* Smooth noise in [0, 1): hashed knots every `period` minutes, smoothstep between them. */
static double smooth_noise(const sim *s, uint32_t dev, uint32_t salt, int64_t minute,
                           int64_t period)
{
    int64_t k = floor_div(minute, period);
    double f = ((double)(minute - k * period) + 0.5) / (double)period;
    f = f * f * (3 - 2 * f);
    double a = hash01(s->seed, dev, salt, k), b = hash01(s->seed, dev, salt, k + 1);
    return a + (b - a) * f;
}

static double profile_at(const sim_profile *p, double sec)
{
    if (p->n == 1) return p->w[0];
    size_t lo = 0, hi = p->n; /* first point after sec */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->t_s[mid] <= sec)
            lo = mid + 1;
        else
            hi = mid;
    }
    double t0, w0, t1, w1;
    if (lo == 0 || lo == p->n) { /* between the last point and the first one of the next day */
        t0 = p->t_s[p->n - 1] - (lo == 0 ? 86400 : 0);
        w0 = p->w[p->n - 1];
        t1 = p->t_s[0] + (lo == 0 ? 0 : 86400);
        w1 = p->w[0];
    } else {
        t0 = p->t_s[lo - 1];
        w0 = p->w[lo - 1];
        t1 = p->t_s[lo];
        w1 = p->w[lo];
    }
    return w0 + (w1 - w0) * (sec - t0) / (t1 - t0);
}

/* Raw PV (before any cap) and load of device i during a minute. */
static void inputs(const sim *s, uint32_t i, int64_t minute, double *pv, double *load)
{
    const sim_tmpl *t = sim_tmpl_of(s, i);
    int64_t day = floor_div(minute, 1440);
    double hour = ((double)(minute - day * 1440) + 0.5) / 60.0;
    *pv = 0;
    if (t->pv_peak_w > 0 && hour > 6 && hour < 18) {
        double clear = sin(M_PI * (hour - 6) / 12);
        double weather = hash01(s->seed, i, SALT_WEATHER, day);
        double cloud = smooth_noise(s, i, SALT_CLOUD, minute, 20);
        *pv = t->pv_peak_w * clear * (0.3 + 0.7 * (0.5 * weather + 0.5 * cloud));
    }
    if (t->profile.n) {
        *load = profile_at(&t->profile, hour * 3600);
    } else {
        int h = (int)hour;
        double f = hour - h;
        double shape = load_shape[h] + (load_shape[(h + 1) % 24] - load_shape[h]) * f;
        double noise = 0.8 + 0.4 * smooth_noise(s, i, SALT_LOAD, minute, 15);
        *load = t->load_w * shape * s->load_norm * noise;
    }
}

double sim_wh_at(const sim *s, uint32_t i, double pct)
{
    return sim_tmpl_of(s, i)->capacity_wh * pct / 100.0;
}

int sim_target_reached(const sim *s, uint32_t i)
{
    const sim_dev *d = &s->dev[i];
    if (d->mode != SIM_FORCED || isnan(d->soc_target)) return 0;
    double tgt = sim_wh_at(s, i, d->soc_target);
    return d->set_w < 0 ? d->stored_wh >= tgt : d->stored_wh <= tgt;
}

/* PV output and battery power (+ discharge) in force, within power limits and SoC bounds. */
static void powers(const sim *s, uint32_t i, double pv_raw, double load, double *pv, double *b)
{
    const sim_dev *d = &s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    *pv = 0;
    *b = 0;
    if (!d->on) return;
    *pv = pv_raw;
    if (t->capacity_wh <= 0) {
        if (d->mode == SIM_FORCED && *pv > d->set_w) *pv = d->set_w;
        return;
    }
    double want = d->mode == SIM_FORCED ? d->set_w : load - pv_raw;
    if (want > t->max_discharge_w) want = t->max_discharge_w;
    if (want < -t->max_charge_w) want = -t->max_charge_w;
    if (want < 0 && d->stored_wh >= sim_wh_at(s, i, t->soc_max_pct)) want = 0;
    if (want > 0 && d->stored_wh <= sim_wh_at(s, i, d->soc_min_pct)) want = 0;
    *b = want;
}

void sim_end_forced(sim *s, uint32_t i, int64_t at_ms)
{
    sim_dev *d = &s->dev[i];
    d->mode = SIM_SELF;
    d->set_w = 0;
    d->soc_target = NAN;
    d->until_ms = 0;
    if (d->task) sim_task_close(s, i, at_ms);
    d->dirty = 1;
}

/* Book seg seconds at constant powers. */
static void account(sim_dev *d, double eff, double seg, double pv, double load, double b)
{
    double hs = seg / 3600.0;
    d->ctr[SIM_PV] += pv * hs;
    d->ctr[SIM_LOAD] += load * hs;
    if (b < 0) {
        d->ctr[SIM_CHARGE] += -b * hs;
        d->ctr[SIM_LOSS] += -b * (1 - eff) * hs;
        d->stored_wh += -b * eff * hs;
    } else if (b > 0) {
        d->ctr[SIM_DISCHARGE] += b * hs;
        d->ctr[SIM_LOSS] += b * (1 / eff - 1) * hs;
        d->stored_wh -= b / eff * hs;
    }
    if (d->task) d->task_wh += fabs(b) * hs;
    double g = load - pv - b;
    if (g > 0)
        d->ctr[SIM_IMPORT] += g * hs;
    else
        d->ctr[SIM_EXPORT] += -g * hs;
}

/* Integrate dt_s seconds from t0_ms inside one minute (inputs constant), splitting where the
 * battery reaches a bound or the soc_target. */
static void integrate(sim *s, uint32_t i, int64_t t0_ms, double dt_s, double pv_raw, double load)
{
    sim_dev *d = &s->dev[i];
    const sim_tmpl *t = sim_tmpl_of(s, i);
    double eff = t->efficiency, off = 0;
    /* Each pass ends at the interval's end or at an event that makes the next pass quieter
     * (a bound stops the battery, a target ends forced mode); four passes suffice. */
    for (int pass = 0; off < dt_s && pass < 8; pass++) {
        if (sim_target_reached(s, i)) sim_end_forced(s, i, t0_ms + llround(off * 1000));
        double pv, b, seg = dt_s - off, stop = 0;
        int event = 0; /* 1: a bound, 2: the soc_target */
        powers(s, i, pv_raw, load, &pv, &b);
        int has_tgt = d->mode == SIM_FORCED && !isnan(d->soc_target);
        double tgt = has_tgt ? sim_wh_at(s, i, d->soc_target) : NAN;
        if (b < 0) {
            double lim = sim_wh_at(s, i, t->soc_max_pct);
            stop = has_tgt && tgt < lim ? tgt : lim;
            double tt = (stop - d->stored_wh) / (-b * eff) * 3600.0;
            if (tt < seg) {
                seg = tt;
                event = has_tgt && tgt < lim ? 2 : 1;
            }
        } else if (b > 0) {
            double lim = sim_wh_at(s, i, d->soc_min_pct);
            stop = has_tgt && tgt > lim ? tgt : lim;
            double tt = (d->stored_wh - stop) / (b / eff) * 3600.0;
            if (tt < seg) {
                seg = tt;
                event = has_tgt && tgt > lim ? 2 : 1;
            }
        }
        if (seg < 0) seg = 0;
        account(d, eff, seg, pv, load, b);
        off += seg;
        if (event) d->stored_wh = stop; /* land exactly on it, not a rounding error short */
        if (event == 2) sim_end_forced(s, i, t0_ms + llround(off * 1000));
    }
}

/* When forced mode ends by time (duration or the task's time), 0 for never. */
static int64_t forced_end(const sim_dev *d)
{
    int64_t end = d->until_ms;
    if (d->task && (end == 0 || d->task_deadline_ms < end)) end = d->task_deadline_ms;
    return end;
}

void sim_advance(sim *s, uint32_t i, int64_t now)
{
    sim_dev *d = &s->dev[i];
    if (d->last_ms == SIM_NOT_STARTED) {
        d->last_ms = now;
        return;
    }
    if (now <= d->last_ms) return;
    if (now - d->last_ms > MAX_CATCHUP_MS) {
        H->log(s->h, GP_LOG_WARN, "sim: %s was last simulated %lld days ago; simulating 400",
               sim_dev_id(s, i), (long long)((now - d->last_ms) / 86400000));
        d->last_ms = now - MAX_CATCHUP_MS;
    }
    s->changed = 1;
    while (d->last_ms < now) {
        int64_t t0 = d->last_ms;
        int64_t minute = floor_div(t0, SIM_MINUTE_MS);
        int64_t t1 = (minute + 1) * SIM_MINUTE_MS;
        if (t1 > now) t1 = now;
        int64_t end = d->mode == SIM_FORCED ? forced_end(d) : 0;
        if (end && end <= t0) { /* a restored state whose end passed while we were away */
            sim_end_forced(s, i, t0);
            end = 0;
        } else if (end && end < t1) {
            t1 = end;
        }
        double pv, load;
        inputs(s, i, minute, &pv, &load);
        integrate(s, i, t0, (double)(t1 - t0) / 1000.0, pv, load);
        d->last_ms = t1;
        if (end && d->mode == SIM_FORCED && end <= t1) sim_end_forced(s, i, end);
    }
    if (d->dirty) sim_persist_device(s, i);
}

void sim_instant(const sim *s, uint32_t i, int64_t now, sim_power *out)
{
    double pv_raw, load, pv, b;
    inputs(s, i, floor_div(now, SIM_MINUTE_MS), &pv_raw, &load);
    powers(s, i, pv_raw, load, &pv, &b);
    out->pv_w = pv;
    out->load_w = load;
    out->battery_w = b;
    out->grid_w = load - pv - b;
}
