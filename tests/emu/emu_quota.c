/* Sliding-window rate limit: the call limit+1 back must be outside the window. */
#include "emu_quota.h"

#include <stdlib.h>
#include <string.h>

#include "str.h"

void emu_quota_init(emu_quota *q, size_t limit, int64_t window_ms, int count_refused)
{
    memset(q, 0, sizeof(*q));
    q->limit = limit ? limit : 1;
    q->t = gp_xcalloc(q->limit, sizeof(int64_t));
    q->window_ms = window_ms;
    q->count_refused = count_refused;
}

int emu_quota_hit(emu_quota *q, int64_t now)
{
    /* With `limit` calls remembered, the oldest is the limit-th most recent: if it is still
     * inside the window, this call would be one too many. */
    int hit = q->n == q->limit && q->t[q->head] > now - q->window_ms;
    if (hit && !q->count_refused) return 1;
    if (q->n < q->limit) {
        q->t[(q->head + q->n) % q->limit] = now;
        q->n++;
    } else {
        q->t[q->head] = now;
        q->head = (q->head + 1) % q->limit;
    }
    return hit;
}

void emu_quota_free(emu_quota *q)
{
    free(q->t);
    memset(q, 0, sizeof(*q));
}
