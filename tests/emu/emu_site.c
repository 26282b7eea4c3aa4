/* Emulated sites: seeded parameters around the shared physics. */
#include "emu_site.h"

#include <math.h>
#include <string.h>

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t emu_hash(uint64_t seed, uint64_t a, uint64_t b)
{
    return mix(mix(mix(seed) ^ a) ^ b);
}

double emu_hash01(uint64_t seed, uint64_t a, uint64_t b)
{
    return (double)(emu_hash(seed, a, b) >> 11) * 0x1.0p-53;
}

/* Streams of the parameter draws (distinct from the physics' noise salts by construction:
 * those hash a different layout). */
enum { P_CAP = 101, P_PV, P_LOAD, P_SOC };

void emu_site_init(emu_site *s, uint64_t seed, uint32_t idx, int battery, double soc_min_pct,
                   int64_t start_ms)
{
    memset(s, 0, sizeof(*s));
    s->idx = idx;
    static const double caps[] = {5000, 10000, 15000};
    double cap = battery ? caps[emu_hash(seed, idx, P_CAP) % 3] : 0;
    s->p.capacity_wh = cap;
    s->p.max_charge_w = cap == 0 ? 0 : cap <= 5000 ? 2500 : 5000;
    s->p.max_discharge_w = s->p.max_charge_w;
    s->p.efficiency = 0.95;
    s->p.soc_max_pct = 100;
    s->p.pv_peak_w = 3000 + 500 * (double)(emu_hash(seed, idx, P_PV) % 15);
    s->p.load_w = 250 + 10 * (double)(emu_hash(seed, idx, P_LOAD) % 66);
    double soc = 20 + (double)(emu_hash(seed, idx, P_SOC) % 71);
    if (soc < soc_min_pct) soc = soc_min_pct;
    sim_phys_reset(&s->p, &s->st, battery ? soc : 0, soc_min_pct);
    s->last_ms = start_ms;
}

int64_t emu_site_advance(const sim_phys_world *w, emu_site *s, int64_t to_ms)
{
    if (to_ms <= s->last_ms) return SIM_PHYS_NO_END;
    int64_t end = s->st.mode == SIM_FORCED ? s->forced_end_ms : 0;
    int64_t ended = sim_phys_advance(w, &s->p, s->idx, &s->st, s->last_ms, to_ms, end);
    s->last_ms = to_ms;
    if (ended != SIM_PHYS_NO_END) s->forced_end_ms = 0;
    return ended;
}

void emu_site_force(emu_site *s, double set_w, double soc_target, int64_t end_ms)
{
    sim_phys_force(&s->p, &s->st, set_w, soc_target);
    s->forced_end_ms = end_ms;
}

void emu_site_release(emu_site *s)
{
    sim_phys_release(&s->st);
    s->forced_end_ms = 0;
}

double emu_site_soc(const emu_site *s)
{
    return s->p.capacity_wh > 0 ? 100.0 * s->st.stored_wh / s->p.capacity_wh : NAN;
}
