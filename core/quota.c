/* Quota-scheduled HTTP. See quota.h. */
#include "quota.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"
#include "str.h"
#include "timer.h"

/* A request waiting for its quota: a deep copy, since the plugin's is borrowed. */
typedef struct waiting {
    int quota;
    int prio;
    uint64_t seq;
    gp_http_req req;
    char **headers; /* owned copies, NULL-terminated */
    gp_http_cb cb;
    void *ud;
} waiting;

struct gp_quota_queue {
    gp_quota_send_fn send;
    void *ctx;
    const char *who;
    const gp_quota *quotas;
    size_t n_quotas;
    gp_window *win; /* one per quota */
    waiting *q;
    size_t n, cap;
    uint64_t seq;
    gp_timer *timer;
    int pumping;
    size_t in_flight; /* metered requests waiting for their answer */
};

gp_quota_queue *gp_quotaq_new(gp_quota_send_fn send, void *ctx, const gp_quota *quotas, size_t n,
                              const char *who)
{
    gp_quota_queue *q = gp_xcalloc(1, sizeof *q);
    q->send = send;
    q->ctx = ctx;
    q->who = who;
    q->quotas = quotas;
    q->n_quotas = quotas ? n : 0;
    q->win = gp_xcalloc(q->n_quotas ? q->n_quotas : 1, sizeof(gp_window));
    for (size_t i = 0; i < q->n_quotas; i++)
        gp_window_init(&q->win[i], quotas[i].limit, (int64_t)quotas[i].period_s * 1000);
    return q;
}

static void free_waiting(waiting *w)
{
    free((char *)w->req.method);
    free((char *)w->req.url);
    free((char *)w->req.body);
    free((char *)w->req.user);
    free((char *)w->req.password);
    free((char *)w->req.endpoint);
    for (char **h = w->headers; h && *h; h++)
        free(*h);
    free(w->headers);
}

void gp_quotaq_free(gp_quota_queue *q)
{
    if (!q) return;
    gp_timer_stop(q->timer);
    for (size_t i = 0; i < q->n; i++)
        free_waiting(&q->q[i]);
    free(q->q);
    for (size_t i = 0; i < q->n_quotas; i++)
        gp_window_free(&q->win[i]);
    free(q->win);
    free(q);
}

static int find_quota(const gp_quota_queue *q, const char *endpoint)
{
    if (!endpoint) return -1;
    for (size_t i = 0; i < q->n_quotas; i++)
        if (strcmp(q->quotas[i].endpoint, endpoint) == 0) return (int)i;
    return -1;
}

static void schedule(gp_quota_queue *q);

/* A metered call in flight: its slot stays taken until the answer comes. */
typedef struct tracked {
    gp_quota_queue *q;
    int quota;
    uint32_t slot;
    gp_http_cb cb;
    void *ud;
} tracked;

static void tracked_done(void *ud, const gp_http_resp *r)
{
    tracked *t = ud;
    gp_quota_queue *q = t->q;
    gp_window_done(&q->win[t->quota], t->slot, gp_now_ms());
    q->in_flight--;
    gp_http_cb cb = t->cb;
    void *cb_ud = t->ud;
    free(t);
    cb(cb_ud, r);
    schedule(q); /* the slot frees a period from now */
}

/* Send a metered call now, holding a slot of its quota until the answer. */
static int send_metered(gp_quota_queue *q, int quota, const gp_http_req *req, gp_http_cb cb,
                        void *ud)
{
    tracked *t = gp_xmalloc(sizeof *t);
    *t = (tracked){q, quota, gp_window_take(&q->win[quota], gp_now_ms()), cb, ud};
    q->in_flight++;
    int rc = q->send(q->ctx, req, tracked_done, t);
    if (rc != 0) {
        q->in_flight--;
        gp_window_cancel(&q->win[quota], t->slot);
        free(t);
    }
    return rc;
}

/* Send what the quotas allow now: per quota, the best waiting request (control first, then
 * oldest), as long as its window has room. */
static void pump(gp_quota_queue *q)
{
    if (q->pumping) return; /* a callback from gp_http_request cannot re-enter; be safe */
    q->pumping = 1;
    int64_t now = gp_now_ms();
    for (;;) {
        size_t best = q->n;
        for (size_t i = 0; i < q->n; i++) {
            waiting *w = &q->q[i];
            if (gp_window_ready_at(&q->win[w->quota], now) > now) continue;
            if (best == q->n || w->prio > q->q[best].prio ||
                (w->prio == q->q[best].prio && w->seq < q->q[best].seq))
                best = i;
        }
        if (best == q->n) break;
        waiting w = q->q[best];
        memmove(&q->q[best], &q->q[best + 1], (q->n - best - 1) * sizeof(waiting));
        q->n--;
        w.req.headers = (const char *const *)w.headers;
        if (send_metered(q, w.quota, &w.req, w.cb, w.ud) != 0) {
            /* Checked when queued; only a changed option could make it fail here. */
            gp_http_resp r = {.size = sizeof r,
                              .error = GP_HTTP_CONNECT,
                              .error_msg = "request refused by the HTTP client",
                              .body = ""};
            w.cb(w.ud, &r);
        }
        free_waiting(&w);
    }
    q->pumping = 0;
    schedule(q);
}

static void timer_cb(void *ud)
{
    gp_quota_queue *q = ud;
    q->timer = NULL;
    pump(q);
}

/* Wake up when the earliest waiting request's quota opens. */
static void schedule(gp_quota_queue *q)
{
    gp_timer_stop(q->timer);
    q->timer = NULL;
    if (!q->n) return;
    int64_t now = gp_now_ms(), at = GP_WINDOW_IN_FLIGHT;
    for (size_t i = 0; i < q->n; i++) {
        int64_t r = gp_window_ready_at(&q->win[q->q[i].quota], now);
        if (r < at) at = r;
    }
    /* Every slot waiting for an answer: that answer reschedules. */
    if (at == GP_WINDOW_IN_FLIGHT) return;
    q->timer = gp_timer_start((double)(at - now) / 1000.0, timer_cb, q);
}

static char *dup_or_null(const char *s)
{
    return s ? gp_xstrdup(s) : NULL;
}

int gp_quotaq_request(gp_quota_queue *q, const gp_http_req *req, gp_http_cb cb, void *ud)
{
    int quota = find_quota(q, req->endpoint);
    if (quota < 0) return q->send(q->ctx, req, cb, ud);
    if (!req->url || !cb) return -1;
    int64_t now = gp_now_ms();
    /* Nothing waiting for this quota and room in it: straight out. */
    int queued_same = 0;
    for (size_t i = 0; i < q->n && !queued_same; i++)
        queued_same = q->q[i].quota == quota;
    if (!queued_same && gp_window_ready_at(&q->win[quota], now) <= now)
        return send_metered(q, quota, req, cb, ud);
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->q = gp_xrealloc(q->q, q->cap * sizeof(waiting));
    }
    waiting *w = &q->q[q->n++];
    memset(w, 0, sizeof *w);
    w->quota = quota;
    w->prio = req->priority;
    w->seq = ++q->seq;
    w->cb = cb;
    w->ud = ud;
    w->req = *req;
    w->req.method = dup_or_null(req->method);
    w->req.url = gp_xstrdup(req->url);
    w->req.user = dup_or_null(req->user);
    w->req.password = dup_or_null(req->password);
    w->req.endpoint = gp_xstrdup(req->endpoint);
    if (req->body) {
        char *b = gp_xmalloc(req->body_len + 1);
        memcpy(b, req->body, req->body_len);
        b[req->body_len] = '\0';
        w->req.body = b;
    }
    size_t nh = 0;
    for (const char *const *h = req->headers; h && *h; h++)
        nh++;
    w->headers = gp_xcalloc(nh + 1, sizeof(char *));
    for (size_t i = 0; i < nh; i++)
        w->headers[i] = gp_xstrdup(req->headers[i]);
    w->req.headers = NULL;
    q->win[quota].delayed++;
    gp_debug(q->who, "%s: over quota, waiting (%zu queued)", req->endpoint, q->n);
    schedule(q);
    return 0;
}

void gp_quotaq_abort(gp_quota_queue *q)
{
    gp_timer_stop(q->timer);
    q->timer = NULL;
    /* Take the queue first: a callback may queue a new request (it is refused later). */
    waiting *list = q->q;
    size_t n = q->n;
    q->q = NULL;
    q->n = q->cap = 0;
    for (size_t i = 0; i < n; i++) {
        gp_http_resp r = {.size = sizeof r,
                          .error = GP_HTTP_ABORTED,
                          .error_msg = "cancelled: the adapter is closing",
                          .body = ""};
        list[i].cb(list[i].ud, &r);
        free_waiting(&list[i]);
    }
    free(list);
}

void gp_quotaq_limited(gp_quota_queue *q, const char *endpoint, double retry_after_s)
{
    int quota = find_quota(q, endpoint);
    if (quota < 0) {
        gp_warn(q->who, "plugin reported a rate limit for '%s', which has no declared quota",
                endpoint ? endpoint : "(null)");
        return;
    }
    int64_t now = gp_now_ms();
    int64_t wait = retry_after_s > 0 ? (int64_t)(retry_after_s * 1000.0) : q->win[quota].period_ms;
    gp_window_block(&q->win[quota], now + wait);
    gp_warn(q->who, "%s: the vendor says too many requests; pausing it for %.1f s", endpoint,
            (double)wait / 1000.0);
    schedule(q);
}

size_t gp_quotaq_stats(const gp_quota_queue *q, gp_quota_stats *out, size_t cap)
{
    int64_t now = gp_now_ms();
    size_t n = q->n_quotas < cap ? q->n_quotas : cap;
    for (size_t i = 0; i < n; i++) {
        const gp_window *w = &q->win[i];
        size_t waiting_n = 0;
        for (size_t k = 0; k < q->n; k++)
            waiting_n += q->q[k].quota == (int)i;
        out[i] = (gp_quota_stats){q->quotas[i].endpoint,
                                  q->quotas[i].limit,
                                  q->quotas[i].period_s,
                                  gp_window_left(w, now),
                                  w->sent,
                                  w->delayed,
                                  w->limited,
                                  waiting_n};
    }
    return q->n_quotas;
}

size_t gp_quotaq_waiting(const gp_quota_queue *q)
{
    return q->n;
}

size_t gp_quotaq_in_flight(const gp_quota_queue *q)
{
    return q->in_flight;
}
