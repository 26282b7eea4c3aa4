/*
 * The battery, PV and load physics (see sim_physics.h). PV and load depend only on (seed,
 * device index, minute), so results do not depend on how often a device is advanced.
 */
#include "sim_physics.h"

#include <math.h>

enum { SALT_CLOUD = 1, SALT_WEATHER = 2, SALT_LOAD = 3 };

/* Relative demand at each hour (interpolated between): higher 07-09 and 17-21. */
static const double load_shape[24] = {
    0.6, 0.5, 0.5, 0.5, 0.5, 0.6, 0.9, 1.5, 1.6, 1.3, 0.9, 0.9,
    1.0, 0.9, 0.8, 0.8, 1.0, 1.5, 1.8, 1.9, 1.8, 1.5, 1.0, 0.8,
};

void sim_phys_world_init(sim_phys_world *w, uint64_t seed)
{
    /* Linear interpolation around a cycle averages to the mean of the points. */
    double sum = 0;
    for (int i = 0; i < 24; i++)
        sum += load_shape[i];
    w->seed = seed;
    w->load_norm = 24.0 / sum;
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
static double smooth_noise(uint64_t seed, uint32_t dev, uint32_t salt, int64_t minute,
                           int64_t period)
{
    int64_t k = floor_div(minute, period);
    double f = ((double)(minute - k * period) + 0.5) / (double)period;
    f = f * f * (3 - 2 * f);
    double a = hash01(seed, dev, salt, k), b = hash01(seed, dev, salt, k + 1);
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

/* Raw PV (before any cap) and load of a device during a minute. */
static void inputs(const sim_phys_world *w, const sim_phys_params *p, uint32_t dev, int64_t minute,
                   double *pv, double *load)
{
    int64_t day = floor_div(minute, 1440);
    double hour = ((double)(minute - day * 1440) + 0.5) / 60.0;
    *pv = 0;
    if (p->pv_profile.n) {
        *pv = profile_at(&p->pv_profile, hour * 3600);
    } else if (p->pv_peak_w > 0 && hour > 6 && hour < 18) {
        double clear = sin(M_PI * (hour - 6) / 12);
        double weather = hash01(w->seed, dev, SALT_WEATHER, day);
        double cloud = smooth_noise(w->seed, dev, SALT_CLOUD, minute, 20);
        *pv = p->pv_peak_w * clear * (0.3 + 0.7 * (0.5 * weather + 0.5 * cloud));
    }
    if (p->pv_season > 0 && *pv > 0) {
        /* Unix day 0 is 1 January; the year drifts by under a day per century. */
        double doy = fmod((double)day, 365.2425);
        if (doy < 0) doy += 365.2425;
        *pv *= (1 + p->pv_season * cos(2 * M_PI * (doy - 172) / 365.2425)) / (1 + p->pv_season);
    }
    if (p->profile.n) {
        *load = profile_at(&p->profile, hour * 3600);
    } else {
        int h = (int)hour;
        double f = hour - h;
        double shape = load_shape[h] + (load_shape[(h + 1) % 24] - load_shape[h]) * f;
        double noise = 0.8 + 0.4 * smooth_noise(w->seed, dev, SALT_LOAD, minute, 15);
        *load = p->load_w * shape * w->load_norm * noise;
    }
}

double sim_phys_wh_at(const sim_phys_params *p, double pct)
{
    return p->capacity_wh * pct / 100.0;
}

void sim_phys_reset(const sim_phys_params *p, sim_phys_state *st, double soc_pct,
                    double soc_min_pct)
{
    st->on = 1;
    st->mode = SIM_SELF;
    st->stored_wh = sim_phys_wh_at(p, soc_pct);
    st->soc_min_pct = soc_min_pct;
    st->set_w = 0;
    st->soc_target = NAN;
    st->forced_wh = 0;
    for (int k = 0; k < SIM_NCTR; k++)
        st->ctr[k] = 0;
}

int sim_phys_target_reached(const sim_phys_params *p, const sim_phys_state *st)
{
    if (st->mode != SIM_FORCED || isnan(st->soc_target)) return 0;
    double tgt = sim_phys_wh_at(p, st->soc_target);
    return st->set_w < 0 ? st->stored_wh >= tgt : st->stored_wh <= tgt;
}

void sim_phys_force(const sim_phys_params *p, sim_phys_state *st, double set_w, double soc_target)
{
    int battery = p->capacity_wh > 0;
    if (battery && set_w > p->max_discharge_w) set_w = p->max_discharge_w;
    if (battery && set_w < -p->max_charge_w) set_w = -p->max_charge_w;
    st->mode = SIM_FORCED;
    st->set_w = set_w;
    st->soc_target = battery ? soc_target : NAN;
    st->forced_wh = 0;
}

void sim_phys_release(sim_phys_state *st)
{
    st->mode = SIM_SELF;
    st->set_w = 0;
    st->soc_target = NAN;
}

/* PV output and battery power (+ discharge) in force, within power limits and SoC bounds. */
static void powers(const sim_phys_params *p, const sim_phys_state *st, double pv_raw, double load,
                   double *pv, double *b)
{
    *pv = 0;
    *b = 0;
    if (!st->on) return;
    *pv = pv_raw;
    if (p->capacity_wh <= 0) {
        if (st->mode == SIM_FORCED && *pv > st->set_w) *pv = st->set_w;
        return;
    }
    double want = st->mode == SIM_FORCED ? st->set_w : p->idle_own ? 0 : load - pv_raw;
    if (want > p->max_discharge_w) want = p->max_discharge_w;
    if (want < -p->max_charge_w) want = -p->max_charge_w;
    if (want < 0 && st->stored_wh >= sim_phys_wh_at(p, p->soc_max_pct)) want = 0;
    if (want > 0 && st->stored_wh <= sim_phys_wh_at(p, st->soc_min_pct)) want = 0;
    *b = want;
}

/* Book seg seconds at constant powers. */
static void account(sim_phys_state *st, double eff, double seg, double pv, double load, double b)
{
    double hs = seg / 3600.0;
    st->ctr[SIM_PV] += pv * hs;
    st->ctr[SIM_LOAD] += load * hs;
    if (b < 0) {
        st->ctr[SIM_CHARGE] += -b * hs;
        st->ctr[SIM_LOSS] += -b * (1 - eff) * hs;
        st->stored_wh += -b * eff * hs;
    } else if (b > 0) {
        st->ctr[SIM_DISCHARGE] += b * hs;
        st->ctr[SIM_LOSS] += b * (1 / eff - 1) * hs;
        st->stored_wh -= b / eff * hs;
    }
    if (st->mode == SIM_FORCED) st->forced_wh += fabs(b) * hs;
    double g = load - pv - b;
    if (g > 0)
        st->ctr[SIM_IMPORT] += g * hs;
    else
        st->ctr[SIM_EXPORT] += -g * hs;
}

/* Integrate dt_s seconds from t0_ms inside one minute (inputs constant), splitting where the
 * battery reaches a bound or the soc_target. Returns when forced mode ended, or
 * SIM_PHYS_NO_END. */
static int64_t integrate(const sim_phys_params *p, sim_phys_state *st, int64_t t0_ms, double dt_s,
                         double pv_raw, double load)
{
    double eff = p->efficiency, off = 0;
    int64_t ended = SIM_PHYS_NO_END;
    /* Each pass ends at the interval's end or at an event that makes the next pass quieter
     * (a bound stops the battery, a target ends forced mode); four passes suffice. */
    for (int pass = 0; off < dt_s && pass < 8; pass++) {
        if (sim_phys_target_reached(p, st)) {
            sim_phys_release(st);
            ended = t0_ms + llround(off * 1000);
        }
        double pv, b, seg = dt_s - off, stop = 0;
        int event = 0; /* 1: a bound, 2: the soc_target */
        powers(p, st, pv_raw, load, &pv, &b);
        int has_tgt = st->mode == SIM_FORCED && !isnan(st->soc_target);
        double tgt = has_tgt ? sim_phys_wh_at(p, st->soc_target) : NAN;
        if (b < 0) {
            double lim = sim_phys_wh_at(p, p->soc_max_pct);
            stop = has_tgt && tgt < lim ? tgt : lim;
            double tt = (stop - st->stored_wh) / (-b * eff) * 3600.0;
            if (tt < seg) {
                seg = tt;
                event = has_tgt && tgt < lim ? 2 : 1;
            }
        } else if (b > 0) {
            double lim = sim_phys_wh_at(p, st->soc_min_pct);
            stop = has_tgt && tgt > lim ? tgt : lim;
            double tt = (st->stored_wh - stop) / (b / eff) * 3600.0;
            if (tt < seg) {
                seg = tt;
                event = has_tgt && tgt > lim ? 2 : 1;
            }
        }
        if (seg < 0) seg = 0;
        account(st, eff, seg, pv, load, b);
        off += seg;
        if (event) st->stored_wh = stop; /* land exactly on it, not a rounding error short */
        if (event == 2) {
            sim_phys_release(st);
            ended = t0_ms + llround(off * 1000);
        }
    }
    return ended;
}

int64_t sim_phys_advance(const sim_phys_world *w, const sim_phys_params *p, uint32_t dev,
                         sim_phys_state *st, int64_t from_ms, int64_t to_ms, int64_t end_ms)
{
    int64_t ended = SIM_PHYS_NO_END;
    int64_t at = from_ms;
    while (at < to_ms) {
        int64_t t0 = at;
        int64_t minute = floor_div(t0, SIM_MINUTE_MS);
        int64_t t1 = (minute + 1) * SIM_MINUTE_MS;
        if (t1 > to_ms) t1 = to_ms;
        int64_t end = st->mode == SIM_FORCED ? end_ms : 0;
        if (end && end <= t0) { /* a restored state whose end passed while we were away */
            sim_phys_release(st);
            ended = t0;
            end = 0;
        } else if (end && end < t1) {
            t1 = end;
        }
        double pv, load;
        inputs(w, p, dev, minute, &pv, &load);
        int64_t e = integrate(p, st, t0, (double)(t1 - t0) / 1000.0, pv, load);
        if (e != SIM_PHYS_NO_END) ended = e;
        at = t1;
        if (end && st->mode == SIM_FORCED && end <= t1) {
            sim_phys_release(st);
            ended = end;
        }
    }
    return ended;
}

void sim_phys_instant(const sim_phys_world *w, const sim_phys_params *p, uint32_t dev,
                      const sim_phys_state *st, int64_t now, sim_power *out)
{
    double pv_raw, load, pv, b;
    inputs(w, p, dev, floor_div(now, SIM_MINUTE_MS), &pv_raw, &load);
    powers(p, st, pv_raw, load, &pv, &b);
    out->pv_w = pv;
    out->load_w = load;
    out->battery_w = b;
    out->grid_w = load - pv - b;
}
