/*
 * The emulated clock: emulated = anchor + (wall - anchor) * speed at start, then it runs at
 * `speed` emulated seconds per real second (0 stops it) and can be moved ahead. It never goes
 * back. Not locked: the framework calls it with its mutex held.
 */
#ifndef GP_EMU_CLOCK_H
#define GP_EMU_CLOCK_H

#include <stdint.h>

typedef struct emu_clock {
    int64_t base_ms;  /* emulated time at base_mono */
    double base_mono; /* monotonic seconds */
    double speed;     /* >= 0 */
} emu_clock;

void emu_clock_init(emu_clock *c, int64_t anchor_ms, double speed);
int64_t emu_clock_now(const emu_clock *c);
/* Change the rate from now on (now itself does not move). speed >= 0. */
void emu_clock_set_speed(emu_clock *c, double speed);
/* Jump ahead by ms >= 0. */
void emu_clock_advance(emu_clock *c, int64_t ms);

#endif
