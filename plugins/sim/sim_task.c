/* Ended tasks of the sim plugin: a sorted array so polls find them by number, also after a
 * restart (from their kv record), until they are old enough to forget. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define H sim_host

#define KEEP_AFTER_END_MS  (24LL * 3600000)
#define KEEP_AFTER_DONE_MS (3600000LL)

uint64_t sim_task_ref(const char *ref)
{
    if (!ref || strncmp(ref, "sim-", 4) != 0) return 0;
    const char *p = ref + 4;
    if (*p < '1' || *p > '9') return 0;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return 0;
    errno = 0;
    unsigned long long n = strtoull(p, NULL, 10);
    return errno ? 0 : (uint64_t)n;
}

/* Index of the first ended task with number >= n. */
static size_t lower_bound(const sim *s, uint64_t n)
{
    size_t lo = 0, hi = s->n_ended;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ended[mid].n < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static sim_task *insert(sim *s, const sim_task *t)
{
    size_t at = lower_bound(s, t->n);
    if (at < s->n_ended && s->ended[at].n == t->n) {
        s->ended[at] = *t;
        return &s->ended[at];
    }
    if (s->n_ended == s->cap_ended) {
        s->cap_ended = s->cap_ended ? s->cap_ended * 2 : 16;
        s->ended = realloc(s->ended, s->cap_ended * sizeof(sim_task));
        if (!s->ended) abort();
    }
    memmove(&s->ended[at + 1], &s->ended[at], (s->n_ended - at) * sizeof(sim_task));
    s->ended[at] = *t;
    s->n_ended++;
    return &s->ended[at];
}

void sim_task_close(sim *s, uint32_t i, int64_t end_ms)
{
    sim_dev *d = &s->dev[i];
    sim_task t = {
        .n = d->task,
        .dev = i,
        .start_ms = d->task_start_ms,
        .end_ms = end_ms,
        .reported_ms = 0,
        .wh = d->ph.forced_wh,
    };
    d->task = 0;
    d->task_start_ms = d->task_deadline_ms = 0;
    d->ph.forced_wh = 0;
    d->dirty = 1;
    sim_persist_task(s, insert(s, &t));
}

/* An ended task recorded by an earlier process, or NULL. */
static sim_task *load_task(sim *s, uint64_t n)
{
    char key[40], err[128];
    snprintf(key, sizeof key, "t/%llu", (unsigned long long)n);
    size_t len = 0;
    char *text = H->kv_get(s->h, key, &len);
    if (!text) return NULL;
    gp_json *j = H->json_parse(text, len, err, sizeof err);
    H->free(text);
    if (!j) {
        H->log(s->h, GP_LOG_WARN, "sim: ignoring the saved task sim-%llu: %s",
               (unsigned long long)n, err);
        return NULL;
    }
    const char *dev = H->json_str(H->json_get(j, "dev"));
    double start = H->json_num(H->json_get(j, "start")), end = H->json_num(H->json_get(j, "end"));
    double wh = H->json_num(H->json_get(j, "wh"));
    sim_task *out = NULL;
    if (!dev || !isfinite(start) || !isfinite(end) || !isfinite(wh) || wh < 0) {
        H->log(s->h, GP_LOG_WARN, "sim: ignoring the saved task sim-%llu: malformed",
               (unsigned long long)n);
    } else {
        long d = sim_find_device(s, dev);
        sim_task t = {
            .n = n,
            .dev = d < 0 ? UINT32_MAX : (uint32_t)d,
            .start_ms = (int64_t)start,
            .end_ms = (int64_t)end,
            .reported_ms = 0,
            .wh = wh,
        };
        out = insert(s, &t);
    }
    H->json_free(j);
    return out;
}

sim_task *sim_task_find(sim *s, uint64_t n)
{
    size_t at = lower_bound(s, n);
    if (at < s->n_ended && s->ended[at].n == n) return &s->ended[at];
    return load_task(s, n);
}

void sim_task_prune(sim *s, int64_t now)
{
    size_t w = 0;
    for (size_t r = 0; r < s->n_ended; r++) {
        const sim_task *t = &s->ended[r];
        int old = now - t->end_ms >= KEEP_AFTER_END_MS ||
                  (t->reported_ms && now - t->reported_ms >= KEEP_AFTER_DONE_MS);
        if (old)
            sim_persist_task_delete(s, t->n);
        else
            s->ended[w++] = *t;
    }
    s->n_ended = w;
}
