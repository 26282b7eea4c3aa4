/*
 * The core's clock and one-shot timers. In `run` they are libev timers on the default loop
 * and the clock is the wall clock; in `simulate` the clock is virtual and advanced by the
 * simulation driver, which fires due timers in order.
 */
#ifndef GP_TIMER_H
#define GP_TIMER_H

#include <stdint.h>

#include "gridpilot/plugin.h" /* gp_timer, gp_timer_cb */

struct ev_loop;

/* The one loop of the process (libev's default loop). */
struct ev_loop *gp_loop(void);

/* Unix ms: wall clock, or the virtual clock when one is set. */
int64_t gp_now_ms(void);

/* Start a one-shot timer; cb runs on the loop after `after_s` seconds (never inside this
 * call). Returns a handle owned by the timer module, valid until it fires (then freed right
 * after cb returns) or is stopped. */
gp_timer *gp_timer_start(double after_s, gp_timer_cb cb, void *ud);
/* Stop a timer that has not fired; NULL is ignored. */
void gp_timer_stop(gp_timer *t);

/* Virtual time (simulate): switch the clock and timers to virtual mode starting at start_ms.
 * gp_clock_advance fires, in time order, every timer due at or before to_ms (timers started
 * by callbacks included) and leaves the clock at to_ms. */
void gp_clock_set_virtual(int64_t start_ms);
void gp_clock_advance(int64_t to_ms);
int gp_clock_is_virtual(void);
/* Stop and free every pending timer (shutdown). */
void gp_timer_stop_all(void);

#endif
