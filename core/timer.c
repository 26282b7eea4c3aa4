/* The clock and one-shot timers: libev timers on the default loop, or a virtual clock with a
 * min-heap of due timers that the simulation driver advances. */
#include "timer.h"

#include <ev.h>
#include <math.h>
#include <stdlib.h>

#include "str.h"
#include "timeutil.h"

struct gp_timer {
    ev_timer w; /* real mode only */
    gp_timer_cb cb;
    void *ud;
    int virt;              /* started in virtual mode: lives in the heap, never in libev */
    int firing;            /* cb is running: the handle is freed by the firing code, not by stop */
    int64_t due;           /* virtual: due time in ms */
    uint64_t seq;          /* virtual: start order, breaks ties between equal due times */
    size_t slot;           /* virtual: index in the heap */
    gp_timer *prev, *next; /* list of every live timer, for gp_timer_stop_all */
};

static int virt_on;
static int64_t virt_now;
static uint64_t virt_seq;
static gp_timer **heap; /* owned; the pointers are owned by the live list */
static size_t heap_len, heap_cap;
static gp_timer *live;

struct ev_loop *gp_loop(void)
{
    return EV_DEFAULT;
}

/*
 * A faster clock for tests against vendor emulators (GRIDPILOT_TIME_SCALE=60: a minute of
 * quotas, polls and vendor task refreshes passes in a second). The emulated time is
 * anchor + (wall - anchor) * scale; GRIDPILOT_TIME_ANCHOR (Unix ms) lets an emulator share
 * it, else the first reading of the clock is the anchor. HTTP timeouts stay in real time.
 */
static double time_scale = 0; /* 0: not read yet */
static int64_t time_anchor;

static void read_scale(void)
{
    const char *s = getenv("GRIDPILOT_TIME_SCALE");
    const char *a = getenv("GRIDPILOT_TIME_ANCHOR");
    double v = s && *s ? strtod(s, NULL) : 1.0;
    time_scale = v > 0 && v <= 1e6 ? v : 1.0;
    time_anchor = a && *a ? strtoll(a, NULL, 10) : gp_wall_ms();
}

int64_t gp_now_ms(void)
{
    if (virt_on) return virt_now;
    if (time_scale == 0) read_scale();
    int64_t wall = gp_wall_ms();
    if (time_scale == 1.0) return wall;
    return time_anchor + (int64_t)((double)(wall - time_anchor) * time_scale);
}

int gp_clock_is_virtual(void)
{
    return virt_on;
}

void gp_clock_set_virtual(int64_t start_ms)
{
    virt_on = 1;
    virt_now = start_ms;
}

/* ---- live list ---- */

static void live_add(gp_timer *t)
{
    t->prev = NULL;
    t->next = live;
    if (live) live->prev = t;
    live = t;
}

static void live_del(gp_timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        live = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* ---- virtual heap ---- */

static int heap_before(const gp_timer *a, const gp_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(size_t i, gp_timer *t)
{
    heap[i] = t;
    t->slot = i;
}

static void heap_up(size_t i)
{
    gp_timer *t = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_before(t, heap[parent])) break;
        heap_set(i, heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void heap_down(size_t i)
{
    gp_timer *t = heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len) break;
        if (c + 1 < heap_len && heap_before(heap[c + 1], heap[c])) c++;
        if (!heap_before(heap[c], t)) break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, t);
}

static void heap_push(gp_timer *t)
{
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 16;
        heap = gp_xrealloc(heap, heap_cap * sizeof(*heap));
    }
    heap_set(heap_len++, t);
    heap_up(heap_len - 1);
}

static void heap_remove(gp_timer *t)
{
    size_t i = t->slot;
    gp_timer *last = heap[--heap_len];
    if (i == heap_len) return;
    heap_set(i, last);
    heap_up(i);
    heap_down(last->slot);
}

/* ---- firing ---- */

/* The handle stays valid while cb runs (a gp_timer_stop on it is then a no-op) and is freed
 * as soon as cb returns, as the header promises. */
static void fire(gp_timer *t)
{
    live_del(t);
    t->firing = 1;
    t->cb(t->ud);
    free(t);
}

static void real_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    fire(w->data);
}

gp_timer *gp_timer_start(double after_s, gp_timer_cb cb, void *ud)
{
    if (!cb) return NULL;
    /* NaN and negative delays mean "as soon as possible"; a century caps absurd ones so the
     * ms conversion below cannot overflow. */
    if (!(after_s > 0)) after_s = 0;
    if (after_s > 3.2e9) after_s = 3.2e9;
    gp_timer *t = gp_xcalloc(1, sizeof(*t));
    t->cb = cb;
    t->ud = ud;
    live_add(t);
    if (virt_on) {
        t->virt = 1;
        t->due = virt_now + llround(after_s * 1000.0);
        t->seq = virt_seq++;
        heap_push(t);
    } else {
        if (time_scale == 0) read_scale();
        ev_timer_init(&t->w, real_cb, after_s / time_scale, 0.);
        t->w.data = t;
        ev_timer_start(gp_loop(), &t->w);
    }
    return t;
}

/* Unhook a pending timer from wherever it waits; the caller frees it. */
static void detach(gp_timer *t)
{
    live_del(t);
    if (t->virt)
        heap_remove(t);
    else
        ev_timer_stop(gp_loop(), &t->w);
}

void gp_timer_stop(gp_timer *t)
{
    if (!t || t->firing) return;
    detach(t);
    free(t);
}

void gp_timer_stop_all(void)
{
    while (live) {
        gp_timer *t = live;
        detach(t);
        free(t);
    }
    free(heap);
    heap = NULL;
    heap_len = heap_cap = 0;
}

void gp_clock_advance(int64_t to_ms)
{
    if (!virt_on) return;
    /* Re-reading the heap top each round lets callbacks add or remove timers, including
     * ones due before to_ms, which then fire in this same advance. */
    while (heap_len > 0 && heap[0]->due <= to_ms) {
        gp_timer *t = heap[0];
        heap_remove(t);
        /* A timer due in the past (started with a clock already beyond it) never moves the
         * clock backwards. */
        if (t->due > virt_now) virt_now = t->due;
        fire(t);
    }
    if (to_ms > virt_now) virt_now = to_ms;
}
