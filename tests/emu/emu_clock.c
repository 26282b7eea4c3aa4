/* The emulated clock: a base instant plus monotonic real time scaled by the speed. */
#include "emu_clock.h"

#include <math.h>

#include "timeutil.h"

void emu_clock_init(emu_clock *c, int64_t anchor_ms, double speed)
{
    int64_t wall = gp_wall_ms();
    c->base_ms = anchor_ms + llround((double)(wall - anchor_ms) * speed);
    c->base_mono = gp_mono_s();
    c->speed = speed;
}

int64_t emu_clock_now(const emu_clock *c)
{
    return c->base_ms + llround((gp_mono_s() - c->base_mono) * 1000.0 * c->speed);
}

/* Fold the time run so far into the base, so a new speed applies from now on. */
static void rebase(emu_clock *c)
{
    double mono = gp_mono_s();
    c->base_ms += llround((mono - c->base_mono) * 1000.0 * c->speed);
    c->base_mono = mono;
}

void emu_clock_set_speed(emu_clock *c, double speed)
{
    rebase(c);
    c->speed = speed;
}

void emu_clock_advance(emu_clock *c, int64_t ms)
{
    rebase(c);
    c->base_ms += ms;
}
