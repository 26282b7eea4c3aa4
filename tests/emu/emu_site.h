/*
 * An emulated site (a home battery with PV and load, or a PV-only inverter) for any vendor:
 * parameters drawn deterministically from (seed, index), state run by the sim plugin's
 * physics (plugins/sim/sim_physics.c), advanced lazily to whatever instant a request needs.
 * Vendors keep their own identity and reporting around it.
 */
#ifndef GP_EMU_SITE_H
#define GP_EMU_SITE_H

#include <stdint.h>

#include "sim_physics.h"

typedef struct emu_site {
    sim_phys_params p; /* no load profile: the seeded mean load and the daily shape */
    sim_phys_state st;
    int64_t last_ms;       /* simulated up to here */
    int64_t forced_end_ms; /* forced mode ends by time here; 0: no end by time */
    uint32_t idx;          /* the device index the noise is drawn for */
} emu_site;

/* A deterministic hash of (seed, a, b), and the same as a number in [0, 1). */
uint64_t emu_hash(uint64_t seed, uint64_t a, uint64_t b);
double emu_hash01(uint64_t seed, uint64_t a, uint64_t b);

/* Site idx of a fleet with this seed: capacity 5/10/15 kWh (none without a battery), power
 * limits, PV peak 3-10 kWp, mean load 250-900 W, initial SoC 20-90 %, lower bound
 * soc_min_pct; simulated from start_ms on. */
void emu_site_init(emu_site *s, uint64_t seed, uint32_t idx, int battery, double soc_min_pct,
                   int64_t start_ms);
/* Simulate up to to_ms. Returns when forced mode ended on the way (by its soc_target or at
 * forced_end_ms), or SIM_PHYS_NO_END. */
int64_t emu_site_advance(const sim_phys_world *w, emu_site *s, int64_t to_ms);
/* Force (set_w: + discharge, W; soc_target NAN for none) until end_ms (0: no end by time). */
void emu_site_force(emu_site *s, double set_w, double soc_target, int64_t end_ms);
void emu_site_release(emu_site *s);
/* State of charge in %, NAN without a battery. */
double emu_site_soc(const emu_site *s);

#endif
