/*
 * gp_plan: exact dynamic programming over a discretised SoC grid (model, error bound and
 * cost in plan.h).
 *
 * V_t(i) is the least cost from the start of slot t at grid point i to the end, the
 * terminal value included; V_T is -terminal_price * stored energy above the required final
 * point and +inf below it. One DP step is V_t(i) = min_k c_t(k) + V_t+1(i + k), k the grid
 * steps moved in slot t (within the power limits) and c_t(k) that slot's cost. c_t depends
 * on k only, so the step is a min-plus convolution; when both c_t and V_t+1 are convex
 * (always, while 0 <= export <= import) it is computed by merging the two slope sequences in
 * O(N + K). Otherwise c_t is still linear on at most three stretches of k (the grid power
 * is linear in k on each side of k = 0, and the price changes once where it crosses 0), and
 * each stretch is a sliding-window minimum: O(N) per stretch. A forward pass
 * then follows the argmin from the start, preferring the smaller move on ties so that flat
 * prices never make the battery cycle.
 */
#include "plan.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define STEP_EPS   1e-9   /* slack when counting whole grid steps (exact multiples count) */
#define MAX_SPAN   200.0  /* % of capacity the grid may span (start outside the bounds) */
#define CONVEX_TOL 1e-10  /* relative: slope decreases below this are rounding noise */
#define TIE_TOL    1e-9   /* relative: moves whose costs differ less than this are tied */
#define STOP_EVERY 262144 /* inner-loop steps between polls of in->stop (well under 1 ms) */

typedef struct grid {
    int n;         /* grid points */
    int j0;        /* the start's index */
    int jf;        /* lowest index allowed at the end */
    double e0, de; /* stored energy at j0 and per step (Wh) */
    double eff, cap;
    int jmin, jmax; /* the SoC bounds' indices (the grid goes beyond when the start does) */
} grid;

typedef struct slotp {
    double h, imp, exp, base; /* hours, prices, load - pv (W) */
    int active;               /* the battery may move in this slot */
    int up, down;             /* most steps charged / discharged in the slot */
} slotp;

/* The work buffer, carved from the caller's block. */
typedef struct work {
    double *v;    /* (T + 1) rows of n: V_t */
    double *c;    /* 2n - 1: c_t(k) at c[k + n - 1] */
    double *conv; /* 3n: one convolution, or one sliding window's values */
    int *lo, *hi; /* T + 1 each: the finite range of V_t */
    int *deque;   /* n: one sliding window */
} work;

static double defaulted(double v, double dflt)
{
    return isnan(v) ? dflt : v;
}

static int check_input(const gp_plan_in *in, char *err, size_t errlen)
{
    const char *bad = NULL;
    double smin = defaulted(in->soc_min_pct, 0), smax = defaulted(in->soc_max_pct, 100);
    if (in->n_slots && !in->slots)
        bad = "no slots";
    else if (!isfinite(in->soc_pct))
        bad = "soc_pct must be a number";
    else if (!(in->capacity_wh > 0) || !isfinite(in->capacity_wh))
        bad = "capacity_wh must be positive";
    else if (!(in->max_charge_w >= 0) || !isfinite(in->max_charge_w))
        bad = "max_charge_w must be >= 0";
    else if (!(in->max_discharge_w >= 0) || !isfinite(in->max_discharge_w))
        bad = "max_discharge_w must be >= 0";
    else if (!isfinite(smin) || !isfinite(smax) || smin > smax)
        bad = "soc_min_pct must not exceed soc_max_pct";
    else if (!(in->efficiency > 0 && in->efficiency <= 1))
        bad = "efficiency must be in (0, 1]";
    else if (!(in->soc_step_pct >= 0.1 && in->soc_step_pct <= 50))
        bad = "soc_step_pct must be in [0.1, 50]";
    else if (fmax(smax, in->soc_pct) - fmin(smin, in->soc_pct) > MAX_SPAN)
        bad = "soc_pct and the SoC bounds span more than 200 %";
    else if (!isnan(in->final_soc_pct) && !isfinite(in->final_soc_pct))
        bad = "final_soc_pct must be a number";
    else if (!isfinite(in->terminal_price))
        bad = "terminal_price must be a number";
    if (bad) snprintf(err, errlen, "%s", bad);
    return bad ? -1 : 0;
}

/* Grid points below and above the start (the final requirement is set later). */
static void grid_setup(const gp_plan_in *in, grid *g)
{
    double smin = defaulted(in->soc_min_pct, 0), smax = defaulted(in->soc_max_pct, 100);
    double lo = fmin(smin, in->soc_pct), hi = fmax(smax, in->soc_pct);
    int below = (int)floor((in->soc_pct - lo) / in->soc_step_pct + STEP_EPS);
    int above = (int)floor((hi - in->soc_pct) / in->soc_step_pct + STEP_EPS);
    g->n = below + above + 1;
    g->j0 = below;
    g->jf = 0;
    g->cap = in->capacity_wh;
    g->e0 = in->soc_pct / 100.0 * in->capacity_wh;
    g->de = in->soc_step_pct / 100.0 * in->capacity_wh;
    g->eff = in->efficiency;
    g->jmin = below - (int)floor((in->soc_pct - smin) / in->soc_step_pct + STEP_EPS);
    g->jmax = below + (int)floor((smax - in->soc_pct) / in->soc_step_pct + STEP_EPS);
    if (g->jmin < 0) g->jmin = 0;
    if (g->jmax > g->n - 1) g->jmax = g->n - 1;
}

/*
 * The states allowed at time t (before slot t). Inside the bounds everything is; a start
 * outside them (a DoD just raised above the SoC, say) must come back as fast as the power
 * limits allow and never leave again: the allowed band narrows from the start by the most
 * each slot can move. O(t); only called when the start is outside.
 */
static void slot_params(const gp_plan_in *in, const grid *g, size_t t, slotp *p);

static void band_at(const gp_plan_in *in, const grid *g, size_t t, int *lo, int *hi)
{
    *lo = g->j0 < g->jmin ? g->j0 : g->jmin;
    *hi = g->j0 > g->jmax ? g->j0 : g->jmax;
    for (size_t s = 0; s < t && (*lo < g->jmin || *hi > g->jmax); s++) {
        slotp p;
        slot_params(in, g, s, &p);
        *lo = *lo + p.up < g->jmin ? *lo + p.up : g->jmin;
        *hi = *hi - p.down > g->jmax ? *hi - p.down : g->jmax;
    }
}

/* Make the states outside band_at(t) unreachable in the value row v of time t. */
static void mask_band(const gp_plan_in *in, const grid *g, size_t t, double *v)
{
    if (g->j0 >= g->jmin && g->j0 <= g->jmax) return;
    int lo, hi;
    band_at(in, g, t, &lo, &hi);
    for (int j = 0; j < lo; j++)
        v[j] = INFINITY;
    for (int j = hi + 1; j < g->n; j++)
        v[j] = INFINITY;
}

static size_t layout(const gp_plan_in *in, int n, work *w, void *base)
{
    size_t t = in->n_slots;
    size_t doubles = (t + 1) * (size_t)n + (2 * (size_t)n - 1) + 3 * (size_t)n;
    size_t ints = 2 * (t + 1) + (size_t)n;
    if (base) {
        double *d = base;
        w->v = d;
        w->c = w->v + (t + 1) * (size_t)n;
        w->conv = w->c + 2 * (size_t)n - 1;
        int *i = (int *)(w->conv + 3 * (size_t)n);
        w->lo = i;
        w->hi = i + (t + 1);
        w->deque = i + 2 * (t + 1);
    }
    return doubles * sizeof(double) + ints * sizeof(int);
}

size_t gp_plan_work_size(const gp_plan_in *in)
{
    char err[128];
    if (check_input(in, err, sizeof err) != 0) return 0;
    grid g;
    grid_setup(in, &g);
    /* Refuse sizes whose arithmetic could overflow (far beyond any memory limit). */
    if ((double)(in->n_slots + 1) * g.n * sizeof(double) > 1e12) return 0;
    return layout(in, g.n, NULL, NULL);
}

static void slot_params(const gp_plan_in *in, const grid *g, size_t t, slotp *p)
{
    const gp_plan_slot *s = &in->slots[t];
    p->h = s->hours;
    p->imp = s->import;
    p->exp = defaulted(s->export_, 0);
    p->base = defaulted(s->load_w, 0) - defaulted(s->pv_w, 0);
    p->active =
        isfinite(p->h) && p->h > 0 && isfinite(p->imp) && isfinite(p->exp) && isfinite(p->base);
    p->up = p->down = 0;
    if (!p->active) return;
    double up = floor(in->max_charge_w * g->eff * p->h / g->de + STEP_EPS);
    double down = floor(in->max_discharge_w * p->h / (g->eff * g->de) + STEP_EPS);
    p->up = (int)fmin(up, g->n - 1);
    p->down = (int)fmin(down, g->n - 1);
}

/* Battery AC power (W, + discharge) that moves k grid steps into the store in slot p. */
static double power_of(const grid *g, const slotp *p, int k)
{
    if (k == 0) return 0;
    double e = k * g->de;
    return k > 0 ? -e / (g->eff * p->h) : -e * g->eff / p->h;
}

static double slot_cost(const slotp *p, double b)
{
    if (!p->active) return 0;
    double grid_w = p->base - b;
    return grid_w * p->h / 1000.0 * (grid_w > 0 ? p->imp : p->exp);
}

/* c[k] for k in [-down, up] (c points at k = 0): slot_cost(power_of(k)) with the
 * divisions hoisted out of the loop (this is the planner's inner loop). */
static void fill_costs(const grid *g, const slotp *p, double *c)
{
    c[0] = slot_cost(p, 0);
    if (!p->active) return;
    double kwh = p->h / 1000.0;
    double up_w = g->de / (g->eff * p->h), down_w = g->de * g->eff / p->h; /* W per step */
    for (int k = 1; k <= p->up; k++) {
        double grid_w = p->base + k * up_w;
        c[k] = grid_w * kwh * (grid_w > 0 ? p->imp : p->exp);
    }
    for (int k = 1; k <= p->down; k++) {
        double grid_w = p->base - k * down_w;
        c[-k] = grid_w * kwh * (grid_w > 0 ? p->imp : p->exp);
    }
}

/* Is x[0..len) convex, up to rounding? */
static int convex(const double *x, int len)
{
    double scale = 0;
    for (int i = 0; i < len; i++)
        if (fabs(x[i]) > scale) scale = fabs(x[i]);
    double tol = CONVEX_TOL * (scale + 1e-300);
    for (int i = 0; i + 2 < len; i++)
        if ((x[i + 2] - x[i + 1]) - (x[i + 1] - x[i]) < -tol) return 0;
    return 1;
}

/* Is c_t convex? Always when 0 <= export <= import: the grid power is convex in k (a step
 * charged draws more than a step discharged delivers) and the price curve is convex and
 * non-decreasing in it. Otherwise it is checked. */
static int slot_convex(const slotp *p, const double *c)
{
    if (!p->active || (p->exp >= 0 && p->exp <= p->imp)) return 1;
    return convex(c - p->down, p->up + p->down + 1);
}

/* Marginal prices per kWh stored in slot p: [lo, hi]. */
static void marginal_range(const grid *g, const slotp *p, double *lo, double *hi)
{
    double m[4] = {p->imp / g->eff, p->exp / g->eff, p->imp * g->eff, p->exp * g->eff};
    *lo = *hi = m[0];
    for (int i = 1; i < 4; i++) {
        *lo = fmin(*lo, m[i]);
        *hi = fmax(*hi, m[i]);
    }
}

/* First pass: the reachable final requirement and the error bound. */
static void prepare(const gp_plan_in *in, grid *g, gp_plan_out *out)
{
    int top = g->j0; /* highest point the power limits can reach */
    double sum = 0, plo = 0, phi = 0;
    int seen = 0;
    for (size_t t = 0; t < in->n_slots; t++) {
        slotp p;
        slot_params(in, g, t, &p);
        top = top + p.up < g->n - 1 ? top + p.up : g->n - 1;
        if (!p.active) continue;
        double lo, hi;
        marginal_range(g, &p, &lo, &hi);
        if (seen) sum += fmax(hi, phi) - fmin(lo, plo);
        plo = lo, phi = hi, seen = 1;
    }
    if (seen) sum += fmax(fabs(phi - in->terminal_price), fabs(plo - in->terminal_price));
    out->error_bound = g->de / 1000.0 * sum;

    if (!isnan(in->final_soc_pct)) {
        double steps = ceil((in->final_soc_pct / 100.0 * g->cap - g->e0) / g->de - STEP_EPS);
        double jf = fmax(0, fmin((double)g->j0 + steps, g->n - 1));
        g->jf = (int)jf < top ? (int)jf : top;
    }
}

/* V_t from V_t+1 = a by merging slopes: both convex. */
static void step_merge(const grid *g, const slotp *p, const double *c, const double *a, int a0,
                       int a1, double *v, double *conv)
{
    /* V_t(i) = min over j + m = i of a[j] + c(-m), m in [-up, down]: a convolution with c
     * reversed. Its slopes are c(-m-1) - c(-m); the result starts at i = a0 - up. */
    int la = a1 - a0 + 1, lc = p->up + p->down + 1;
    int pa = 0, pc = 0;
    double val = a[a0] + c[p->up];
    conv[0] = val;
    for (int s = 1; s < la + lc - 1; s++) {
        double sa = pa < la - 1 ? a[a0 + pa + 1] - a[a0 + pa] : INFINITY;
        double sc = pc < lc - 1 ? c[p->up - pc - 1] - c[p->up - pc] : INFINITY;
        if (sa <= sc) {
            val += sa;
            pa++;
        } else {
            val += sc;
            pc++;
        }
        conv[s] = val;
    }
    int first = a0 - p->up;
    for (int i = 0; i < g->n; i++) {
        int s = i - first;
        v[i] = s >= 0 && s < la + lc - 1 ? conv[s] : INFINITY;
    }
}

/* A stretch of moves k in [k1, k2] over which c_t(k) = alpha + beta * k exactly. */
typedef struct piece {
    int k1, k2;
    double alpha, beta;
} piece;

/* The side of c_t from k = 0 to k = end (+up or -down), where the grid power is
 * base + k * w (w: grid W per step on that side): linear while that power keeps the sign it
 * has at k = 0, linear again after it crosses 0. One or two pieces; returns how many. */
static int side_pieces(const slotp *p, int end, double w, piece *out)
{
    int dir = end > 0 ? 1 : -1, steps = dir * end;
    double kwh = p->h / 1000.0;
    double first = p->base > 0 ? p->imp : p->base < 0 ? p->exp : dir > 0 ? p->imp : p->exp;
    double second = first == p->imp ? p->exp : p->imp;
    double cross = -dir * p->base / w; /* steps from k = 0 to where the power is 0 */
    int same = cross > 0 ? (int)fmin(floor(cross), steps) : steps;
    int n = 0;
    int k1 = 0, k2 = dir * same;
    out[n++] =
        (piece){k1 < k2 ? k1 : k2, k1 < k2 ? k2 : k1, p->base * kwh * first, w * kwh * first};
    if (same < steps) {
        k1 = dir * (same + 1), k2 = end;
        out[n++] =
            (piece){k1 < k2 ? k1 : k2, k1 < k2 ? k2 : k1, p->base * kwh * second, w * kwh * second};
    }
    return n;
}

/* V_t from V_t+1 = a for any c_t: c_t is linear on at most three stretches of k, and over a
 * stretch min_k alpha + beta k + a[i + k] = alpha - beta i + min over a window of j of
 * (a[j] + beta j), a sliding-window minimum (monotone deque): O(n) per stretch. */
static void step_pieces(const grid *g, const slotp *p, const double *a, int a0, int a1, double *v,
                        double *wv, int *dq)
{
    piece pc[4];
    int np = 0;
    if (!p->active) {
        pc[np++] = (piece){0, 0, 0, 0};
    } else {
        np += side_pieces(p, p->up, g->de / (g->eff * p->h), pc + np);
        np += side_pieces(p, -p->down, g->de * g->eff / p->h, pc + np);
    }
    for (int i = 0; i < g->n; i++)
        v[i] = INFINITY;
    for (int q = 0; q < np; q++) {
        const piece *c = &pc[q];
        int head = 0, tail = 0, next = a0;
        for (int i = 0; i < g->n; i++) {
            int lo = i + c->k1 > a0 ? i + c->k1 : a0;
            int hi = i + c->k2 < a1 ? i + c->k2 : a1;
            if (next < lo) next = lo;
            for (; next <= hi; next++) {
                wv[next] = a[next] + c->beta * next;
                while (tail > head && wv[dq[tail - 1]] >= wv[next])
                    tail--;
                dq[tail++] = next;
            }
            while (head < tail && dq[head] < lo)
                head++;
            if (head < tail) {
                double x = c->alpha - c->beta * i + wv[dq[head]];
                if (x < v[i]) v[i] = x;
            }
        }
    }
}

/* V_t from V_t+1 = a over the transitions the power limits allow. */
static void step_bounded(const grid *g, const slotp *p, const double *c, const double *a, int a0,
                         int a1, double *v)
{
    for (int i = 0; i < g->n; i++) {
        int kmin = a0 - i > -p->down ? a0 - i : -p->down;
        int kmax = a1 - i < p->up ? a1 - i : p->up;
        double best = INFINITY;
        for (int k = kmin; k <= kmax; k++) {
            double x = c[k] + a[i + k];
            if (x < best) best = x;
        }
        v[i] = best;
    }
}

/* The naive baseline: every pair of grid points, feasibility tested per pair. */
static void step_full(const grid *g, const slotp *p, const double *c, const double *a, double *v)
{
    for (int i = 0; i < g->n; i++) {
        double best = INFINITY;
        for (int j = 0; j < g->n; j++) {
            int k = j - i;
            if (k < -p->down || k > p->up || !isfinite(a[j])) continue;
            double x = c[k] + a[j];
            if (x < best) best = x;
        }
        v[i] = best;
    }
}

static void domain(const double *v, int n, int *lo, int *hi)
{
    int l = 0, h = n - 1;
    while (l < n && !isfinite(v[l]))
        l++;
    while (h > l && !isfinite(v[h]))
        h--;
    *lo = l;
    *hi = h;
}

static int backward(const gp_plan_in *in, const grid *g, work *w)
{
    size_t T = in->n_slots;
    int n = g->n;
    double *vt = w->v + T * (size_t)n;
    for (int j = 0; j < n; j++)
        vt[j] =
            j >= g->jf ? -in->terminal_price * (g->e0 + (j - g->j0) * g->de) / 1000.0 : INFINITY;
    mask_band(in, g, T, vt);
    domain(vt, n, &w->lo[T], &w->hi[T]);
    double *c = w->c + n - 1;
    int v_convex = 1; /* V_T is linear; a merge of convex sequences is convex */
    double since_poll = 0;
    for (size_t t = T; t-- > 0;) {
        if (in->stop && since_poll >= STOP_EVERY) {
            if (in->stop(in->stop_ud)) return GP_PLAN_STOPPED;
            since_poll = 0;
        }
        slotp p;
        slot_params(in, g, t, &p);
        fill_costs(g, &p, c);
        const double *a = w->v + (t + 1) * (size_t)n;
        double *v = w->v + t * (size_t)n;
        int a0 = w->lo[t + 1], a1 = w->hi[t + 1];
        int k = p.up + p.down + 1;
        if (in->method == GP_PLAN_FULL) {
            step_full(g, &p, c, a, v);
            since_poll += (double)n * n;
        } else if (in->method == GP_PLAN_AUTO && slot_convex(&p, c) &&
                   (v_convex || convex(a + a0, a1 - a0 + 1))) {
            step_merge(g, &p, c, a, a0, a1, v, w->conv);
            v_convex = 1;
            since_poll += 3.0 * n + k;
        } else if (in->method == GP_PLAN_AUTO) {
            step_pieces(g, &p, a, a0, a1, v, w->conv, w->deque);
            v_convex = 0;
            since_poll += 8.0 * n;
        } else {
            step_bounded(g, &p, c, a, a0, a1, v);
            v_convex = 0;
            since_poll += (double)n * k;
        }
        mask_band(in, g, t, v);
        domain(v, n, &w->lo[t], &w->hi[t]);
    }
    return 0;
}

/* Follow the argmin from the start; ties go to the smaller move (idle first). */
static void forward(const gp_plan_in *in, const grid *g, work *w, gp_plan_out *out)
{
    int n = g->n, i = g->j0;
    double *c = w->c + n - 1;
    out->cost = out->baseline_cost = 0;
    for (size_t t = 0; t < in->n_slots; t++) {
        slotp p;
        slot_params(in, g, t, &p);
        fill_costs(g, &p, c);
        const double *a = w->v + (t + 1) * (size_t)n;
        int a0 = w->lo[t + 1], a1 = w->hi[t + 1];
        int best_k = 0;
        double best = INFINITY;
        int reach = p.up > p.down ? p.up : p.down;
        for (int r = 0; r <= reach; r++) {
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                int k = sgn * r;
                if (k < -p.down || k > p.up || i + k < a0 || i + k > a1) continue;
                double x = c[k] + a[i + k];
                if (best == INFINITY || x < best - TIE_TOL * (1 + fabs(best))) {
                    best = x;
                    best_k = k;
                }
                if (r == 0) break;
            }
        }
        i += best_k;
        out->setpoint_w[t] = power_of(g, &p, best_k);
        out->soc_pct[t] = (g->e0 + (i - g->j0) * g->de) / g->cap * 100.0;
        out->cost += c[best_k];
        out->baseline_cost += c[0];
    }
    out->final_soc_pct = (g->e0 + (i - g->j0) * g->de) / g->cap * 100.0;
}

int gp_plan(const gp_plan_in *in, void *work_buf, size_t work_size, gp_plan_out *out, char *err,
            size_t errlen)
{
    if (check_input(in, err, errlen) != 0) return -1;
    size_t need = gp_plan_work_size(in);
    if (need == 0 || work_size < need || !work_buf) {
        snprintf(err, errlen, need ? "work buffer too small" : "too many slots");
        return -1;
    }
    grid g;
    grid_setup(in, &g);
    work w;
    layout(in, g.n, &w, work_buf);
    out->states = (size_t)g.n;
    prepare(in, &g, out);
    int rc = backward(in, &g, &w);
    if (rc != 0) return rc;
    forward(in, &g, &w, out);
    return 0;
}
