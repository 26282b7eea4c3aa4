/* A gp_host for plugin unit tests: virtual clock, recorded results, scripted HTTP, in-memory
 * kv, and checks of the ABI's calling rules. See mock_host.h. */
#include "mock_host.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "json.h"
#include "secret.h"
#include "str.h"
#include "timeutil.h"

/* Grow a (pointer, count, capacity) array so one more element fits. */
#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 8;                                                           \
            (arr) = gp_xrealloc((arr), (cap) * sizeof(*(arr)));                                    \
        }                                                                                          \
    } while (0)

/* A list of owned strings. */
typedef struct strv {
    char **v;
    size_t n, cap;
} strv;

static void strv_push(strv *s, char *owned)
{
    GROW(s->v, s->n, s->cap);
    s->v[s->n++] = owned;
}

static void strv_clear(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* A list of owned pointers to recorded items, so pointers handed to tests stay valid. */
typedef struct ptrv {
    void **v;
    size_t n, cap;
} ptrv;

static void ptrv_push(ptrv *p, void *item)
{
    GROW(p->v, p->n, p->cap);
    p->v[p->n++] = item;
}

/* A multiset of ids handed to the plugin and not yet answered. */
typedef struct idset {
    uint64_t *v;
    size_t n, cap;
} idset;

static void idset_add(idset *s, uint64_t id)
{
    GROW(s->v, s->n, s->cap);
    s->v[s->n++] = id;
}

static int idset_take(idset *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == id) {
            s->v[i] = s->v[--s->n];
            return 1;
        }
    }
    return 0;
}

/* A scripted HTTP answer as the mock owns it. */
typedef struct answer {
    int error;
    char *error_msg;
    long status;
    char *body;
    size_t body_len;
    char **headers; /* NULL-terminated */
    int64_t delay_ms;
} answer;

enum { EV_TIMER = 1, EV_HTTP = 2 };

/* A pending event: a timer or an HTTP answer waiting for its due time. */
typedef struct event {
    uint64_t id; /* the timer handle's value */
    int64_t due;
    uint64_t seq; /* start order, to break ties */
    int kind;
    gp_timer_cb cb;
    gp_http_cb hcb;
    gp_http_chunk_cb chunk;
    void *ud;
    answer ans;
} event;

typedef struct kv_entry {
    char *key;
    char *val; /* NUL-terminated copy */
    size_t len;
} kv_entry;

struct mock_host {
    char *adapter_id;
    int verbose;
    int64_t now;
    uint64_t seq, next_ev_id, next_request_id;
    char *base_dir;

    event *evs;
    size_t n_evs, cap_evs;

    void *dl;
    const gp_plugin_desc *desc;
    void *inst;
    char load_err[512];

    mock_device *devs;
    size_t n_devs, cap_devs;
    size_t n_discovered;
    int disc_ok;
    char *disc_msg;

    ptrv readings, read_done, cmd_res, task_res, login_res, http_reqs;
    idset out_cmds, out_ops, out_tasks;
    strv cfg_errs, logs, violations, owned;
    int *log_levels;
    size_t cap_levels;

    kv_entry *kv;
    size_t n_kv, cap_kv, kv_writes, kv_deletes;

    answer *queue;
    size_t q_head, q_n, q_cap;

    /* host->rate_limited calls: endpoints (strv, "" for NULL) and their retry_after_s. */
    strv rl_endpoints;
    double *rl_after;
    size_t cap_rl;
    mock_http_handler handler;
    void *handler_ud;
};

static mock_host *M(gp_hctx *h)
{
    return (mock_host *)h;
}

static char *fmt_alloc(const char *fmt, va_list ap)
{
    gp_str s = {0};
    gp_str_vprintf(&s, fmt, ap);
    gp_str_puts(&s, "");
    return s.data;
}

static void violation(mock_host *m, const char *fmt, ...) GP_PRINTF(2, 3);
static void violation(mock_host *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = fmt_alloc(fmt, ap);
    va_end(ap);
    if (m->verbose) fprintf(stderr, "mock_host[%s] VIOLATION: %s\n", m->adapter_id, line);
    strv_push(&m->violations, line);
}

static char *dup_or_null(const char *s)
{
    return s ? gp_xstrdup(s) : NULL;
}

static char **dup_list(const char *const *list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    char **out = gp_xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = gp_xstrdup(list[i]);
    return out;
}

static void free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

/* ---- logging, clock, timers ----------------------------------------------------------- */

static void h_log(gp_hctx *h, int level, const char *fmt, ...) GP_PRINTF(3, 4);
static void h_log(gp_hctx *h, int level, const char *fmt, ...)
{
    mock_host *m = M(h);
    va_list ap;
    va_start(ap, fmt);
    char *line = fmt_alloc(fmt, ap);
    va_end(ap);
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    int lv = level < 0 ? 0 : level > 3 ? 3 : level;
    if (m->verbose) fprintf(stderr, "mock_host[%s] %s: %s\n", m->adapter_id, names[lv], line);
    GROW(m->log_levels, m->logs.n, m->cap_levels);
    m->log_levels[m->logs.n] = level;
    strv_push(&m->logs, line);
}

static int64_t h_now_ms(gp_hctx *h)
{
    return M(h)->now;
}

static event *ev_new(mock_host *m, int kind, int64_t due)
{
    GROW(m->evs, m->n_evs, m->cap_evs);
    event *e = &m->evs[m->n_evs++];
    memset(e, 0, sizeof(*e));
    e->id = ++m->next_ev_id;
    e->due = due;
    e->seq = ++m->seq;
    e->kind = kind;
    return e;
}

static gp_timer *h_timer_start(gp_hctx *h, double after_s, gp_timer_cb cb, void *ud)
{
    mock_host *m = M(h);
    if (!cb) {
        violation(m, "timer_start without a callback");
        return NULL;
    }
    int64_t after = isfinite(after_s) && after_s > 0 ? (int64_t)llround(after_s * 1000.0) : 0;
    event *e = ev_new(m, EV_TIMER, m->now + after);
    e->cb = cb;
    e->ud = ud;
    return (gp_timer *)(uintptr_t)e->id;
}

static void answer_free(answer *a)
{
    free(a->error_msg);
    free(a->body);
    free_list(a->headers);
    memset(a, 0, sizeof(*a));
}

static void ev_remove(mock_host *m, size_t i)
{
    m->evs[i] = m->evs[--m->n_evs];
}

static void h_timer_stop(gp_hctx *h, gp_timer *t)
{
    mock_host *m = M(h);
    if (!t) return;
    uint64_t id = (uint64_t)(uintptr_t)t;
    for (size_t i = 0; i < m->n_evs; i++) {
        if (m->evs[i].kind == EV_TIMER && m->evs[i].id == id) {
            ev_remove(m, i);
            return;
        }
    }
    violation(m, "timer_stop on a handle that is not armed (fired or stopped already)");
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static void answer_copy(answer *dst, const mock_http_response *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->error = src->error;
    dst->error_msg = dup_or_null(src->error_msg);
    dst->status = src->status;
    dst->body = gp_xstrdup(src->body ? src->body : "");
    dst->body_len = strlen(dst->body);
    dst->headers = dup_list(src->headers);
    dst->delay_ms = src->delay_ms > 0 ? src->delay_ms : 0;
}

static void request_free(mock_http_request *r)
{
    if (!r) return;
    free(r->method);
    free(r->url);
    free(r->endpoint);
    free(r->user);
    free(r->password);
    free(r->body);
    free_list(r->headers);
    free(r);
}

static int h_http(gp_hctx *h, const gp_http_req *req, gp_http_cb cb, void *ud)
{
    mock_host *m = M(h);
    if (!req || !req->method || !req->url || !cb) return -1;
    mock_http_request *r = gp_xcalloc(1, sizeof(*r));
    r->method = gp_xstrdup(req->method);
    r->url = gp_xstrdup(req->url);
    r->endpoint = dup_or_null(req->endpoint);
    r->user = dup_or_null(req->user);
    r->password = dup_or_null(req->password);
    r->body_len = req->body ? req->body_len : 0;
    r->body = gp_xmalloc(r->body_len + 1);
    if (r->body_len) memcpy(r->body, req->body, r->body_len);
    r->body[r->body_len] = '\0';
    r->headers = dup_list(req->headers);
    r->timeout_s = req->timeout_s;
    r->priority = req->priority;
    r->streaming = req->on_chunk != NULL;
    r->at_ms = m->now;
    ptrv_push(&m->http_reqs, r);

    answer a;
    if (m->q_n > 0) {
        a = m->queue[m->q_head];
        m->q_head = (m->q_head + 1) % m->q_cap;
        m->q_n--;
    } else if (m->handler) {
        mock_http_response resp = {.error = GP_HTTP_CONNECT,
                                   .error_msg = "mock_host: the handler gave no answer"};
        m->handler(m->handler_ud, r, &resp);
        answer_copy(&a, &resp);
    } else {
        mock_http_response resp = {.error = GP_HTTP_CONNECT,
                                   .error_msg = "mock_host: no scripted response"};
        answer_copy(&a, &resp);
    }
    /* Answers never arrive from inside http() itself (ABI rule): they are events. */
    event *e = ev_new(m, EV_HTTP, m->now + a.delay_ms);
    e->hcb = cb;
    e->chunk = req->on_chunk;
    e->ud = ud;
    e->ans = a;
    return 0;
}

static const char *h_http_header(const gp_http_resp *r, const char *name, unsigned idx)
{
    if (!r || !r->headers || !name) return NULL;
    size_t nl = strlen(name);
    for (size_t i = 0; r->headers[i]; i++) {
        const char *hd = r->headers[i];
        if (strncasecmp(hd, name, nl) != 0 || hd[nl] != ':') continue;
        if (idx-- > 0) continue;
        const char *v = hd + nl + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        return v;
    }
    return NULL;
}

static void deliver_http(event *e)
{
    answer *a = &e->ans;
    gp_http_resp resp = {
        .size = sizeof(gp_http_resp),
        .error = a->error,
        .error_msg = a->error != GP_HTTP_OK ? (a->error_msg ? a->error_msg : "error") : NULL,
        .status = a->error == GP_HTTP_OK ? a->status : 0,
        .body = a->body,
        .body_len = a->body_len,
        .elapsed_s = (double)a->delay_ms / 1000.0,
        .headers = (const char *const *)a->headers,
    };
    if (e->chunk && a->error == GP_HTTP_OK) {
        int stop = a->body_len ? e->chunk(e->ud, a->body, a->body_len) : 0;
        if (stop) {
            resp.error = GP_HTTP_ABORTED;
            resp.error_msg = "aborted by on_chunk";
        }
        resp.body = "";
        resp.body_len = 0;
    }
    e->hcb(e->ud, &resp);
}

/* ---- configuration -------------------------------------------------------------------- */

static const char *h_adapter_id(gp_hctx *h)
{
    return M(h)->adapter_id;
}

static void config_errorf(mock_host *m, const char *path, const char *msg)
{
    gp_str s = {0};
    if (path && *path)
        gp_str_printf(&s, "%s: %s", path, msg);
    else
        gp_str_puts(&s, msg);
    if (m->verbose) fprintf(stderr, "mock_host[%s] config: %s\n", m->adapter_id, s.data);
    strv_push(&m->cfg_errs, s.data);
}

static void h_config_error(gp_hctx *h, const char *path, const char *fmt, ...) GP_PRINTF(3, 4);
static void h_config_error(gp_hctx *h, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = fmt_alloc(fmt, ap);
    va_end(ap);
    config_errorf(M(h), path, msg);
    free(msg);
}

static char *join_path(const char *path, const char *key)
{
    gp_str s = {0};
    if (path && *path)
        gp_str_printf(&s, "%s.%s", path, key);
    else
        gp_str_puts(&s, key);
    return s.data;
}

static int h_config_check_keys(gp_hctx *h, const gp_json *obj, const char *path,
                               const char *const *allowed)
{
    mock_host *m = M(h);
    if (gp_json_type(obj) != GP_JSON_OBJECT) return 0;
    int bad = 0;
    for (size_t i = 0; i < gp_json_len(obj); i++) {
        const char *k = gp_json_key(gp_json_at(obj, i));
        if (!k || gp_secret_key_allowed(k, allowed)) continue;
        gp_str msg = {0};
        gp_str_puts(&msg, "unknown key (allowed:");
        for (size_t j = 0; allowed && allowed[j]; j++)
            gp_str_printf(&msg, "%s %s", j ? "," : "", allowed[j]);
        gp_str_puts(&msg, ")");
        char *p = join_path(path, k);
        config_errorf(m, p, msg.data);
        free(p);
        gp_str_clear(&msg);
        bad++;
    }
    return bad;
}

static const char *h_resolve_path(gp_hctx *h, const char *path)
{
    mock_host *m = M(h);
    if (!path) return NULL;
    gp_str s = {0};
    if (path[0] == '/') {
        gp_str_puts(&s, path);
    } else {
        char cwd[4096];
        const char *base = m->base_dir ? m->base_dir : (getcwd(cwd, sizeof cwd) ? cwd : ".");
        gp_str_printf(&s, "%s/%s", base, path);
    }
    strv_push(&m->owned, s.data);
    return s.data;
}

static const char *h_config_secret(gp_hctx *h, const gp_json *obj, const char *key, int required)
{
    mock_host *m = M(h);
    if (!key) return NULL;
    gp_str t = {0}, u = {0};
    gp_str_printf(&t, "%s_env", key);
    gp_str_printf(&u, "%s_file", key);
    char *kenv = t.data, *kfile = u.data;
    const gp_json *v = gp_json_get(obj, key), *e = gp_json_get(obj, kenv),
                  *f = gp_json_get(obj, kfile);
    const char *out = NULL;
    int given = (v != NULL) + (e != NULL) + (f != NULL);
    if (given > 1) {
        gp_str msg = {0};
        gp_str_printf(&msg, "give only one of %s, %s, %s", key, kenv, kfile);
        config_errorf(m, key, msg.data);
        gp_str_clear(&msg);
    } else if (v) {
        if (gp_json_str(v)) {
            char *c = gp_xstrdup(gp_json_str(v));
            strv_push(&m->owned, c);
            out = c;
        } else {
            config_errorf(m, key, "must be a string");
        }
    } else if (e) {
        const char *name = gp_json_str(e);
        const char *val = name ? getenv(name) : NULL;
        if (!name) {
            config_errorf(m, kenv, "must be the name of an environment variable");
        } else if (!val) {
            gp_str msg = {0};
            gp_str_printf(&msg, "environment variable %s is not set", name);
            config_errorf(m, kenv, msg.data);
            gp_str_clear(&msg);
        } else {
            char *c = gp_xstrdup(val);
            strv_push(&m->owned, c);
            out = c;
        }
    } else if (f) {
        const char *p = gp_json_str(f);
        if (!p) {
            config_errorf(m, kfile, "must be a file path");
        } else {
            const char *abs = h_resolve_path(h, p);
            size_t len = 0;
            char *text = gp_read_file(abs, &len);
            if (!text) {
                gp_str msg = {0};
                gp_str_printf(&msg, "cannot read %s: %s", abs, strerror(errno));
                config_errorf(m, kfile, msg.data);
                gp_str_clear(&msg);
            } else {
                while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                    text[--len] = '\0';
                strv_push(&m->owned, text);
                out = text;
            }
        }
    } else if (required) {
        gp_str msg = {0};
        gp_str_printf(&msg, "required (give %s, %s or %s)", key, kenv, kfile);
        config_errorf(m, key, msg.data);
        gp_str_clear(&msg);
    }
    free(kenv);
    free(kfile);
    return out;
}

/* ---- text ----------------------------------------------------------------------------- */

static const char *h_str_data(const gp_str *s, size_t *len)
{
    if (len) *len = s ? s->len : 0;
    return s ? gp_str_cstr(s) : "";
}

/* ---- results -------------------------------------------------------------------------- */

static int64_t h_device_add(gp_hctx *h, const gp_device_info *info)
{
    mock_host *m = M(h);
    if (!info) {
        violation(m, "device_add with NULL info");
        return -1;
    }
    gp_device_info in;
    memset(&in, 0, sizeof(in));
    size_t n = info->size < sizeof(in) ? info->size : sizeof(in);
    if (info->size < sizeof(in))
        violation(m, "device_add: info.size %u < %zu", info->size, sizeof(in));
    memcpy(&in, info, n);
    GROW(m->devs, m->n_devs, m->cap_devs);
    mock_device *d = &m->devs[m->n_devs];
    d->handle = (uint32_t)m->n_devs;
    d->info = in;
    d->info.vendor_id = gp_xstrdup(in.vendor_id ? in.vendor_id : "");
    d->info.model = dup_or_null(in.model);
    m->n_devs++;
    return d->handle;
}

static void h_discovered(gp_hctx *h, int ok, const char *message)
{
    mock_host *m = M(h);
    m->n_discovered++;
    m->disc_ok = ok;
    free(m->disc_msg);
    m->disc_msg = dup_or_null(message);
}

static void h_reading(gp_hctx *h, uint32_t device, const gp_reading *r)
{
    mock_host *m = M(h);
    if (!r) {
        violation(m, "reading with NULL sample");
        return;
    }
    if (device >= m->n_devs) violation(m, "reading for unknown device handle %u", device);
    if (r->size < sizeof(gp_reading))
        violation(m, "reading: size %u < %zu", r->size, sizeof(gp_reading));
    mock_reading *rec = gp_xcalloc(1, sizeof(*rec));
    rec->device = device;
    rec->at_ms = m->now;
    memcpy(&rec->r, r, r->size < sizeof(gp_reading) ? r->size : sizeof(gp_reading));
    rec->r.extra = r->extra ? (const gp_json *)cJSON_Duplicate(gp_json_cj(r->extra), 1) : NULL;
    ptrv_push(&m->readings, rec);
}

static mock_result *result_copy(mock_host *m, const char *what, uint64_t id, const gp_result *r)
{
    mock_result *rec = gp_xcalloc(1, sizeof(*rec));
    rec->id = id;
    rec->at_ms = m->now;
    rec->energy_wh = NAN;
    if (!r) {
        violation(m, "%s %llu with NULL result", what, (unsigned long long)id);
        rec->status = GP_FAILED;
        return rec;
    }
    gp_result in;
    memset(&in, 0, sizeof(in));
    in.energy_wh = NAN;
    if (r->size < sizeof(gp_result))
        violation(m, "%s: result size %u < %zu", what, r->size, sizeof(gp_result));
    memcpy(&in, r, r->size < sizeof(in) ? r->size : sizeof(in));
    rec->status = in.status;
    rec->code = in.code;
    rec->retryable = in.retryable;
    rec->energy_wh = in.energy_wh;
    rec->message = dup_or_null(in.message);
    rec->vendor_ref = dup_or_null(in.vendor_ref);
    rec->detail = dup_or_null(in.detail);
    if (in.status == GP_PENDING && (!in.vendor_ref || !*in.vendor_ref))
        violation(m, "%s %llu: PENDING without vendor_ref", what, (unsigned long long)id);
    return rec;
}

static void h_read_done(gp_hctx *h, uint64_t op, const gp_result *r)
{
    mock_host *m = M(h);
    if (!idset_take(&m->out_ops, op))
        violation(m, "read_done for op %llu that is not outstanding", (unsigned long long)op);
    ptrv_push(&m->read_done, result_copy(m, "read_done", op, r));
}

static void h_command_result(gp_hctx *h, uint64_t cmd_id, const gp_result *r)
{
    mock_host *m = M(h);
    if (!idset_take(&m->out_cmds, cmd_id))
        violation(m, "command_result for cmd %llu that is not outstanding (unknown or answered)",
                  (unsigned long long)cmd_id);
    if (r && r->status == GP_TIMEOUT)
        violation(m, "command_result %llu: TIMEOUT is for task_result only",
                  (unsigned long long)cmd_id);
    ptrv_push(&m->cmd_res, result_copy(m, "command_result", cmd_id, r));
}

static void h_task_result(gp_hctx *h, uint64_t cmd_id, const gp_result *r)
{
    mock_host *m = M(h);
    if (!idset_take(&m->out_tasks, cmd_id))
        violation(m, "task_result for cmd %llu that is not being polled",
                  (unsigned long long)cmd_id);
    ptrv_push(&m->task_res, result_copy(m, "task_result", cmd_id, r));
}

static void h_login_done(gp_hctx *h, const gp_result *r)
{
    mock_host *m = M(h);
    ptrv_push(&m->login_res, result_copy(m, "login_done", 0, r));
}

/* ---- persistence ---------------------------------------------------------------------- */

static uint64_t h_next_request_id(gp_hctx *h)
{
    return M(h)->next_request_id++;
}

static kv_entry *kv_find(const mock_host *m, const char *key)
{
    for (size_t i = 0; i < m->n_kv; i++)
        if (strcmp(m->kv[i].key, key) == 0) return &m->kv[i];
    return NULL;
}

static int h_kv_set(gp_hctx *h, const char *key, const void *val, size_t len)
{
    mock_host *m = M(h);
    if (!key || !*key) {
        violation(m, "kv_set with an empty key");
        return -1;
    }
    kv_entry *e = kv_find(m, key);
    if (!val) {
        m->kv_deletes++;
        if (e) {
            free(e->key);
            free(e->val);
            *e = m->kv[--m->n_kv];
        }
        return 0;
    }
    m->kv_writes++;
    if (!e) {
        GROW(m->kv, m->n_kv, m->cap_kv);
        e = &m->kv[m->n_kv++];
        e->key = gp_xstrdup(key);
        e->val = NULL;
    }
    free(e->val);
    e->val = gp_xmalloc(len + 1);
    memcpy(e->val, val, len);
    e->val[len] = '\0';
    e->len = len;
    return 0;
}

static void *h_kv_get(gp_hctx *h, const char *key, size_t *len)
{
    kv_entry *e = key ? kv_find(M(h), key) : NULL;
    if (!e) return NULL;
    char *c = gp_xmalloc(e->len + 1);
    memcpy(c, e->val, e->len + 1);
    if (len) *len = e->len;
    return c;
}

static void h_free(void *p)
{
    free(p);
}

static void h_rate_limited(gp_hctx *h, const char *endpoint, double retry_after_s)
{
    mock_host *m = M(h);
    if (!endpoint) violation(m, "rate_limited without an endpoint");
    GROW(m->rl_after, m->rl_endpoints.n, m->cap_rl);
    m->rl_after[m->rl_endpoints.n] = retry_after_s;
    strv_push(&m->rl_endpoints, gp_xstrdup(endpoint ? endpoint : ""));
}

/* ---- lifetime ------------------------------------------------------------------------- */

/* One table for every mock: a plugin keeps the pointer it was first given (the ABI says the
 * host outlives its instances), and each call names its mock through the gp_hctx. */
static const gp_host table = {
    .size = sizeof(gp_host),
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .log = h_log,
    .now_ms = h_now_ms,
    .timer_start = h_timer_start,
    .timer_stop = h_timer_stop,
    .http = h_http,
    .http_header = h_http_header,
    .adapter_id = h_adapter_id,
    .config_error = h_config_error,
    .config_check_keys = h_config_check_keys,
    .config_secret = h_config_secret,
    .resolve_path = h_resolve_path,
    .json_parse = gp_json_parse,
    .json_free = gp_json_free,
    .json_type = gp_json_type,
    .json_get = gp_json_get,
    .json_len = gp_json_len,
    .json_at = gp_json_at,
    .json_key = gp_json_key,
    .json_num = gp_json_num,
    .json_str = gp_json_str,
    .json_bool = gp_json_bool,
    .str_new = gp_str_new,
    .str_free = gp_str_free,
    .str_printf = gp_str_printf,
    .str_json = gp_str_json,
    .str_data = h_str_data,
    .device_add = h_device_add,
    .discovered = h_discovered,
    .reading = h_reading,
    .read_done = h_read_done,
    .command_result = h_command_result,
    .task_result = h_task_result,
    .login_done = h_login_done,
    .next_request_id = h_next_request_id,
    .kv_set = h_kv_set,
    .kv_get = h_kv_get,
    .free = h_free,
    .parse_duration_ms = gp_parse_duration_ms,
    .rate_limited = h_rate_limited,
};

mock_host *mock_host_new(const char *adapter_id)
{
    mock_host *m = gp_xcalloc(1, sizeof(*m));
    m->adapter_id = gp_xstrdup(adapter_id ? adapter_id : "mock");
    m->verbose = getenv("MOCK_HOST_LOG") != NULL;
    m->now = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    m->next_request_id = 1;
    return m;
}

static void forget_devices(mock_host *m)
{
    for (size_t i = 0; i < m->n_devs; i++) {
        free((char *)m->devs[i].info.vendor_id);
        free((char *)m->devs[i].info.model);
    }
    m->n_devs = 0;
}

static void drop_events(mock_host *m)
{
    for (size_t i = 0; i < m->n_evs; i++)
        if (m->evs[i].kind == EV_HTTP) answer_free(&m->evs[i].ans);
    m->n_evs = 0;
}

void mock_host_free(mock_host *m)
{
    if (!m) return;
    mock_host_destroy(m);
    if (m->dl) dlclose(m->dl);
    mock_host_clear(m);
    free(m->readings.v);
    free(m->read_done.v);
    free(m->cmd_res.v);
    free(m->task_res.v);
    free(m->login_res.v);
    free(m->http_reqs.v);
    free(m->out_cmds.v);
    free(m->out_ops.v);
    free(m->out_tasks.v);
    free(m->log_levels);
    free(m->rl_after);
    strv_clear(&m->owned);
    forget_devices(m);
    free(m->devs);
    free(m->evs);
    for (size_t i = 0; i < m->n_kv; i++) {
        free(m->kv[i].key);
        free(m->kv[i].val);
    }
    free(m->kv);
    while (m->q_n > 0) {
        answer_free(&m->queue[m->q_head]);
        m->q_head = (m->q_head + 1) % m->q_cap;
        m->q_n--;
    }
    free(m->queue);
    free(m->disc_msg);
    free(m->base_dir);
    free(m->adapter_id);
    free(m);
}

const gp_host *mock_host_table(mock_host *m)
{
    (void)m;
    return &table;
}

gp_hctx *mock_host_hctx(mock_host *m)
{
    return (gp_hctx *)m;
}

void mock_host_set_verbose(mock_host *m, int on)
{
    m->verbose = on;
}

/* ---- clock and loop ------------------------------------------------------------------- */

void mock_host_set_time(mock_host *m, int64_t unix_ms)
{
    m->now = unix_ms;
}

int64_t mock_host_now(const mock_host *m)
{
    return m->now;
}

size_t mock_host_n_timers(const mock_host *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_evs; i++)
        n += m->evs[i].kind == EV_TIMER;
    return n;
}

/* Index of the earliest event due at or before `until`, or -1. */
static long next_due(const mock_host *m, int64_t until)
{
    long best = -1;
    for (size_t i = 0; i < m->n_evs; i++) {
        const event *e = &m->evs[i];
        if (e->due > until) continue;
        if (best < 0 || e->due < m->evs[best].due ||
            (e->due == m->evs[best].due && e->seq < m->evs[best].seq))
            best = (long)i;
    }
    return best;
}

size_t mock_host_advance(mock_host *m, int64_t ms)
{
    int64_t until = m->now + (ms > 0 ? ms : 0);
    size_t fired = 0;
    long i;
    while ((i = next_due(m, until)) >= 0) {
        if (fired >= 1000000) {
            violation(m, "more than a million events in one advance (a timer loop?)");
            break;
        }
        event e = m->evs[i];
        ev_remove(m, (size_t)i);
        if (e.due > m->now) m->now = e.due;
        fired++;
        if (e.kind == EV_TIMER) {
            e.cb(e.ud);
        } else {
            deliver_http(&e);
            answer_free(&e.ans);
        }
    }
    m->now = until;
    return fired;
}

size_t mock_host_run(mock_host *m)
{
    return mock_host_advance(m, 0);
}

/* ---- plugin lifecycle ----------------------------------------------------------------- */

static const gp_plugin_desc *accept_desc(mock_host *m, const gp_plugin_desc *d)
{
    if (!d) {
        snprintf(m->load_err, sizeof m->load_err, "the entry returned NULL");
        return NULL;
    }
    if (d->magic != GP_PLUGIN_MAGIC) {
        snprintf(m->load_err, sizeof m->load_err, "bad magic 0x%08x", d->magic);
        return NULL;
    }
    if (d->abi_major != GP_ABI_MAJOR) {
        snprintf(m->load_err, sizeof m->load_err, "ABI major %u, want %u", d->abi_major,
                 GP_ABI_MAJOR);
        return NULL;
    }
    if (d->size < sizeof(gp_plugin_desc)) {
        snprintf(m->load_err, sizeof m->load_err, "descriptor size %u < %zu", d->size,
                 sizeof(gp_plugin_desc));
        return NULL;
    }
    if (!d->create || !d->destroy || !d->discover) {
        snprintf(m->load_err, sizeof m->load_err, "create, destroy or discover missing");
        return NULL;
    }
    if ((d->flags & GP_PF_TASKS) && !d->task_poll) {
        snprintf(m->load_err, sizeof m->load_err, "GP_PF_TASKS without task_poll");
        return NULL;
    }
    if ((d->caps & GP_CAP_WRITE_MASK) && !d->command) {
        snprintf(m->load_err, sizeof m->load_err, "write capabilities without command");
        return NULL;
    }
    if ((d->caps & GP_CAP_READ) && !(d->flags & GP_PF_PUSH_TELEMETRY) && !d->read) {
        snprintf(m->load_err, sizeof m->load_err, "GP_CAP_READ without read");
        return NULL;
    }
    m->desc = d;
    return d;
}

const gp_plugin_desc *mock_host_load(mock_host *m, const char *so_path)
{
    m->load_err[0] = '\0';
    void *dl = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(m->load_err, sizeof m->load_err, "%s", dlerror());
        return NULL;
    }
    gp_plugin_entry_fn entry;
    void *sym = dlsym(dl, GP_PLUGIN_ENTRY_NAME);
    memcpy(&entry, &sym, sizeof(entry));
    if (!entry) {
        snprintf(m->load_err, sizeof m->load_err, "%s: no symbol %s", so_path,
                 GP_PLUGIN_ENTRY_NAME);
        dlclose(dl);
        return NULL;
    }
    const gp_plugin_desc *d = accept_desc(m, entry(&table));
    if (!d) {
        dlclose(dl);
        return NULL;
    }
    if (m->dl) dlclose(m->dl);
    m->dl = dl;
    return d;
}

const gp_plugin_desc *mock_host_load_entry(mock_host *m, gp_plugin_entry_fn entry)
{
    m->load_err[0] = '\0';
    return accept_desc(m, entry ? entry(&table) : NULL);
}

const char *mock_host_load_error(const mock_host *m)
{
    return m->load_err;
}

const gp_plugin_desc *mock_host_desc(const mock_host *m)
{
    return m->desc;
}

void *mock_host_create(mock_host *m, const char *config_json)
{
    if (!m->desc) return NULL;
    mock_host_destroy(m);
    char err[256];
    const char *text = config_json ? config_json : "{}";
    gp_json *cfg = gp_json_parse(text, strlen(text), err, sizeof err);
    if (!cfg) {
        gp_str msg = {0};
        gp_str_printf(&msg, "invalid JSON: %s", err);
        config_errorf(m, "", msg.data);
        gp_str_clear(&msg);
        return NULL;
    }
    m->inst = m->desc->create(mock_host_hctx(m), cfg);
    gp_json_free(cfg);
    return m->inst;
}

void *mock_host_instance(const mock_host *m)
{
    return m->inst;
}

void mock_host_destroy(mock_host *m)
{
    if (!m->inst) return;
    /* The host stops timers and cancels HTTP before destroy (ABI). */
    drop_events(m);
    m->out_cmds.n = m->out_ops.n = m->out_tasks.n = 0;
    m->desc->destroy(m->inst);
    m->inst = NULL;
    forget_devices(m);
}

/* ---- operations ----------------------------------------------------------------------- */

size_t mock_host_discover(mock_host *m)
{
    if (!m->inst) return 0;
    size_t before = m->n_devs;
    m->desc->discover(m->inst);
    return m->n_devs - before;
}

static gp_target target_of(const mock_host *m, uint32_t device)
{
    gp_target t = {.device = device, .local = UINT32_MAX, .vendor_id = ""};
    if (device < m->n_devs) {
        t.local = m->devs[device].info.local;
        t.vendor_id = m->devs[device].info.vendor_id;
    }
    return t;
}

void mock_host_read(mock_host *m, uint64_t op, const uint32_t *devices, size_t n)
{
    if (!m->inst || !m->desc->read) return;
    size_t count = devices ? n : m->n_devs;
    gp_target *t = gp_xcalloc(count ? count : 1, sizeof(*t));
    for (size_t i = 0; i < count; i++)
        t[i] = target_of(m, devices ? devices[i] : (uint32_t)i);
    idset_add(&m->out_ops, op);
    m->desc->read(m->inst, op, t, count);
    free(t);
}

gp_cmd mock_host_cmd(const mock_host *m, uint64_t id, uint32_t device, gp_cmd_kind kind,
                     double value)
{
    gp_cmd c = {
        .id = id,
        .target = target_of(m, device),
        .kind = kind,
        .value = value,
        .soc_target = NAN,
        .duration_s = 0,
        .attempt = 1,
    };
    return c;
}

void mock_host_command(mock_host *m, const gp_cmd *cmds, size_t n)
{
    if (!m->inst || !m->desc->command) return;
    for (size_t i = 0; i < n; i++)
        idset_add(&m->out_cmds, cmds[i].id);
    m->desc->command(m->inst, cmds, n);
}

void mock_host_task_poll(mock_host *m, uint64_t cmd_id, uint32_t device, const char *vendor_ref,
                         gp_cmd_kind kind, double value)
{
    if (!m->inst || !m->desc->task_poll) return;
    gp_task t = {
        .cmd_id = cmd_id,
        .target = target_of(m, device),
        .vendor_ref = vendor_ref,
        .kind = kind,
        .value = value,
    };
    idset_add(&m->out_tasks, cmd_id);
    m->desc->task_poll(m->inst, &t, 1);
}

void mock_host_task_poll_tasks(mock_host *m, const gp_task *tasks, size_t n)
{
    if (!m->inst || !m->desc->task_poll) return;
    for (size_t i = 0; i < n; i++)
        idset_add(&m->out_tasks, tasks[i].cmd_id);
    m->desc->task_poll(m->inst, tasks, n);
}

int mock_host_login(mock_host *m)
{
    if (!m->inst || !m->desc->login) return -1;
    m->desc->login(m->inst);
    return 0;
}

/* ---- recorded results ----------------------------------------------------------------- */

static void result_free(mock_result *r)
{
    if (!r) return;
    free(r->message);
    free(r->vendor_ref);
    free(r->detail);
    free(r);
}

static void results_clear(ptrv *p)
{
    for (size_t i = 0; i < p->n; i++)
        result_free(p->v[i]);
    p->n = 0;
}

void mock_host_clear(mock_host *m)
{
    for (size_t i = 0; i < m->readings.n; i++) {
        mock_reading *r = m->readings.v[i];
        gp_json_free((gp_json *)r->r.extra);
        free(r);
    }
    m->readings.n = 0;
    results_clear(&m->read_done);
    results_clear(&m->cmd_res);
    results_clear(&m->task_res);
    results_clear(&m->login_res);
    for (size_t i = 0; i < m->http_reqs.n; i++)
        request_free(m->http_reqs.v[i]);
    m->http_reqs.n = 0;
    strv_clear(&m->cfg_errs);
    strv_clear(&m->logs);
    strv_clear(&m->violations);
    strv_clear(&m->rl_endpoints);
}

size_t mock_host_n_devices(const mock_host *m)
{
    return m->n_devs;
}

const mock_device *mock_host_device(const mock_host *m, size_t i)
{
    return i < m->n_devs ? &m->devs[i] : NULL;
}

int64_t mock_host_find_device(const mock_host *m, const char *vendor_id)
{
    for (size_t i = 0; i < m->n_devs; i++)
        if (vendor_id && strcmp(m->devs[i].info.vendor_id, vendor_id) == 0) return (int64_t)i;
    return -1;
}

size_t mock_host_n_discovered(const mock_host *m)
{
    return m->n_discovered;
}

int mock_host_discovered_ok(const mock_host *m)
{
    return m->disc_ok;
}

const char *mock_host_discovered_message(const mock_host *m)
{
    return m->disc_msg;
}

size_t mock_host_n_readings(const mock_host *m)
{
    return m->readings.n;
}

const mock_reading *mock_host_reading(const mock_host *m, size_t i)
{
    return i < m->readings.n ? m->readings.v[i] : NULL;
}

const mock_reading *mock_host_last_reading(const mock_host *m, uint32_t device)
{
    for (size_t i = m->readings.n; i-- > 0;) {
        const mock_reading *r = m->readings.v[i];
        if (r->device == device) return r;
    }
    return NULL;
}

double mock_host_extra_num(const mock_reading *r, const char *key)
{
    const gp_json *v = r ? gp_json_get(r->r.extra, key) : NULL;
    return gp_json_type(v) == GP_JSON_NUMBER ? gp_json_num(v) : NAN;
}

const char *mock_host_extra_str(const mock_reading *r, const char *key)
{
    return r ? gp_json_str(gp_json_get(r->r.extra, key)) : NULL;
}

static const mock_result *find_result(const ptrv *p, uint64_t id, size_t *count)
{
    const mock_result *last = NULL;
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const mock_result *r = p->v[i];
        if (r->id == id) {
            last = r;
            n++;
        }
    }
    if (count) *count = n;
    return last;
}

size_t mock_host_n_read_done(const mock_host *m)
{
    return m->read_done.n;
}

const mock_result *mock_host_read_done(const mock_host *m, size_t i)
{
    return i < m->read_done.n ? m->read_done.v[i] : NULL;
}

size_t mock_host_n_command_results(const mock_host *m)
{
    return m->cmd_res.n;
}

const mock_result *mock_host_command_result_at(const mock_host *m, size_t i)
{
    return i < m->cmd_res.n ? m->cmd_res.v[i] : NULL;
}

const mock_result *mock_host_command_result(const mock_host *m, uint64_t cmd_id, size_t *count)
{
    return find_result(&m->cmd_res, cmd_id, count);
}

size_t mock_host_n_task_results(const mock_host *m)
{
    return m->task_res.n;
}

const mock_result *mock_host_task_result_at(const mock_host *m, size_t i)
{
    return i < m->task_res.n ? m->task_res.v[i] : NULL;
}

const mock_result *mock_host_task_result(const mock_host *m, uint64_t cmd_id, size_t *count)
{
    return find_result(&m->task_res, cmd_id, count);
}

size_t mock_host_n_login_done(const mock_host *m)
{
    return m->login_res.n;
}

const mock_result *mock_host_login_done(const mock_host *m, size_t i)
{
    return i < m->login_res.n ? m->login_res.v[i] : NULL;
}

size_t mock_host_n_rate_limited(const mock_host *m)
{
    return m->rl_endpoints.n;
}

const char *mock_host_rate_limited_at(const mock_host *m, size_t i, double *retry_after_s)
{
    if (i >= m->rl_endpoints.n) return NULL;
    if (retry_after_s) *retry_after_s = m->rl_after[i];
    return m->rl_endpoints.v[i];
}

size_t mock_host_commands_outstanding(const mock_host *m)
{
    return m->out_cmds.n;
}

size_t mock_host_n_config_errors(const mock_host *m)
{
    return m->cfg_errs.n;
}

const char *mock_host_config_error(const mock_host *m, size_t i)
{
    return i < m->cfg_errs.n ? m->cfg_errs.v[i] : NULL;
}

int mock_host_has_config_error(const mock_host *m, const char *needle)
{
    for (size_t i = 0; i < m->cfg_errs.n; i++)
        if (strstr(m->cfg_errs.v[i], needle)) return 1;
    return 0;
}

size_t mock_host_n_logs(const mock_host *m)
{
    return m->logs.n;
}

const char *mock_host_log_line(const mock_host *m, size_t i, int *level)
{
    if (i >= m->logs.n) return NULL;
    if (level) *level = m->log_levels[i];
    return m->logs.v[i];
}

int mock_host_log_contains(const mock_host *m, const char *needle)
{
    for (size_t i = 0; i < m->logs.n; i++)
        if (strstr(m->logs.v[i], needle)) return 1;
    return 0;
}

size_t mock_host_n_violations(const mock_host *m)
{
    return m->violations.n;
}

const char *mock_host_violation(const mock_host *m, size_t i)
{
    return i < m->violations.n ? m->violations.v[i] : NULL;
}

/* ---- configuration, kv, HTTP ---------------------------------------------------------- */

void mock_host_set_base_dir(mock_host *m, const char *dir)
{
    free(m->base_dir);
    m->base_dir = dup_or_null(dir);
}

void mock_host_set_next_request_id(mock_host *m, uint64_t next)
{
    m->next_request_id = next;
}

const char *mock_host_kv_value(const mock_host *m, const char *key, size_t *len)
{
    kv_entry *e = key ? kv_find(m, key) : NULL;
    if (!e) return NULL;
    if (len) *len = e->len;
    return e->val;
}

size_t mock_host_kv_count(const mock_host *m)
{
    return m->n_kv;
}

void mock_host_kv_copy(mock_host *dst, const mock_host *src)
{
    if (dst == src) return;
    for (size_t i = 0; i < dst->n_kv; i++) {
        free(dst->kv[i].key);
        free(dst->kv[i].val);
    }
    dst->n_kv = 0;
    for (size_t i = 0; i < src->n_kv; i++) {
        GROW(dst->kv, dst->n_kv, dst->cap_kv);
        kv_entry *e = &dst->kv[dst->n_kv++];
        e->key = gp_xstrdup(src->kv[i].key);
        e->len = src->kv[i].len;
        e->val = gp_xmalloc(e->len + 1);
        memcpy(e->val, src->kv[i].val, e->len + 1);
    }
}

size_t mock_host_kv_writes(const mock_host *m)
{
    return m->kv_writes;
}

size_t mock_host_kv_deletes(const mock_host *m)
{
    return m->kv_deletes;
}

void mock_host_http_push(mock_host *m, const mock_http_response *resp)
{
    if (m->q_n == m->q_cap) {
        /* Unroll the ring into a bigger buffer. */
        size_t cap = m->q_cap ? m->q_cap * 2 : 8;
        answer *q = gp_xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < m->q_n; i++)
            q[i] = m->queue[(m->q_head + i) % m->q_cap];
        free(m->queue);
        m->queue = q;
        m->q_cap = cap;
        m->q_head = 0;
    }
    answer_copy(&m->queue[(m->q_head + m->q_n) % m->q_cap], resp);
    m->q_n++;
}

void mock_host_http_push_text(mock_host *m, long status, const char *body)
{
    mock_http_response r = {.error = GP_HTTP_OK, .status = status, .body = body};
    mock_host_http_push(m, &r);
}

void mock_host_http_set_handler(mock_host *m, mock_http_handler fn, void *ud)
{
    m->handler = fn;
    m->handler_ud = ud;
}

size_t mock_host_n_http_requests(const mock_host *m)
{
    return m->http_reqs.n;
}

const mock_http_request *mock_host_http_request(const mock_host *m, size_t i)
{
    return i < m->http_reqs.n ? m->http_reqs.v[i] : NULL;
}

size_t mock_host_http_in_flight(const mock_host *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_evs; i++)
        n += m->evs[i].kind == EV_HTTP;
    return n;
}
