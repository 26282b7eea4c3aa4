/*
 * The physics of a home battery with rooftop PV and a house load, shared by the sim plugin and
 * the vendor emulators in tests/emu/. Pure: plain structs and functions, no host, no globals,
 * no allocation. Every result is a function of (seed, device index, time) and the state passed
 * in, so two programs with the same inputs compute the same numbers.
 *
 * Units and signs are the contract's: W, Wh, %; battery power > 0 when discharging, grid power
 * > 0 when importing; grid = load - pv - battery.
 *
 * PV and load are constant within each UTC minute. sim_phys_advance integrates a device from
 * one instant to another in steps that end at every minute boundary and at every instant its
 * state changes (a SoC bound or the soc_target reached, forced mode ending by time).
 */
#ifndef GP_SIM_PHYSICS_H
#define GP_SIM_PHYSICS_H

#include <stddef.h>
#include <stdint.h>

#define SIM_MINUTE_MS   60000
#define SIM_PHYS_NO_END INT64_MIN /* sim_phys_advance: forced mode did not end */

enum sim_mode { SIM_SELF = 0, SIM_FORCED = 1 };

/* Cumulative energy counters per device, Wh, all >= 0. */
enum sim_ctr {
    SIM_IMPORT,
    SIM_EXPORT,
    SIM_PV,
    SIM_LOAD,
    SIM_CHARGE,    /* AC energy into the battery */
    SIM_DISCHARGE, /* AC energy out of the battery */
    SIM_LOSS,      /* conversion losses, both directions */
    SIM_NCTR
};

/* A daily load profile: points at seconds after midnight UTC, interpolated linearly and
 * wrapped around midnight. The arrays belong to whoever built the profile; the physics only
 * reads them. */
typedef struct sim_profile {
    double *t_s; /* strictly increasing, in [0, 86400) */
    double *w;
    size_t n; /* 0: no profile */
} sim_profile;

/* What does not change while a device runs. */
typedef struct sim_phys_params {
    double capacity_wh; /* 0: a PV-only inverter */
    double max_charge_w, max_discharge_w;
    double efficiency; /* one-way, in (0, 1], applied on charge and on discharge */
    double soc_max_pct;
    double pv_peak_w; /* clear sky at 12:00 UTC; 0: no PV */
    double load_w;    /* mean house load when there is no profile */
    sim_profile profile;
    sim_profile pv_profile; /* replaces the clear-sky shape (and its clouds) when n > 0 */
    double pv_season;       /* 0..0.95: PV scaled by (1 + s cos(2pi (doy - 172) / 365.25)) /
                               (1 + s): full at the June solstice, (1 - s)/(1 + s) in December */
    int idle_own;           /* own mode idles the battery instead of self-consumption */
} sim_phys_params;

/* What a device's commands and its own running change. */
typedef struct sim_phys_state {
    uint8_t on;         /* inverter on; off means PV 0 W and battery 0 W */
    uint8_t mode;       /* sim_mode */
    double stored_wh;   /* energy in the battery */
    double soc_min_pct; /* lower SoC bound (100 - DoD) */
    double set_w;       /* forced: battery W (+ discharge), or the PV cap of a PV-only device */
    double soc_target;  /* forced: end when reached; NAN for none */
    double forced_wh;   /* AC energy the battery moved in forced mode since sim_phys_force */
    double ctr[SIM_NCTR];
} sim_phys_state;

/* Shared by every device of one simulation: the noise seed and precomputed constants. */
typedef struct sim_phys_world {
    uint64_t seed;
    double load_norm; /* makes the daily load shape average 1 */
} sim_phys_world;

typedef struct sim_power {
    double pv_w, load_w, battery_w, grid_w;
} sim_power;

void sim_phys_world_init(sim_phys_world *w, uint64_t seed);

/* The initial state: inverter on, self mode, soc_pct stored, counters at 0. */
void sim_phys_reset(const sim_phys_params *p, sim_phys_state *st, double soc_pct,
                    double soc_min_pct);

/* Stored energy at a SoC percentage. */
double sim_phys_wh_at(const sim_phys_params *p, double pct);
/* 1 if the device is in forced mode with a soc_target it has reached. */
int sim_phys_target_reached(const sim_phys_params *p, const sim_phys_state *st);

/* Enter forced mode: hold set_w (clamped to the power limits for a battery; a PV cap for a
 * PV-only device) until soc_target (NAN: none; ignored without a battery) is reached or the
 * caller ends it. Zeroes forced_wh. */
void sim_phys_force(const sim_phys_params *p, sim_phys_state *st, double set_w, double soc_target);
/* Back to self mode (the vendor's own mode). */
void sim_phys_release(sim_phys_state *st);

/* Integrate the device from from_ms to to_ms (nothing if to_ms <= from_ms). Forced mode ends
 * when its soc_target is reached or at end_ms (0: no end by time; an end_ms at or before
 * from_ms ends it at from_ms). Returns the instant forced mode ended during the call, or
 * SIM_PHYS_NO_END. The caller keeps its own "simulated up to" instant. */
int64_t sim_phys_advance(const sim_phys_world *w, const sim_phys_params *p, uint32_t dev,
                         sim_phys_state *st, int64_t from_ms, int64_t to_ms, int64_t end_ms);

/* The powers in force at `now` (the state must be advanced to now). */
void sim_phys_instant(const sim_phys_world *w, const sim_phys_params *p, uint32_t dev,
                      const sim_phys_state *st, int64_t now, sim_power *out);

#endif
