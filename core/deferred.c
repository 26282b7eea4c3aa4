/* Deferred plugin completions and kv writes. See deferred.h. */
#include "deferred.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "timer.h"

typedef struct result_item {
    uint64_t id;
    unsigned adapter;
    int task;
    gp_result r; /* strings owned by the item */
} result_item;

typedef struct kv_item {
    char *scope, *key;
    char *val; /* NULL: delete */
    size_t len;
} kv_item;

struct gp_deferred {
    gp_dispatch *d;
    gp_journal *j;
    result_item *results;
    size_t n_results, cap_results;
    kv_item *kv;
    size_t n_kv, cap_kv;
    gp_timer *timer;
};

gp_deferred *gp_deferred_new(gp_dispatch *d, gp_journal *j)
{
    gp_deferred *q = gp_xcalloc(1, sizeof *q);
    q->d = d;
    q->j = j;
    return q;
}

static void apply_cb(void *ud)
{
    gp_deferred *q = ud;
    q->timer = NULL;
    gp_deferred_apply(q);
}

static void arm(gp_deferred *q)
{
    if (!q->timer) q->timer = gp_timer_start(0, apply_cb, q);
}

static void free_result(result_item *it)
{
    free((char *)it->r.message);
    free((char *)it->r.vendor_ref);
    free((char *)it->r.detail);
}

void gp_deferred_result(gp_deferred *q, unsigned adapter, int task, uint64_t cmd_id,
                        const gp_result *r)
{
    if (q->n_results == q->cap_results) {
        q->cap_results = q->cap_results ? q->cap_results * 2 : 64;
        q->results = gp_xrealloc(q->results, q->cap_results * sizeof(result_item));
    }
    result_item *it = &q->results[q->n_results++];
    it->id = cmd_id;
    it->adapter = adapter;
    it->task = task;
    it->r = *r;
    it->r.message = gp_xstrdup(r->message);
    it->r.vendor_ref = gp_xstrdup(r->vendor_ref);
    it->r.detail = gp_xstrdup(r->detail);
    arm(q);
}

/* The newest queued write of (scope, key), or NULL. Queues are short-lived (one loop
 * iteration), so a backwards scan is enough. */
static kv_item *find_kv(gp_deferred *q, const char *scope, const char *key)
{
    for (size_t i = q->n_kv; i-- > 0;)
        if (strcmp(q->kv[i].key, key) == 0 && strcmp(q->kv[i].scope, scope) == 0) return &q->kv[i];
    return NULL;
}

int gp_deferred_kv_set(gp_deferred *q, const char *scope, const char *key, const void *val,
                       size_t len)
{
    kv_item *it = find_kv(q, scope, key);
    if (it) {
        free(it->val);
    } else {
        if (q->n_kv == q->cap_kv) {
            q->cap_kv = q->cap_kv ? q->cap_kv * 2 : 64;
            q->kv = gp_xrealloc(q->kv, q->cap_kv * sizeof(kv_item));
        }
        it = &q->kv[q->n_kv++];
        it->scope = gp_xstrdup(scope);
        it->key = gp_xstrdup(key);
    }
    it->val = NULL;
    it->len = 0;
    if (val) {
        it->val = gp_xmalloc(len + 1);
        memcpy(it->val, val, len);
        it->val[len] = '\0';
        it->len = len;
    }
    arm(q);
    return 0;
}

void *gp_deferred_kv_get(gp_deferred *q, const char *scope, const char *key, size_t *len)
{
    kv_item *it = find_kv(q, scope, key);
    if (!it) return gp_journal_kv_get(q->j, scope, key, len);
    if (!it->val) return NULL;
    char *copy = gp_xmalloc(it->len + 1);
    memcpy(copy, it->val, it->len + 1);
    if (len) *len = it->len;
    return copy;
}

void gp_deferred_apply(gp_deferred *q)
{
    gp_timer_stop(q->timer);
    q->timer = NULL;
    if (!q->n_results && !q->n_kv) return;
    /* Take the queues: applying results may send commands whose plugins queue more. */
    result_item *results = q->results;
    size_t n_results = q->n_results;
    kv_item *kv = q->kv;
    size_t n_kv = q->n_kv;
    q->results = NULL;
    q->kv = NULL;
    q->n_results = q->cap_results = q->n_kv = q->cap_kv = 0;

    gp_dispatch_batch_begin(q->d);
    for (size_t i = 0; i < n_kv; i++)
        gp_journal_kv_set(q->j, kv[i].scope, kv[i].key, kv[i].val, kv[i].len);
    int64_t now = gp_now_ms();
    for (size_t i = 0; i < n_results; i++) {
        int owner = gp_dispatch_owner(q->d, results[i].id);
        if (owner >= 0 && (unsigned)owner != results[i].adapter) {
            gp_warn("dispatch",
                    "plugin bug: adapter #%u answered for command #%llu of another "
                    "adapter; ignored",
                    results[i].adapter, (unsigned long long)results[i].id);
            continue;
        }
        if (results[i].task)
            gp_dispatch_task_result(q->d, results[i].id, &results[i].r, now);
        else
            gp_dispatch_command_result(q->d, results[i].id, &results[i].r, now);
    }
    gp_dispatch_batch_end(q->d);

    for (size_t i = 0; i < n_kv; i++) {
        free(kv[i].scope);
        free(kv[i].key);
        free(kv[i].val);
    }
    free(kv);
    for (size_t i = 0; i < n_results; i++)
        free_result(&results[i]);
    free(results);
}

void gp_deferred_free(gp_deferred *q)
{
    if (!q) return;
    /* Whatever plugins said last (destroy() writes state) still reaches the journal. */
    for (int rounds = 0; rounds < 4 && (q->n_results || q->n_kv); rounds++)
        gp_deferred_apply(q);
    gp_timer_stop(q->timer);
    for (size_t i = 0; i < q->n_results; i++)
        free_result(&q->results[i]);
    for (size_t i = 0; i < q->n_kv; i++) {
        free(q->kv[i].scope);
        free(q->kv[i].key);
        free(q->kv[i].val);
    }
    free(q->results);
    free(q->kv);
    free(q);
}
