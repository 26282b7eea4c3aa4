/* Quota windows. See ratelimit.h. */
#include "ratelimit.h"

#include <stdlib.h>

#include "str.h"

void gp_window_init(gp_window *w, uint32_t limit, int64_t period_ms)
{
    *w = (gp_window){0};
    w->limit = limit ? limit : 1;
    w->period_ms = period_ms > 0 ? period_ms : 1000;
    w->free_at = gp_xcalloc(w->limit, sizeof(int64_t)); /* 0: free since forever */
    /* Clocks and rounding: 2 % of the period (at least 250 ms) more. */
    w->margin_ms = w->period_ms / 50 > 250 ? w->period_ms / 50 : 250;
}

void gp_window_free(gp_window *w)
{
    free(w->free_at);
    w->free_at = NULL;
}

/* The slot that frees first. */
static uint32_t earliest(const gp_window *w)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < w->limit; i++)
        if (w->free_at[i] < w->free_at[best]) best = i;
    return best;
}

int64_t gp_window_ready_at(const gp_window *w, int64_t now_ms)
{
    int64_t at = w->free_at[earliest(w)];
    if (at < now_ms) at = now_ms;
    if (w->blocked_until > at) at = w->blocked_until;
    return at;
}

uint32_t gp_window_take(gp_window *w, int64_t now_ms)
{
    (void)now_ms;
    uint32_t slot = earliest(w);
    w->free_at[slot] = GP_WINDOW_IN_FLIGHT;
    w->sent++;
    return slot;
}

void gp_window_done(gp_window *w, uint32_t slot, int64_t now_ms)
{
    if (slot < w->limit) w->free_at[slot] = now_ms + w->period_ms + w->margin_ms;
}

void gp_window_cancel(gp_window *w, uint32_t slot)
{
    if (slot < w->limit) w->free_at[slot] = 0;
    if (w->sent) w->sent--;
}

void gp_window_block(gp_window *w, int64_t until_ms)
{
    if (until_ms > w->blocked_until) w->blocked_until = until_ms;
    w->limited++;
}

uint32_t gp_window_left(const gp_window *w, int64_t now_ms)
{
    if (w->blocked_until > now_ms) return 0;
    uint32_t left = 0;
    for (uint32_t i = 0; i < w->limit; i++)
        left += w->free_at[i] <= now_ms;
    return left;
}
