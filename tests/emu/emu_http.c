/*
 * The HTTP(S) server. A vendor request goes: fault lookup -> (latency/stall wait, unlocked)
 * -> handler or fault answer (locked) -> log and stats (locked) -> send, broken on purpose
 * for the malformed and truncated faults.
 */
#include "emu_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "emu_control.h"
#include "json.h"

#define MAX_BODY (4u << 20)

struct emu_server {
    struct MHD_Daemon *d;
    emu_ctx *ctx;
    char *cert, *key; /* owned PEM text; MHD keeps pointers to them */
    uint16_t port;
};

/* One request's upload, across the access handler's calls. */
typedef struct upload {
    gp_str body;
    int too_big;
} upload;

/* ---- request and response helpers for handlers ---------------------------------------- */

const char *emu_req_header(const emu_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *emu_req_query(const emu_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

void emu_resp_header(emu_resp *r, const char *name, const char *value)
{
    if (r->n_headers == EMU_MAX_HEADERS) return;
    r->hname[r->n_headers] = gp_xstrdup(name);
    r->hvalue[r->n_headers] = gp_xstrdup(value);
    r->n_headers++;
}

void emu_resp_code(emu_resp *r, int code)
{
    r->has_code = 1;
    r->code = code;
}

static void resp_init(emu_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
    r->content_type = "application/json;charset=UTF-8";
}

static void resp_free(emu_resp *r)
{
    gp_str_clear(&r->body);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->hname[i]);
        free(r->hvalue[i]);
    }
    r->n_headers = 0;
}

/* ---- logging a request ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    size_t n = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || n > left || (n == 2 && p[0] < 0xc2)) return 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80) return 0;
    return n;
}

/* The body as JSON-safe text: NULs and invalid UTF-8 bytes become '?'. Caller frees. */
static char *clean_text(const char *s, size_t len)
{
    char *out = gp_xmalloc(len + 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = p[i] ? utf8_len(p + i, len - i) : 0;
        if (n == 0) {
            out[i++] = '?';
        } else {
            memcpy(out + i, p + i, n);
            i += n;
        }
    }
    out[len] = 0;
    return out;
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    gp_str *o = cls;
    if (o->len > 1) gp_str_puts(o, ",");
    gp_str_json(o, key);
    gp_str_puts(o, ":");
    gp_str_json(o, value ? value : "");
    return MHD_YES;
}

static char *headers_json(struct MHD_Connection *conn)
{
    gp_str o = {0};
    gp_str_puts(&o, "{");
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, &o);
    gp_str_puts(&o, "}");
    return o.data;
}

/* ---- sending -------------------------------------------------------------------------- */

static enum MHD_Result send_resp(struct MHD_Connection *conn, emu_resp *r,
                                 struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    for (size_t i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static struct MHD_Response *buffer_response(emu_resp *r)
{
    if (r->body.len == 0)
        return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->body.len, r->body.data, MHD_RESPMEM_MUST_FREE);
    if (resp) memset(&r->body, 0, sizeof(r->body)); /* MHD frees it now */
    return resp;
}

/* A body that stops halfway: MHD closes the connection short of its Content-Length. */
typedef struct half_body {
    char *data;
    size_t len, cut;
} half_body;

static ssize_t half_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    half_body *h = cls;
    if (pos >= h->cut) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = h->cut - (size_t)pos;
    if (n > max) n = max;
    memcpy(buf, h->data + pos, n);
    return (ssize_t)n;
}

static void half_free(void *cls)
{
    half_body *h = cls;
    free(h->data);
    free(h);
}

static struct MHD_Response *truncated_response(emu_resp *r)
{
    half_body *h = gp_xcalloc(1, sizeof(*h));
    h->len = r->body.len;
    h->cut = r->body.len / 2;
    h->data = r->body.data ? r->body.data : gp_xstrdup("");
    memset(&r->body, 0, sizeof(r->body));
    return MHD_create_response_from_callback(h->len, 4096, half_reader, h, half_free);
}

/* What a broken proxy or a crashed backend might send: the start of the JSON, then HTML. */
static void make_malformed(emu_resp *r)
{
    gp_str b = {0};
    gp_str_append(&b, gp_str_cstr(&r->body), r->body.len / 2);
    gp_str_puts(&b, "<html><body>Internal error</body></html>");
    gp_str_clear(&r->body);
    r->body = b;
}

/* Close with an RST instead of an answer. */
static enum MHD_Result reset(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    return MHD_NO;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, int status, const char *ctype,
                                 const char *text)
{
    emu_resp r;
    resp_init(&r);
    r.status = status;
    r.content_type = ctype;
    gp_str_puts(&r.body, text);
    enum MHD_Result ret = send_resp(conn, &r, buffer_response(&r));
    resp_free(&r);
    return ret;
}

/* ---- vendor requests ------------------------------------------------------------------ */

/* The route for method+path; *status gets 404 or 405 when there is none. */
static const emu_route *find_route(const emu_vendor *v, const char *method, const char *path,
                                   int *status)
{
    *status = 404;
    for (size_t i = 0; i < v->n_routes; i++) {
        if (strcmp(v->routes[i].path, path) != 0) continue;
        if (strcmp(v->routes[i].method, method) == 0) return &v->routes[i];
        *status = 405;
    }
    return NULL;
}

static void no_route(emu_resp *r, int status, const char *path)
{
    r->status = status;
    gp_str_puts(&r->body, status == 405 ? "{\"error\":\"method not allowed\",\"path\":"
                                        : "{\"error\":\"no such API\",\"path\":");
    gp_str_json(&r->body, path);
    gp_str_puts(&r->body, "}");
}

/* Record a request that got no answer (reset, stall). */
static void log_silent(emu_ctx *c, emu_log_entry *e, emu_fault_kind kind)
{
    pthread_mutex_lock(&c->mu);
    e->fault = emu_fault_kind_name(kind);
    emu_stats_count(&c->stats, e->api, 0, 1);
    emu_log_add(&c->log, e);
    pthread_mutex_unlock(&c->mu);
}

/* The answer: the fault's own, or the route's handler's. Called with the mutex held. */
static void answer(emu_ctx *c, const emu_route *rt, int no_status, const emu_fault *f,
                   const emu_req *req, emu_resp *r)
{
    const emu_vendor *v = c->vendor;
    if (f && f->kind == EMU_F_HTTP_STATUS) {
        r->status = f->status;
        r->content_type = "text/html";
        gp_str_printf(&r->body, "<html><body><h1>%d</h1>gp-emu fault</body></html>", f->status);
    } else if (f && f->kind == EMU_F_FAILCODE) {
        v->fail(c->vstate, req, f->code, r);
    } else if (f && f->kind == EMU_F_TOKEN_EXPIRED) {
        v->auth_expired(c->vstate, req, r);
    } else if (!rt) {
        no_route(r, no_status, req->path);
    } else {
        rt->fn(c->vstate, req, r);
    }
}

/* Count and log an answered request (e's strings are taken). Called with the mutex held. */
static void record(emu_ctx *c, emu_log_entry *e, const emu_resp *r, const emu_fault *f)
{
    int broken = f && (f->kind == EMU_F_MALFORMED || f->kind == EMU_F_TRUNCATED);
    int failed = r->status != 200 || (r->has_code && r->code != 0) || broken;
    emu_stats_count(&c->stats, e->api, r->quota_hit, failed);
    e->status = r->status;
    e->has_code = r->has_code;
    e->code = r->code;
    e->fault = f ? emu_fault_kind_name(f->kind) : NULL;
    emu_log_add(&c->log, e);
}

static enum MHD_Result vendor_request(emu_server *s, emu_req *req)
{
    emu_ctx *c = s->ctx;
    int no_status;
    const emu_route *rt = find_route(c->vendor, req->method, req->path, &no_status);
    emu_log_entry e = {
        .method = gp_xstrdup(req->method),
        .path = gp_xstrdup(req->path),
        .api = gp_xstrdup(rt ? rt->api : "unknown"),
        .headers = headers_json(req->conn),
        .body = clean_text(req->body, req->body_len),
    };

    pthread_mutex_lock(&c->mu);
    e.t_ms = emu_clock_now(&c->clock);
    emu_fault fault;
    const emu_fault *f = emu_faults_take(&c->faults, req->path, &fault) ? &fault : NULL;
    pthread_mutex_unlock(&c->mu);

    if (f && (f->kind == EMU_F_RESET || f->kind == EMU_F_STALL)) {
        log_silent(c, &e, f->kind); /* now: a stall's client gives up long before it ends */
        if (f->kind == EMU_F_STALL) emu_ctx_sleep(c, f->ms);
        return reset(req->conn);
    }
    if (f && f->kind == EMU_F_LATENCY) emu_ctx_sleep(c, f->ms);

    emu_resp r;
    resp_init(&r);
    pthread_mutex_lock(&c->mu);
    req->now_ms = emu_clock_now(&c->clock);
    answer(c, rt, no_status, f, req, &r);
    record(c, &e, &r, f);
    pthread_mutex_unlock(&c->mu);

    if (f && f->kind == EMU_F_MALFORMED) make_malformed(&r);
    struct MHD_Response *resp =
        f && f->kind == EMU_F_TRUNCATED ? truncated_response(&r) : buffer_response(&r);
    enum MHD_Result ret = resp ? send_resp(req->conn, &r, resp) : MHD_NO;
    resp_free(&r);
    return ret;
}

static enum MHD_Result control_request(emu_server *s, emu_req *req)
{
    emu_ctx *c = s->ctx;
    emu_resp r;
    resp_init(&r);
    pthread_mutex_lock(&c->mu);
    req->now_ms = emu_clock_now(&c->clock);
    emu_control_handle(c, req, &r);
    pthread_mutex_unlock(&c->mu);
    struct MHD_Response *resp = buffer_response(&r);
    enum MHD_Result ret = resp ? send_resp(req->conn, &r, resp) : MHD_NO;
    resp_free(&r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)version;
    emu_server *s = cls;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = gp_xcalloc(1, sizeof(upload));
        return MHD_YES;
    }
    if (*data_size) {
        if (u->body.len + *data_size > MAX_BODY)
            u->too_big = 1;
        else
            gp_str_append(&u->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    if (u->too_big) return send_text(conn, 413, "text/plain", "request body larger than 4 MiB\n");
    emu_req req = {
        .method = method,
        .path = url,
        .body = gp_str_cstr(&u->body),
        .body_len = u->body.len,
        .conn = conn,
    };
    if (strcmp(url, "/_emu") == 0 || strncmp(url, "/_emu/", 6) == 0)
        return control_request(s, &req);
    return vendor_request(s, &req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload *u = *con_cls;
    if (!u) return;
    gp_str_clear(&u->body);
    free(u);
    *con_cls = NULL;
}

/* MHD's own errors (a TLS handshake that failed, say) go to stderr, one line each. The two
 * it prints for every reset, stall and truncated fault are ours, on purpose: not printed. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (strstr(msg, "Application reported internal error") ||
        strstr(msg, "application reported error generating data"))
        return;
    fprintf(stderr, "gp-emu: microhttpd: %s", msg);
}

static char *read_pem(const char *path, const char *what, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = gp_read_file(path, &len);
    if (!text) snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return text;
}

emu_server *emu_server_start(const emu_server_opts *o, emu_ctx *ctx, char *err, size_t errlen)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(o->port)};
    if (inet_pton(AF_INET, o->bind, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "--bind %s: not an IPv4 address", o->bind);
        return NULL;
    }
    emu_server *s = gp_xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (o->tls_cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "this libmicrohttpd has no TLS support");
            free(s);
            return NULL;
        }
        s->cert = read_pem(o->tls_cert, "--tls-cert", err, errlen);
        s->key = s->cert ? read_pem(o->tls_key, "--tls-key", err, errlen) : NULL;
        if (!s->key) {
            free(s->cert);
            free(s);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, s}, /* first, or MHD complains */
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_CONNECTION_TIMEOUT, 600, NULL},
        {s->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s:%u (bad TLS files, or the port is taken)",
                 o->bind, (unsigned)o->port);
        free(s->cert);
        free(s->key);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;
}

uint16_t emu_server_port(const emu_server *s)
{
    return s->port;
}

void emu_server_stop(emu_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s->cert);
    free(s->key);
    free(s);
}
