/*
 * HTTP client: one libcurl multi handle driven by libev (socket + timer callbacks).
 *
 * Curl only ever runs inside curl_multi_socket_action, called from our ev watchers. Its
 * callbacks (write, header, socket, timer) just record things; user callbacks run afterwards
 * from `deliver`, when no curl call is on the stack. A transfer is unlinked from every list
 * before its final callback runs, so the callback may start requests, cancel owners or even
 * free the client. The one callback that runs while its transfer lives on (on_chunk) pins
 * the transfer so that a cancel from inside it only marks it for freeing.
 */
#include "http.h"

#include <curl/curl.h>
#include <ev.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "str.h"
#include "timeutil.h"

#define DEFAULT_TIMEOUT_S 30.0
#define DEFAULT_MAX_BODY  ((size_t)16 << 20)
#define MAX_HOST_CONNS    8L
#define MAX_CACHED_CONNS  64L
#define MAX_TIMEOUT_S     (30.0 * 86400) /* keeps the ms conversion far from overflow */

typedef struct xfer xfer;

/* One socket curl asked us to watch; owned by the client, freed on CURL_POLL_REMOVE. */
typedef struct sock {
    ev_io io;
    gp_http *h;
    struct sock *prev, *next;
} sock;

struct xfer {
    gp_http *h;
    CURL *easy; /* owned */
    void *owner;
    gp_http_cb cb;
    void *ud;
    gp_http_chunk_cb on_chunk;
    char *who;                      /* owned copy of opts->who */
    char *method;                   /* owned */
    char *log_url;                  /* owned; URL without userinfo, query or fragment */
    char *body;                     /* owned copy of the request body (curl reads it in place) */
    struct curl_slist *req_headers; /* owned */
    gp_str resp;                    /* buffered response body */
    gp_str chunks;                  /* streaming: received, not yet handed to on_chunk */
    char **headers;                 /* owned "Name: value" strings, NULL-terminated when reported */
    size_t n_headers, cap_headers;
    size_t max_body;
    double t0;
    CURLcode code;   /* curl's result once finished */
    int error;       /* a gp_http_error we decided ourselves (abort, too large), else 0 */
    const char *why; /* static; our own message for `error` */
    int in_multi, finished, queued, pin, zombie;
    xfer *prev, *next;   /* h->xfers: every transfer not yet reported */
    xfer *qprev, *qnext; /* h->queue: transfers with chunks or a result to deliver */
    xfer *cnext;         /* cancel_owner's private list */
    char errbuf[CURL_ERROR_SIZE];
};

struct gp_http {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer curl_timer; /* curl's own timeout (CURLMOPT_TIMERFUNCTION) */
    ev_timer kick;       /* delivers results of requests that failed before reaching curl */
    sock *socks;
    xfer *xfers, *xfers_tail;
    size_t n_xfers;
    xfer *q_head, *q_tail;
    long connects;
    int busy;  /* nesting depth of our own dispatch code; gp_http_free waits for 0 */
    int dying; /* gp_http_free was called while busy */
};

/* ---- lists ---- */

static void xfers_add(gp_http *h, xfer *x)
{
    x->next = NULL;
    x->prev = h->xfers_tail;
    if (h->xfers_tail)
        h->xfers_tail->next = x;
    else
        h->xfers = x;
    h->xfers_tail = x;
    h->n_xfers++;
}

static void xfers_del(gp_http *h, xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        h->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        h->xfers_tail = x->prev;
    x->prev = x->next = NULL;
    h->n_xfers--;
}

static void queue_add(gp_http *h, xfer *x)
{
    if (x->queued) return;
    x->queued = 1;
    x->qnext = NULL;
    x->qprev = h->q_tail;
    if (h->q_tail)
        h->q_tail->qnext = x;
    else
        h->q_head = x;
    h->q_tail = x;
}

static void queue_del(gp_http *h, xfer *x)
{
    if (!x->queued) return;
    x->queued = 0;
    if (x->qprev)
        x->qprev->qnext = x->qnext;
    else
        h->q_head = x->qnext;
    if (x->qnext)
        x->qnext->qprev = x->qprev;
    else
        h->q_tail = x->qprev;
    x->qprev = x->qnext = NULL;
}

/* ---- transfer lifetime ---- */

static void xfer_free(xfer *x)
{
    if (x->pin) {
        /* on_chunk is running for it; deliver frees it when that returns */
        x->zombie = 1;
        return;
    }
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->req_headers);
    for (size_t i = 0; i < x->n_headers; i++)
        free(x->headers[i]);
    free(x->headers);
    gp_str_clear(&x->resp);
    gp_str_clear(&x->chunks);
    free(x->who);
    free(x->method);
    free(x->log_url);
    free(x->body);
    free(x);
}

static void leave_multi(xfer *x)
{
    if (!x->in_multi) return;
    curl_multi_remove_handle(x->h->multi, x->easy);
    x->in_multi = 0;
    long n = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
        x->h->connects += n;
}

/* Take a transfer out of every list and out of curl; it is then reachable only by the
 * caller, who reports and/or frees it. */
static void detach(xfer *x)
{
    xfers_del(x->h, x);
    queue_del(x->h, x);
    leave_multi(x);
}

/* Our own verdict; the text goes to errbuf only at the end, since curl writes its own
 * message there when it fails the transfer we stopped. */
static void set_error(xfer *x, int error, const char *why)
{
    x->error = error;
    x->why = why;
}

/* ---- results ---- */

static int is_tls_error(CURLcode c)
{
    switch (c) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Every failure that is neither a timeout, TLS nor our own decision is a transport problem
 * the caller may retry, which is what GP_HTTP_CONNECT means to adapters. */
static int classify(const xfer *x)
{
    if (x->error) return x->error;
    switch (x->code) {
    case CURLE_OK:
        return GP_HTTP_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return GP_HTTP_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return GP_HTTP_TOO_LARGE;
    default:
        return is_tls_error(x->code) ? GP_HTTP_TLS : GP_HTTP_CONNECT;
    }
}

static const char *const error_names[] = {"ok",  "timeout", "connect",
                                          "tls", "aborted", "too large"};

static void log_result(const xfer *x, int error, long status, double elapsed)
{
    if (gp_log_level() < GP_LOG_DEBUG) return;
    if (error == GP_HTTP_OK)
        gp_debug(x->who, "%s %s -> %ld in %.3fs", x->method, x->log_url, status, elapsed);
    else
        gp_debug(x->who, "%s %s -> %s (%s) in %.3fs", x->method, x->log_url, error_names[error],
                 x->errbuf, elapsed);
}

/* Call the final callback of a detached transfer, then free it. */
static void complete(xfer *x)
{
    static const char *const no_headers[] = {NULL};
    gp_http_resp r = {.size = sizeof(gp_http_resp)};
    r.error = classify(x);
    if (r.error == GP_HTTP_TOO_LARGE)
        snprintf(x->errbuf, sizeof x->errbuf, "response body over %zu bytes", x->max_body);
    else if (x->why)
        snprintf(x->errbuf, sizeof x->errbuf, "%s", x->why);
    else if (r.error != GP_HTTP_OK && !x->errbuf[0])
        snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(x->code));
    r.error_msg = r.error == GP_HTTP_OK ? NULL : x->errbuf;
    if (x->easy) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = gp_str_cstr(&x->resp);
    r.body_len = x->resp.len;
    r.elapsed_s = gp_mono_s() - x->t0;
    if (x->n_headers) {
        x->headers[x->n_headers] = NULL;
        r.headers = (const char *const *)x->headers;
    } else {
        r.headers = no_headers;
    }
    log_result(x, r.error, r.status, r.elapsed_s);
    x->cb(x->ud, &r);
    xfer_free(x);
}

/* Hand buffered chunks to on_chunk. Returns 0 when the transfer was freed meanwhile. */
static int feed(xfer *x)
{
    gp_str data = x->chunks;
    memset(&x->chunks, 0, sizeof x->chunks);
    x->pin++;
    int stop = x->on_chunk(x->ud, data.data, data.len);
    x->pin--;
    gp_str_clear(&data);
    if (x->zombie) {
        xfer_free(x);
        return 0;
    }
    if (stop) {
        leave_multi(x);
        set_error(x, GP_HTTP_ABORTED, "stream aborted by its consumer");
        x->finished = 1;
    }
    return 1;
}

static void deliver(gp_http *h)
{
    xfer *x;
    while (!h->dying && (x = h->q_head) != NULL) {
        queue_del(h, x);
        if (x->chunks.len && !x->error && !feed(x)) continue;
        if (x->finished) {
            detach(x);
            complete(x);
        }
    }
}

/* Move what curl finished into the delivery queue; no user code runs here. */
static void collect(gp_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        /* m dies with curl_multi_remove_handle: copy what we need first */
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        xfer *x = (xfer *)priv;
        if (!x) continue;
        x->code = code;
        leave_multi(x);
        x->finished = 1;
        queue_add(h, x);
    }
}

/* ---- the loop side ---- */

static void destroy(gp_http *h)
{
    ev_timer_stop(h->loop, &h->curl_timer);
    ev_timer_stop(h->loop, &h->kick);
    curl_multi_cleanup(h->multi);
    ev_timer_stop(h->loop, &h->curl_timer);
    while (h->socks) {
        sock *s = h->socks;
        h->socks = s->next;
        ev_io_stop(h->loop, &s->io);
        free(s);
    }
    free(h);
}

/* Returns 0 when the client was destroyed (gp_http_free from a callback). */
static int leave_busy(gp_http *h)
{
    if (--h->busy == 0 && h->dying) {
        destroy(h);
        return 0;
    }
    return 1;
}

static void arm_curl_timer(gp_http *h, long ms)
{
    ev_timer_stop(h->loop, &h->curl_timer);
    if (ms < 0) return;
    /* curl speaks milliseconds, libev seconds */
    ev_timer_set(&h->curl_timer, (double)ms / 1000.0, 0.);
    ev_timer_start(h->loop, &h->curl_timer);
}

static void drive(gp_http *h, curl_socket_t fd, int action)
{
    int running = 0;
    h->busy++;
    curl_multi_socket_action(h->multi, fd, action, &running);
    collect(h);
    /* curl only calls the timer function when its deadline changes; a timer that fired a
     * hair early would otherwise leave the multi without any timer at all */
    long ms = -1;
    if (curl_multi_timeout(h->multi, &ms) == CURLM_OK) arm_curl_timer(h, ms);
    deliver(h);
    leave_busy(h);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    sock *s = w->data;
    int action =
        (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    drive(s->h, w->fd, action);
}

static void on_curl_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    drive(w->data, CURL_SOCKET_TIMEOUT, 0);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gp_http *h = w->data;
    h->busy++;
    deliver(h);
    leave_busy(h);
}

static void kick(gp_http *h)
{
    if (ev_is_active(&h->kick)) return;
    ev_timer_set(&h->kick, 0., 0.);
    ev_timer_start(h->loop, &h->kick);
}

/* CURLMOPT_TIMERFUNCTION. A 0 timeout still goes through the loop: calling
 * socket_action from here would re-enter curl. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    arm_curl_timer(ud, timeout_ms);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)easy;
    gp_http *h = ud;
    sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (!s) return 0;
        ev_io_stop(h->loop, &s->io);
        if (s->prev)
            s->prev->next = s->next;
        else
            h->socks = s->next;
        if (s->next) s->next->prev = s->prev;
        free(s);
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!s) {
        s = gp_xcalloc(1, sizeof(*s));
        s->h = h;
        s->next = h->socks;
        if (h->socks) h->socks->prev = s;
        h->socks = s;
        ev_init(&s->io, on_io);
        s->io.data = s;
        curl_multi_assign(h->multi, fd, s);
    } else {
        ev_io_stop(h->loop, &s->io);
    }
    ev_io_set(&s->io, fd, events);
    ev_io_start(h->loop, &s->io);
    return 0;
}

/* ---- curl data callbacks: record only ---- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->on_chunk) {
        gp_str_append(&x->chunks, data, len);
        queue_add(x->h, x);
        return len;
    }
    if (len > x->max_body - x->resp.len) {
        x->error = GP_HTTP_TOO_LARGE;
        return CURL_WRITEFUNC_ERROR;
    }
    gp_str_append(&x->resp, data, len);
    return len;
}

static void headers_clear(xfer *x)
{
    for (size_t i = 0; i < x->n_headers; i++)
        free(x->headers[i]);
    x->n_headers = 0;
}

static void headers_push(xfer *x, const char *line, size_t len)
{
    if (x->n_headers + 2 > x->cap_headers) {
        x->cap_headers = x->cap_headers ? x->cap_headers * 2 : 16;
        x->headers = gp_xrealloc(x->headers, x->cap_headers * sizeof(*x->headers));
    }
    char *copy = gp_xmalloc(len + 1);
    memcpy(copy, line, len);
    copy[len] = '\0';
    x->headers[x->n_headers++] = copy;
}

/* Obsolete line folding: a continuation line extends the previous header. */
static void headers_fold(xfer *x, const char *line, size_t len)
{
    while (len && (*line == ' ' || *line == '\t'))
        line++, len--;
    char *prev = x->headers[x->n_headers - 1];
    size_t plen = strlen(prev);
    prev = gp_xrealloc(prev, plen + 1 + len + 1);
    prev[plen] = ' ';
    memcpy(prev + plen + 1, line, len);
    prev[plen + 1 + len] = '\0';
    x->headers[x->n_headers - 1] = prev;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t total = size * n, len = total;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        headers_clear(x); /* a new response (after 1xx, redirect or proxy CONNECT) */
    else if (len && (data[0] == ' ' || data[0] == '\t') && x->n_headers)
        headers_fold(x, data, len);
    else if (len)
        headers_push(x, data, len);
    return total;
}

/* ---- starting requests ---- */

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};

static const char *known_method(const char *m)
{
    if (!m) return "GET";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i]) == 0) return methods[i];
    return NULL;
}

/* Validate the URL; on success returns the loggable form (owned by the caller). */
static char *check_url(const char *url, const char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *clean = NULL, *out = NULL;
    if (!u) {
        *why = "out of memory";
        return NULL;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        *why = "URL is not a valid absolute URL";
    } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        *why = "URL scheme is not http or https";
    } else {
        /* userinfo and query strings often carry credentials or tokens */
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
        curl_url_set(u, CURLUPART_QUERY, NULL, 0);
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
        if (curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK)
            out = gp_xstrdup(clean);
        else
            *why = "URL cannot be normalised";
    }
    curl_free(scheme);
    curl_free(clean);
    curl_url_cleanup(u);
    return out;
}

static const char *check_headers(const char *const *hdrs)
{
    for (size_t i = 0; hdrs && hdrs[i]; i++) {
        if (strpbrk(hdrs[i], "\r\n")) return "a request header contains CR or LF";
        if (!strpbrk(hdrs[i], ":;")) return "a request header is not 'Name: value'";
    }
    return NULL;
}

/* Build the header list; adds "Expect:" so curl never waits for 100-continue. */
static CURLcode build_headers(xfer *x, const char *const *hdrs)
{
    int has_expect = 0;
    for (size_t i = 0; hdrs && hdrs[i]; i++) {
        if (strncasecmp(hdrs[i], "Expect", 6) == 0 && (hdrs[i][6] == ':' || hdrs[i][6] == ';'))
            has_expect = 1;
        struct curl_slist *l = curl_slist_append(x->req_headers, hdrs[i]);
        if (!l) return CURLE_OUT_OF_MEMORY;
        x->req_headers = l;
    }
    if (!has_expect) {
        struct curl_slist *l = curl_slist_append(x->req_headers, "Expect:");
        if (!l) return CURLE_OUT_OF_MEMORY;
        x->req_headers = l;
    }
    return CURLE_OK;
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val);                                    \
    } while (0)

static CURLcode setup_easy(xfer *x, const gp_http_opts *o, const gp_http_req *r, double timeout)
{
    CURL *e = x->easy;
    CURLcode rc = build_headers(x, r->headers);
    SET(CURLOPT_PRIVATE, (char *)x);
    SET(CURLOPT_ERRORBUFFER, x->errbuf);
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, ""); /* never route through an environment proxy */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)ceil(timeout * 1000.0));
    SET(CURLOPT_HTTPHEADER, x->req_headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    if (!r->on_chunk) SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
    int verify = o ? o->tls_verify != 0 : 1;
    SET(CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (o && o->ca_file) SET(CURLOPT_CAINFO, o->ca_file);
    if (r->user || r->password) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, r->user ? r->user : "");
        SET(CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    int is_get = strcmp(x->method, "GET") == 0;
    int is_delete = strcmp(x->method, "DELETE") == 0;
    /* POST, PUT and PATCH always send a body (Content-Length: 0 when empty); GET and DELETE
     * only when given one */
    if (r->body_len || (!is_get && !is_delete)) {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        SET(CURLOPT_POSTFIELDS, x->body);
    }
    if (strcmp(x->method, "POST") != 0 && (!is_get || r->body_len))
        SET(CURLOPT_CUSTOMREQUEST, x->method);
    return rc;
}

#undef SET

static int refuse(const gp_http_opts *o, const char *fmt, ...) GP_PRINTF(2, 3);
static int refuse(const gp_http_opts *o, const char *fmt, ...)
{
    gp_str msg = {0};
    va_list ap;
    va_start(ap, fmt);
    gp_str_vprintf(&msg, fmt, ap);
    va_end(ap);
    gp_warn(o && o->who ? o->who : "http", "HTTP request refused: %s", gp_str_cstr(&msg));
    gp_str_clear(&msg);
    return -1;
}

int gp_http_request(gp_http *h, const gp_http_opts *o, void *owner, const gp_http_req *req,
                    gp_http_cb cb, void *ud)
{
    if (!h || h->dying || !req || !cb) return refuse(o, "missing client, request or callback");
    /* A plugin built against an older ABI passes a shorter struct; size 0 (an in-core
     * caller that did not fill it) means the current one. */
    gp_http_req r = {0};
    size_t n = req->size && req->size < sizeof r ? req->size : sizeof r;
    memcpy(&r, req, n);
    const char *method = known_method(r.method);
    if (!method)
        return refuse(o, "unknown method '%.16s' (use GET, POST, PUT, DELETE or PATCH)", r.method);
    if (!r.url) return refuse(o, "no URL");
    if (!(r.timeout_s >= 0)) return refuse(o, "timeout_s is negative or not a number");
    if (r.body_len && !r.body) return refuse(o, "body_len without a body");
    const char *why = check_headers(r.headers);
    if (why) return refuse(o, "%s", why);
    char *log_url = check_url(r.url, &why);
    if (!log_url) return refuse(o, "%s", why);

    double timeout = r.timeout_s > 0                 ? r.timeout_s
                     : o && o->default_timeout_s > 0 ? o->default_timeout_s
                                                     : DEFAULT_TIMEOUT_S;
    if (timeout > MAX_TIMEOUT_S) timeout = MAX_TIMEOUT_S;
    xfer *x = gp_xcalloc(1, sizeof(*x));
    x->h = h;
    x->owner = owner;
    x->cb = cb;
    x->ud = ud;
    x->on_chunk = r.on_chunk;
    x->who = gp_xstrdup(o && o->who ? o->who : "http");
    x->method = gp_xstrdup(method);
    x->log_url = log_url;
    x->max_body = o && o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    x->t0 = gp_mono_s();
    x->body = gp_xmalloc(r.body_len + 1);
    if (r.body_len) memcpy(x->body, r.body, r.body_len);
    x->body[r.body_len] = '\0';
    xfers_add(h, x);

    x->easy = curl_easy_init();
    CURLcode rc = x->easy ? setup_easy(x, o, &r, timeout) : CURLE_FAILED_INIT;
    if (rc == CURLE_OK) {
        CURLMcode mrc = curl_multi_add_handle(h->multi, x->easy);
        if (mrc == CURLM_OK) {
            x->in_multi = 1;
            return 0;
        }
        snprintf(x->errbuf, sizeof x->errbuf, "curl: %s", curl_multi_strerror(mrc));
        rc = CURLE_FAILED_INIT;
    }
    /* The contract is "cb later, from the loop", even for a request that never started. */
    if (!x->errbuf[0])
        snprintf(x->errbuf, sizeof x->errbuf, "request setup failed: %s", curl_easy_strerror(rc));
    x->code = rc;
    x->finished = 1;
    queue_add(h, x);
    kick(h);
    return 0;
}

/* ---- public lifetime and queries ---- */

gp_http *gp_http_new(struct ev_loop *loop)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            gp_err("http", "libcurl initialisation failed");
            return NULL;
        }
        curl_ready = 1;
    }
    gp_http *h = gp_xcalloc(1, sizeof(*h));
    h->loop = loop ? loop : EV_DEFAULT;
    h->multi = curl_multi_init();
    if (!h->multi) {
        gp_err("http", "libcurl multi handle could not be created");
        free(h);
        return NULL;
    }
    ev_timer_init(&h->curl_timer, on_curl_timeout, 0., 0.);
    h->curl_timer.data = h;
    ev_timer_init(&h->kick, on_kick, 0., 0.);
    h->kick.data = h;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, MAX_HOST_CONNS);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, MAX_CACHED_CONNS);
    return h;
}

void gp_http_free(gp_http *h)
{
    if (!h || h->dying) return;
    h->dying = 1;
    while (h->xfers) {
        xfer *x = h->xfers;
        detach(x);
        xfer_free(x);
    }
    if (!h->busy) destroy(h);
}

void gp_http_cancel_owner(gp_http *h, void *owner)
{
    if (!h || h->dying) return;
    /* Detach them all first: callbacks may start new requests for the same owner, which
     * this cancel must not touch. */
    xfer *list = NULL, **tail = &list;
    for (xfer *x = h->xfers, *next; x; x = next) {
        next = x->next;
        if (x->owner != owner) continue;
        detach(x);
        x->cnext = NULL;
        *tail = x;
        tail = &x->cnext;
    }
    h->busy++;
    while (list) {
        xfer *x = list;
        list = x->cnext;
        if (h->dying) { /* gp_http_free from one of these callbacks: no more callbacks */
            xfer_free(x);
            continue;
        }
        set_error(x, GP_HTTP_ABORTED, "request cancelled");
        complete(x);
    }
    leave_busy(h);
}

size_t gp_http_active(const gp_http *h)
{
    return h ? h->n_xfers : 0;
}

long gp_http_connects(const gp_http *h)
{
    return h ? h->connects : 0;
}

const char *gp_http_header(const gp_http_resp *r, const char *name, unsigned idx)
{
    if (!r || !r->headers || !name) return NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; r->headers[i]; i++) {
        const char *hd = r->headers[i];
        if (strncasecmp(hd, name, nlen) != 0 || hd[nlen] != ':') continue;
        if (idx-- > 0) continue;
        const char *v = hd + nlen + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        return v;
    }
    return NULL;
}
