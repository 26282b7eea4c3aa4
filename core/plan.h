/*
 * The cost-optimal charge/discharge schedule of one battery over priced slots (gp.plan).
 *
 * Pure C, no Lua, no allocation: the caller hands in a work buffer of gp_plan_work_size()
 * bytes (reusable across calls, so planning a fleet every tick mallocs nothing).
 *
 * Model, per slot of h hours with battery AC power b (W, + discharge, - charge):
 *   grid  = load - pv - b                       (W, + import)
 *   cost  = grid * h / 1000 * (grid > 0 ? import : export)   (export earns)
 *   store -= b * h / eff   when discharging,   store -= b * h * eff   when charging
 * Stored energy is discretised on a grid of soc_step_pct of capacity anchored at the
 * starting SoC (the start is exact); every slot moves a whole number of grid steps within
 * the power limits (so usable power is rounded down to whole steps per slot). Exact dynamic
 * programming over that grid minimises sum(cost) - terminal_price * final_stored_kwh.
 *
 * Error bound (see docs/lua-api.md, "gp.plan"): with ΔE the grid step in kWh and, for each
 * slot t, [lo_t, hi_t] the range of its marginal prices per kWh stored (import and export
 * times eff when discharging, divided by eff when charging), the plan's objective exceeds the
 * best continuous schedule under the same rounded power limits by at most
 *   ΔE * ( sum over slot boundaries of (max(hi_t, hi_t+1) - min(lo_t, lo_t+1))
 *          + max(|hi_last - terminal_price|, |lo_last - terminal_price|) ).
 * Proof sketch: round the continuous optimum's stored energy up to the grid at every slot
 * boundary (clamped at the top grid point): every constraint still holds (ceil of a
 * difference bounded by an integer stays bounded by it) and each boundary moves by less
 * than ΔE; summing the cost change by parts gives one ΔE per boundary valued at the change
 * of marginal price across it. gp_plan_out.error_bound is this figure for the call's prices.
 *
 * Cost: O(T * (N + K)) for T slots, N grid points (100 / soc_step_pct + 1) and K the steps
 * one slot's power can move. A DP step is a min-plus convolution; when the slot's cost is
 * convex in the energy moved (0 <= export <= import, the usual case) it merges two convex
 * slope sequences, otherwise it takes a sliding-window minimum over each of the (at most
 * three) stretches where the slot's cost is linear. Measured (tests/bench/bench_plan): about
 * 50 us per device for 96 half-hour slots at 1 %, 0.4-0.6 ms at 0.1 %.
 */
#ifndef GP_PLAN_H
#define GP_PLAN_H

#include <stddef.h>

typedef struct gp_plan_slot {
    double hours;        /* slot length; <= 0: the battery idles there */
    double import;       /* currency per kWh; NAN (unknown): the battery idles there and
                            the slot adds nothing to cost or baseline_cost */
    double export_;      /* currency per kWh earned for export; NAN: 0 */
    double pv_w, load_w; /* forecast mean power over the slot (W); NAN: 0 */
} gp_plan_slot;

typedef enum gp_plan_method {
    GP_PLAN_AUTO = 0, /* slope merging where convex, sliding windows elsewhere: O(N + K) */
    GP_PLAN_BOUNDED,  /* every slot: search the transitions the power limits allow, O(N K) */
    GP_PLAN_FULL,     /* every slot: all N x N transitions (the naive baseline), O(N^2) */
} gp_plan_method;

typedef struct gp_plan_in {
    const gp_plan_slot *slots; /* n_slots of them, in time order; borrowed */
    size_t n_slots;
    double soc_pct;                       /* now */
    double capacity_wh;                   /* > 0 */
    double max_charge_w, max_discharge_w; /* >= 0 (AC side) */
    double soc_min_pct, soc_max_pct;      /* NAN: 0 and 100. A start outside them is kept
                                             reachable (never pushed further out) */
    double efficiency;                    /* one-way, (0, 1]; round trip = efficiency^2 */
    double soc_step_pct;                  /* grid resolution, [0.1, 50] */
    double final_soc_pct;  /* minimum SoC at the end, NAN for none; lowered to what the power
                              limits can reach */
    double terminal_price; /* value of stored energy at the end, currency per kWh */
    gp_plan_method method;
    /* Polled once per slot (may be NULL): nonzero stops the plan with GP_PLAN_STOPPED. */
    int (*stop)(void *ud);
    void *stop_ud;
} gp_plan_in;

typedef struct gp_plan_out {
    double *setpoint_w;   /* caller's array of n_slots: battery AC power per slot (+ discharge) */
    double *soc_pct;      /* caller's array of n_slots: SoC at each slot's end */
    double cost;          /* sum of slot costs of the plan (currency; terminal value excluded) */
    double baseline_cost; /* the same with the battery idle */
    double final_soc_pct;
    double error_bound; /* see above (currency) */
    size_t states;      /* grid points used */
} gp_plan_out;

#define GP_PLAN_STOPPED (-2)

/* Bytes of work buffer gp_plan needs for this input (depends on n_slots, soc_step_pct and
 * the SoC range only); 0 when the input is invalid (gp_plan then says why). */
size_t gp_plan_work_size(const gp_plan_in *in);

/* Plan. work: at least gp_plan_work_size(in) bytes, aligned for double; contents scratch.
 * Returns 0, -1 with a reason in err for invalid input, or GP_PLAN_STOPPED. */
int gp_plan(const gp_plan_in *in, void *work, size_t work_size, gp_plan_out *out, char *err,
            size_t errlen);

#endif
