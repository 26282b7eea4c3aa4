/*
 * Quota windows: "at most `limit` calls per `period`". Each of the `limit` slots holds one
 * call; a slot is taken when the call is sent and stays taken until the call's answer
 * arrives plus the period (plus a small margin). Counting from the answer rather than the
 * send is the conservative choice: the vendor counts a call when it receives it, which lies
 * somewhere in between, so however long one call takes to arrive the vendor never sees more
 * than `limit` in any period. It also stays inside fixed-minute counters.
 */
#ifndef GP_RATELIMIT_H
#define GP_RATELIMIT_H

#include <stdint.h>

#define GP_WINDOW_IN_FLIGHT INT64_MAX

typedef struct gp_window {
    int64_t *free_at; /* per slot: when it may be used again; GP_WINDOW_IN_FLIGHT while the
                         call has no answer yet; owned */
    uint32_t limit;
    int64_t period_ms;
    int64_t margin_ms;
    int64_t blocked_until;           /* after a vendor "too many requests": nothing before this */
    uint64_t sent, delayed, limited; /* counters for metrics */
} gp_window;

void gp_window_init(gp_window *w, uint32_t limit, int64_t period_ms);
void gp_window_free(gp_window *w);
/* The earliest time (ms) a call may go; <= now means now; GP_WINDOW_IN_FLIGHT when every
 * slot waits for an answer (the answer will free one). */
int64_t gp_window_ready_at(const gp_window *w, int64_t now_ms);
/* Take a slot for a call sent now (only when ready); returns the slot for gp_window_done. */
uint32_t gp_window_take(gp_window *w, int64_t now_ms);
/* The call of `slot` got its answer (or failed) at now_ms. */
void gp_window_done(gp_window *w, uint32_t slot, int64_t now_ms);
/* The call of `slot` never left: free the slot as if unused. */
void gp_window_cancel(gp_window *w, uint32_t slot);
/* The vendor said "too many": send nothing before until_ms. */
void gp_window_block(gp_window *w, int64_t until_ms);
/* Calls still allowed right now (for metrics). */
uint32_t gp_window_left(const gp_window *w, int64_t now_ms);

#endif
