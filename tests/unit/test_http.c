/*
 * The HTTP client against a libmicrohttpd server on 127.0.0.1 (its own threads), driven by
 * the libev default loop until the expected callbacks fired, under a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ev.h>
#include <libgen.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "json.h"
#include "log.h"
#include "str.h"
#include "timer.h"
#include "timeutil.h"

/* ------------------------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------------------------- */

typedef struct server {
    struct MHD_Daemon *d;
    uint16_t port;
    atomic_int conns;        /* connections accepted (MHD's connection notification) */
    atomic_int slow_waiting; /* /slow handlers currently waiting */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int release; /* lets every /slow handler answer */
    /* the last request to /echo, under mu */
    char method[16], path[64], ctype[64], xreq[64];
    gp_str body;
} server;

static server srv, tls_srv;

typedef struct conn_req {
    gp_str body;
} conn_req;

typedef struct stream_state {
    int left;
} stream_state;

static void pause_ms(long ms)
{
    /* server-side pacing only: the client never waits on this */
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ssize_t stream_piece(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_state *st = cls;
    if (st->left <= 0) return MHD_CONTENT_READER_END_OF_STREAM;
    pause_ms(30);
    int n = snprintf(buf, max, "piece-%d\n", st->left--);
    return n;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body,
                               size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void wait_release(server *s)
{
    atomic_fetch_add(&s->slow_waiting, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10; /* a test that forgot to release still ends */
    pthread_mutex_lock(&s->mu);
    while (!s->release)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) break;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&s->slow_waiting, 1);
}

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_len, void **con_cls)
{
    (void)version;
    server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        *con_cls = gp_xcalloc(1, sizeof(conn_req));
        return MHD_YES;
    }
    if (*upload_len) {
        gp_str_append(&cr->body, upload, *upload_len);
        *upload_len = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/hello") == 0) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(11, (void *)"hello world", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "X-Test", "yes");
        MHD_add_response_header(r, "Set-Cookie", "a=1; Path=/");
        MHD_add_response_header(r, "Set-Cookie", "b=2");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/echo") == 0) {
        pthread_mutex_lock(&s->mu);
        copy_str(s->method, sizeof s->method, method);
        copy_str(s->path, sizeof s->path, url);
        copy_str(s->ctype, sizeof s->ctype,
                 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"));
        copy_str(s->xreq, sizeof s->xreq, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Req"));
        gp_str_reset(&s->body);
        gp_str_append(&s->body, gp_str_cstr(&cr->body), cr->body.len);
        pthread_mutex_unlock(&s->mu);
        return respond(c, 201, method, strlen(method));
    }
    if (strcmp(url, "/auth") == 0) {
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        return respond(c, 200, a ? a : "", a ? strlen(a) : 0);
    }
    if (strncmp(url, "/n/", 3) == 0) {
        char b[64];
        int n = snprintf(b, sizeof b, "n=%s", url + 3);
        return respond(c, 200, b, (size_t)n);
    }
    if (strcmp(url, "/slow") == 0) {
        wait_release(s); /* thread per connection: only this connection waits */
        return respond(c, 200, "late", 4);
    }
    if (strcmp(url, "/big") == 0) {
        static char big[100000];
        memset(big, 'x', sizeof big);
        return respond(c, 200, big, sizeof big);
    }
    if (strcmp(url, "/stream") == 0) {
        const char *n = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
        stream_state *st = gp_xcalloc(1, sizeof(*st));
        st->left = n ? atoi(n) : 5;
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_piece, st, free);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    return respond(c, 404, "no", 2);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    conn_req *cr = *con_cls;
    if (!cr) return;
    gp_str_clear(&cr->body);
    free(cr);
    *con_cls = NULL;
}

static void on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    (void)socket_context;
    server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&s->conns, 1);
}

static void server_start(server *s, const char *key, const char *cert)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (key) flags |= MHD_USE_TLS;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_CONNECTION, on_conn, s, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, key,
                            MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    assert_non_null(s->d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    s->port = info->port;
    assert_true(s->port > 0);
}

static void server_release(server *s)
{
    pthread_mutex_lock(&s->mu);
    s->release = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void server_stop(server *s)
{
    if (!s->d) return;
    server_release(s);
    MHD_stop_daemon(s->d);
    s->d = NULL;
    gp_str_clear(&s->body);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* ------------------------------------------------------------------------------------------
 * The client side
 * ---------------------------------------------------------------------------------------- */

static gp_http *h;
static int in_request; /* set around every gp_http_request */
static int violations; /* callbacks that ran inside gp_http_request */
static int n_done;     /* final callbacks so far */

/* A deep copy of one response. */
typedef struct got {
    int calls;
    int error;
    long status;
    char *body;
    size_t body_len;
    char *error_msg;
    char **headers;
    double elapsed;
} got;

static void got_clear(got *g)
{
    free(g->body);
    free(g->error_msg);
    for (size_t i = 0; g->headers && g->headers[i]; i++)
        free(g->headers[i]);
    free(g->headers);
    memset(g, 0, sizeof *g);
}

static void got_copy(got *g, const gp_http_resp *r)
{
    got_clear(g);
    g->calls = 1;
    g->error = r->error;
    g->status = r->status;
    g->body = gp_xmalloc(r->body_len + 1);
    memcpy(g->body, r->body, r->body_len + 1);
    g->body_len = r->body_len;
    g->error_msg = gp_xstrdup(r->error_msg);
    g->elapsed = r->elapsed_s;
    size_t n = 0;
    while (r->headers[n])
        n++;
    g->headers = gp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        g->headers[i] = gp_xstrdup(r->headers[i]);
}

static const char *got_header(const got *g, const char *name, unsigned idx)
{
    gp_http_resp r = {.size = sizeof r, .headers = (const char *const *)g->headers};
    return gp_http_header(&r, name, idx);
}

static void on_resp(void *ud, const gp_http_resp *r)
{
    if (in_request) violations++;
    got *g = ud;
    int calls = g->calls;
    got_copy(g, r);
    g->calls = calls + 1;
    n_done++;
}

static char *url(const char *path)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof buf[0], "http://127.0.0.1:%u%s", srv.port, path);
    return b;
}

static gp_http_req mkreq(const char *method, const char *u)
{
    gp_http_req r = {.size = sizeof r, .method = method, .url = u};
    return r;
}

static int start(const gp_http_opts *o, void *owner, const gp_http_req *r, gp_http_cb cb, void *ud)
{
    in_request = 1;
    int rc = gp_http_request(h, o, owner, r, cb, ud);
    in_request = 0;
    return rc;
}

static void get(const char *path, got *g)
{
    gp_http_req r = mkreq("GET", url(path));
    assert_int_equal(start(NULL, NULL, &r, on_resp, g), 0);
}

/* Run the loop until pred() holds; a deadline fails the test instead of hanging. */
static int deadline_hit;
static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    deadline_hit = 1;
    ev_break(loop, EVBREAK_ALL);
}
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static int want_done;
static int done_reached(void)
{
    return n_done >= want_done;
}

static void run_until(int (*pred)(void), double secs)
{
    ev_timer deadline, tick;
    deadline_hit = 0;
    ev_timer_init(&deadline, on_deadline, secs, 0.);
    ev_timer_start(gp_loop(), &deadline);
    /* wakes the loop to re-check conditions that server threads change */
    ev_timer_init(&tick, on_tick, 0.01, 0.01);
    ev_timer_start(gp_loop(), &tick);
    while (!pred() && !deadline_hit)
        ev_run(gp_loop(), EVRUN_ONCE);
    ev_timer_stop(gp_loop(), &deadline);
    ev_timer_stop(gp_loop(), &tick);
    assert_false(deadline_hit);
}

static void run_until_done(int n)
{
    want_done = n;
    run_until(done_reached, 10.0);
}

static int setup(void **state)
{
    (void)state;
    server_start(&srv, NULL, NULL);
    h = gp_http_new(gp_loop());
    assert_non_null(h);
    in_request = violations = n_done = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gp_http_free(h);
    h = NULL;
    server_stop(&srv);
    server_stop(&tls_srv);
    assert_int_equal(violations, 0);
    /* nothing of the client is left in the loop */
    assert_false(ev_run(gp_loop(), EVRUN_NOWAIT));
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Tests
 * ---------------------------------------------------------------------------------------- */

static void test_get_status_body_headers(void **state)
{
    (void)state;
    got g = {0};
    get("/hello", &g);
    assert_int_equal(g.calls, 0);
    run_until_done(1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.error, GP_HTTP_OK);
    assert_null(g.error_msg);
    assert_int_equal(g.status, 200);
    assert_string_equal(g.body, "hello world");
    assert_int_equal(g.body_len, 11);
    assert_true(g.elapsed > 0 && g.elapsed < 5);
    assert_string_equal(got_header(&g, "Set-Cookie", 0), "a=1; Path=/");
    assert_string_equal(got_header(&g, "set-cookie", 1), "b=2");
    assert_null(got_header(&g, "SET-COOKIE", 2));
    assert_string_equal(got_header(&g, "x-test", 0), "yes");
    assert_string_equal(got_header(&g, "content-length", 0), "11");
    assert_null(got_header(&g, "X-Tes", 0));
    assert_null(got_header(&g, "X-Missing", 0));
    for (size_t i = 0; g.headers[i]; i++) {
        assert_null(strchr(g.headers[i], '\r'));
        assert_null(strchr(g.headers[i], '\n'));
        assert_false(strncmp(g.headers[i], "HTTP/", 5) == 0);
    }
    got_clear(&g);
}

static void test_post_json_arrives_intact(void **state)
{
    (void)state;
    got g = {0};
    char body[] = "{\"a\":1,\"b\":\"x y\"}";
    const char *hdrs[] = {"Content-Type: application/json", "X-Req: 42", NULL};
    gp_http_req r = mkreq("POST", url("/echo"));
    r.headers = hdrs;
    r.body = body;
    r.body_len = strlen(body);
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), 0);
    memset(body, '#', sizeof body - 1); /* the client kept its own copy */
    run_until_done(1);
    assert_int_equal(g.error, GP_HTTP_OK);
    assert_int_equal(g.status, 201);
    assert_string_equal(srv.method, "POST");
    assert_string_equal(srv.path, "/echo");
    assert_string_equal(srv.ctype, "application/json");
    assert_string_equal(srv.xreq, "42");
    assert_string_equal(gp_str_cstr(&srv.body), "{\"a\":1,\"b\":\"x y\"}");
    got_clear(&g);
}

static void test_expect_continue_keeps_final_headers(void **state)
{
    (void)state;
    /* the server answers "100 Continue" first; only the final response's headers count */
    got g = {0};
    const char *hdrs[] = {"Expect: 100-continue", "Content-Type: text/plain", NULL};
    gp_http_req r = mkreq("POST", url("/echo"));
    r.headers = hdrs;
    r.body = "continued";
    r.body_len = 9;
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), 0);
    run_until_done(1);
    assert_int_equal(g.status, 201);
    assert_string_equal(gp_str_cstr(&srv.body), "continued");
    for (size_t i = 0; g.headers[i]; i++)
        assert_false(strncmp(g.headers[i], "HTTP/", 5) == 0);
    assert_string_equal(got_header(&g, "Content-Length", 0), "4");
    assert_null(got_header(&g, "Content-Length", 1));
    got_clear(&g);
}

/* Runs the requests with debug logging into a temporary file; returns the log text. */
static char *capture_debug_log(void (*fn)(void))
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_DEBUG);
    fn();
    gp_log_setup(GP_LOGFMT_TEXT, GP_LOG_INFO);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    gp_str text = {0};
    char buf[4096];
    size_t n;
    rewind(tmp);
    while ((n = fread(buf, 1, sizeof buf, tmp)) > 0)
        gp_str_append(&text, buf, n);
    fclose(tmp);
    gp_str_puts(&text, "");
    return text.data;
}

static void secret_requests(void)
{
    got g1 = {0}, g2 = {0};
    char u[128];
    snprintf(u, sizeof u, "http://alice:hunter22@127.0.0.1:%u/hello?token=abc123#frag", srv.port);
    gp_http_opts o = {.tls_verify = 1, .who = "logtest"};
    gp_http_req r = mkreq("GET", u);
    assert_int_equal(start(&o, NULL, &r, on_resp, &g1), 0);
    const char *hdrs[] = {"X-Api-Key: key-987", NULL};
    r = mkreq("POST", url("/echo?sig=zz9"));
    r.headers = hdrs;
    r.body = "body-secret";
    r.body_len = 11;
    r.user = "bob";
    r.password = "s3cr3t-pw";
    assert_int_equal(start(&o, NULL, &r, on_resp, &g2), 0);
    run_until_done(2);
    assert_int_equal(g1.status, 200);
    assert_int_equal(g2.status, 201);
    got_clear(&g1);
    got_clear(&g2);
}

static void test_debug_log_hides_secrets(void **state)
{
    (void)state;
    char *log = capture_debug_log(secret_requests);
    char want[128];
    snprintf(want, sizeof want, "logtest: GET http://127.0.0.1:%u/hello -> 200 in ", srv.port);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "logtest: POST http://127.0.0.1:%u/echo -> 201 in ", srv.port);
    assert_non_null(strstr(log, want));
    const char *never[] = {"alice", "hunter22", "token",       "abc123", "frag",
                           "zz9",   "key-987",  "body-secret", "bob",    "s3cr3t"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        if (strstr(log, never[i])) fail_msg("'%s' leaked into the log: %s", never[i], log);
    }
    free(log);
}

static void send_echo(const char *method, const char *body, got *g)
{
    gp_http_req r = mkreq(method, url("/echo"));
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    assert_int_equal(start(NULL, NULL, &r, on_resp, g), 0);
    run_until_done(n_done + 1);
    assert_int_equal(g->error, GP_HTTP_OK);
    assert_int_equal(g->status, 201);
    assert_string_equal(g->body, method);
    assert_string_equal(srv.method, method);
    assert_string_equal(gp_str_cstr(&srv.body), body ? body : "");
}

static void test_put_delete_patch(void **state)
{
    (void)state;
    got g = {0};
    send_echo("PUT", "v=1", &g);
    send_echo("DELETE", NULL, &g);
    send_echo("PATCH", "{\"p\":true}", &g);
    send_echo("PUT", NULL, &g);
    got_clear(&g);
}

static void test_basic_auth(void **state)
{
    (void)state;
    got g = {0};
    gp_http_req r = mkreq("GET", url("/auth"));
    r.user = "user";
    r.password = "pa:ss";
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), 0);
    run_until_done(1);
    assert_string_equal(g.body, "Basic dXNlcjpwYTpzcw=="); /* base64("user:pa:ss") */
    got_clear(&g);
}

static void test_sequential_requests_reuse_one_connection(void **state)
{
    (void)state;
    got g = {0};
    for (int i = 0; i < 10; i++) {
        get("/hello", &g);
        run_until_done(i + 1);
        assert_int_equal(g.status, 200);
    }
    assert_int_equal(gp_http_connects(h), 1);
    assert_int_equal(atomic_load(&srv.conns), 1);
    got_clear(&g);
}

static void test_concurrent_requests_complete(void **state)
{
    (void)state;
    got g[20] = {0};
    for (int i = 0; i < 20; i++) {
        char p[32];
        snprintf(p, sizeof p, "/n/%d", i);
        get(p, &g[i]);
    }
    assert_int_equal(gp_http_active(h), 20);
    run_until_done(20);
    assert_int_equal(gp_http_active(h), 0);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof want, "n=%d", i);
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].status, 200);
        assert_string_equal(g[i].body, want);
        got_clear(&g[i]);
    }
    long c = gp_http_connects(h);
    assert_true(c >= 1 && c <= 8); /* CURLMOPT_MAX_HOST_CONNECTIONS */
    assert_int_equal(atomic_load(&srv.conns), c);
}

static void test_timeout(void **state)
{
    (void)state;
    got g1 = {0}, g2 = {0};
    gp_http_req r = mkreq("GET", url("/slow"));
    r.timeout_s = 0.3;
    double t0 = gp_mono_s();
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g1), 0);
    /* no per-request timeout: the owner's default applies */
    gp_http_opts o = {.tls_verify = 1, .default_timeout_s = 0.2, .who = "slowpoke"};
    r.timeout_s = 0;
    assert_int_equal(start(&o, NULL, &r, on_resp, &g2), 0);
    run_until_done(2);
    double took = gp_mono_s() - t0;
    assert_int_equal(g1.error, GP_HTTP_TIMEOUT);
    assert_int_equal(g2.error, GP_HTTP_TIMEOUT);
    assert_non_null(g1.error_msg);
    assert_true(strlen(g1.error_msg) > 0);
    assert_true(g1.elapsed >= 0.3 && g1.elapsed < 1.3);
    assert_true(g2.elapsed >= 0.2 && g2.elapsed < g1.elapsed);
    assert_true(took < 1.3);
    got_clear(&g1);
    got_clear(&g2);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* A bound socket that does not listen: connecting to it is refused, and nothing else
     * can take the port meanwhile. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/x", ntohs(sa.sin_port));
    got g = {0};
    gp_http_req r = mkreq("GET", u);
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), 0);
    run_until_done(1);
    close(fd);
    assert_int_equal(g.error, GP_HTTP_CONNECT);
    assert_int_equal(g.status, 0);
    assert_non_null(g.error_msg);
    assert_true(strlen(g.error_msg) > 0);
    assert_string_equal(g.body, "");
    got_clear(&g);
}

/* The fixtures live beside the sources; __FILE__ is relative to the build root, so try it
 * from the working directory and the executable's directory and their parents. */
static char *fixture(const char *name)
{
    char src[] = __FILE__;
    gp_str rel = {0};
    gp_str_printf(&rel, "%s/../fixtures/tls/%s", dirname(src), name);
    if (rel.data[0] == '/') return rel.data;
    char cwd[PATH_MAX], exe[PATH_MAX];
    const char *bases[2] = {getcwd(cwd, sizeof cwd), NULL};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        bases[1] = dirname(exe);
    }
    for (int b = 0; b < 2; b++) {
        if (!bases[b]) continue;
        gp_str dir = {0};
        gp_str_puts(&dir, bases[b]);
        for (int up = 0; up < 5 && dir.len > 1; up++) {
            gp_str path = {0};
            gp_str_printf(&path, "%s/%s", dir.data, rel.data);
            if (access(path.data, R_OK) == 0) {
                gp_str_clear(&dir);
                gp_str_clear(&rel);
                return path.data;
            }
            gp_str_clear(&path);
            char *slash = strrchr(dir.data, '/');
            if (!slash) break;
            *slash = '\0';
            dir.len = (size_t)(slash - dir.data);
        }
        gp_str_clear(&dir);
    }
    fail_msg("fixture %s not found (looked for %s)", name, rel.data);
    return NULL;
}

static void test_tls_verification(void **state)
{
    (void)state;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) skip();
    char *ca = fixture("ca.pem"), *cert_path = fixture("server.pem"),
         *key_path = fixture("server.key");
    char *cert = gp_read_file(cert_path, NULL), *key = gp_read_file(key_path, NULL);
    assert_non_null(cert);
    assert_non_null(key);
    server_start(&tls_srv, key, cert);
    char u[64];
    snprintf(u, sizeof u, "https://127.0.0.1:%u/hello", tls_srv.port);
    gp_http_req r = mkreq("GET", u);

    got g[4] = {0};
    gp_http_opts strict = {.tls_verify = 1};
    gp_http_opts with_ca = {.tls_verify = 1, .ca_file = ca};
    gp_http_opts insecure = {.tls_verify = 0};
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g[0]), 0);
    assert_int_equal(start(&strict, NULL, &r, on_resp, &g[1]), 0);
    assert_int_equal(start(&with_ca, NULL, &r, on_resp, &g[2]), 0);
    assert_int_equal(start(&insecure, NULL, &r, on_resp, &g[3]), 0);
    run_until_done(4);
    assert_int_equal(g[0].error, GP_HTTP_TLS);
    assert_int_equal(g[1].error, GP_HTTP_TLS);
    assert_int_equal(g[0].status, 0);
    assert_non_null(g[0].error_msg);
    assert_int_equal(g[2].error, GP_HTTP_OK);
    assert_string_equal(g[2].body, "hello world");
    assert_int_equal(g[3].error, GP_HTTP_OK);
    assert_int_equal(g[3].status, 200);

    for (int i = 0; i < 4; i++)
        got_clear(&g[i]);
    free(cert);
    free(key);
    free(ca);
    free(cert_path);
    free(key_path);
}

/* ---- streaming ---- */

typedef struct stream {
    gp_str data;
    int chunks;
    int stop_at;     /* return non-zero from this chunk on (0: never) */
    int cancel_at;   /* cancel our own owner from inside this chunk (0: never) */
    int free_at;     /* free the whole client from inside this chunk (0: never) */
    int late_chunks; /* chunks after the final callback */
    got fin;
} stream;

static int on_chunk(void *ud, const char *data, size_t len)
{
    stream *s = ud;
    if (in_request) violations++;
    if (s->fin.calls) s->late_chunks++;
    s->chunks++;
    gp_str_append(&s->data, data, len);
    if (s->cancel_at && s->chunks == s->cancel_at) gp_http_cancel_owner(h, s);
    if (s->free_at && s->chunks == s->free_at) {
        gp_http_free(h);
        h = NULL;
    }
    return s->stop_at && s->chunks >= s->stop_at;
}

static void on_stream_done(void *ud, const gp_http_resp *r)
{
    stream *s = ud;
    on_resp(&s->fin, r);
}

static stream *watched;
static int chunk_seen(void)
{
    return watched->chunks > 0;
}

static void start_stream(stream *s, const char *path)
{
    gp_http_req r = mkreq("GET", url(path));
    r.on_chunk = on_chunk;
    watched = s;
    assert_int_equal(start(NULL, s, &r, on_stream_done, s), 0);
}

static void test_stream_delivers_chunks_in_order(void **state)
{
    (void)state;
    stream s = {0};
    start_stream(&s, "/stream?n=6");
    run_until_done(1);
    assert_int_equal(s.fin.calls, 1);
    assert_int_equal(s.fin.error, GP_HTTP_OK);
    assert_int_equal(s.fin.status, 200);
    assert_string_equal(s.fin.body, "");
    assert_int_equal(s.fin.body_len, 0);
    assert_string_equal(gp_str_cstr(&s.data),
                        "piece-6\npiece-5\npiece-4\npiece-3\npiece-2\npiece-1\n");
    assert_true(s.chunks >= 2); /* the pieces arrived over time */
    assert_int_equal(s.late_chunks, 0);
    gp_str_clear(&s.data);
    got_clear(&s.fin);
}

static void test_stream_abort_from_chunk(void **state)
{
    (void)state;
    stream s = {.stop_at = 1};
    start_stream(&s, "/stream?n=200");
    run_until_done(1);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.fin.error, GP_HTTP_ABORTED);
    assert_non_null(s.fin.error_msg);
    assert_int_equal(s.late_chunks, 0);
    gp_str_clear(&s.data);
    got_clear(&s.fin);
}

static void test_stream_cancelled_from_its_chunk(void **state)
{
    (void)state;
    stream s = {.cancel_at = 1};
    start_stream(&s, "/stream?n=200");
    run_until_done(1);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.fin.calls, 1);
    assert_int_equal(s.fin.error, GP_HTTP_ABORTED);
    assert_int_equal(gp_http_active(h), 0);
    /* the client still works */
    got g = {0};
    get("/hello", &g);
    run_until_done(2);
    assert_int_equal(g.status, 200);
    assert_int_equal(s.fin.calls, 1);
    gp_str_clear(&s.data);
    got_clear(&s.fin);
    got_clear(&g);
}

static void test_client_freed_from_chunk(void **state)
{
    (void)state;
    stream s = {.free_at = 1};
    got g = {0};
    gp_http_req slow = mkreq("GET", url("/slow"));
    assert_int_equal(start(NULL, NULL, &slow, on_resp, &g), 0);
    start_stream(&s, "/stream?n=200");
    run_until(chunk_seen, 10.0);
    assert_null(h);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.fin.calls, 0); /* freed: no callbacks at all */
    assert_int_equal(g.calls, 0);
    gp_str_clear(&s.data);
}

static void test_body_over_limit(void **state)
{
    (void)state;
    got g[3] = {0};
    gp_http_opts small = {.tls_verify = 1, .max_body = 1000};
    gp_http_req big = mkreq("GET", url("/big")); /* with a Content-Length */
    assert_int_equal(start(&small, NULL, &big, on_resp, &g[0]), 0);
    gp_http_req chunked = mkreq("GET", url("/stream?n=3")); /* without one */
    gp_http_opts tiny = {.tls_verify = 1, .max_body = 10};
    assert_int_equal(start(&tiny, NULL, &chunked, on_resp, &g[1]), 0);
    assert_int_equal(start(NULL, NULL, &big, on_resp, &g[2]), 0);
    run_until_done(3);
    assert_int_equal(g[0].error, GP_HTTP_TOO_LARGE);
    assert_non_null(strstr(g[0].error_msg, "1000"));
    assert_int_equal(g[1].error, GP_HTTP_TOO_LARGE);
    assert_int_equal(g[2].error, GP_HTTP_OK);
    assert_int_equal(g[2].body_len, 100000);
    for (int i = 0; i < 3; i++)
        got_clear(&g[i]);
}

/* ---- re-entrancy and lifetime ---- */

static void test_malformed_requests_refused(void **state)
{
    (void)state;
    got g = {0};
    gp_http_req r = mkreq("GET", NULL);
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("FETCH", url("/hello"));
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("get", url("/hello"));
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("GET", "ftp://127.0.0.1/x");
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("GET", "/relative");
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    const char *inject[] = {"X-A: 1\r\nX-B: 2", NULL};
    r = mkreq("GET", url("/hello"));
    r.headers = inject;
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("GET", url("/hello"));
    r.timeout_s = -1;
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    r = mkreq("POST", url("/hello"));
    r.body_len = 3;
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), -1);
    assert_int_equal(gp_http_active(h), 0);
    /* a GET that is fine after all these */
    get("/hello", &g);
    run_until_done(1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.status, 200);
    got_clear(&g);
}

static void test_setup_failure_reported_from_loop(void **state)
{
    (void)state;
    /* libcurl refuses strings over 8 MB in setopt: the request cannot start, yet the
     * callback still comes once, later, from the loop */
    size_t n = 9u << 20;
    char *user = gp_xmalloc(n + 1);
    memset(user, 'u', n);
    user[n] = '\0';
    got g = {0};
    gp_http_req r = mkreq("GET", url("/hello"));
    r.user = user;
    assert_int_equal(start(NULL, NULL, &r, on_resp, &g), 0);
    free(user);
    assert_int_equal(g.calls, 0);
    run_until_done(1);
    assert_int_equal(g.calls, 1);
    assert_int_not_equal(g.error, GP_HTTP_OK);
    assert_non_null(strstr(g.error_msg, "setup"));
    got_clear(&g);
}

static got chain_g[2];

static void on_first_then_chain(void *ud, const gp_http_resp *r)
{
    on_resp(ud, r);
    gp_http_req next = mkreq("GET", url("/n/2"));
    assert_int_equal(gp_http_request(h, NULL, NULL, &next, on_resp, &chain_g[1]), 0);
}

static void test_callback_starts_request(void **state)
{
    (void)state;
    gp_http_req r = mkreq("GET", url("/n/1"));
    assert_int_equal(start(NULL, NULL, &r, on_first_then_chain, &chain_g[0]), 0);
    run_until_done(2);
    assert_string_equal(chain_g[0].body, "n=1");
    assert_string_equal(chain_g[1].body, "n=2");
    got_clear(&chain_g[0]);
    got_clear(&chain_g[1]);
}

static int owner_a, owner_b;
static got again;

static int slow_waiting_3(void)
{
    return atomic_load(&srv.slow_waiting) >= 3;
}

static int retried;
/* A cancelled callback that starts a new request for the same owner: the cancel in
 * progress must leave it alone. */
static void on_abort_retry(void *ud, const gp_http_resp *r)
{
    on_resp(ud, r);
    if (retried++) return;
    gp_http_req next = mkreq("GET", url("/hello"));
    assert_int_equal(gp_http_request(h, NULL, &owner_a, &next, on_resp, &again), 0);
}

static void test_cancel_owner(void **state)
{
    (void)state;
    got a[3] = {0}, b[3] = {0};
    retried = 0;
    gp_http_req r = mkreq("GET", url("/slow"));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(start(NULL, &owner_a, &r, on_abort_retry, &a[i]), 0);
        assert_int_equal(start(NULL, &owner_b, &r, on_resp, &b[i]), 0);
    }
    /* cap 8 per host: all six are at the server before cancelling */
    want_done = 0;
    run_until(slow_waiting_3, 10.0);
    gp_http_cancel_owner(h, &owner_a);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 1); /* right away, not from the loop */
        assert_int_equal(a[i].error, GP_HTTP_ABORTED);
        assert_int_equal(b[i].calls, 0);
    }
    assert_int_equal(gp_http_active(h), 4); /* b's three + the retry */
    run_until_done(4);                      /* the retry to /hello */
    assert_int_equal(again.status, 200);
    server_release(&srv);
    run_until_done(7);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b[i].calls, 1);
        assert_int_equal(b[i].error, GP_HTTP_OK);
        assert_string_equal(b[i].body, "late");
        assert_int_equal(a[i].calls, 1);
        got_clear(&a[i]);
        got_clear(&b[i]);
    }
    got_clear(&again);
}

static void test_free_with_transfers_in_flight(void **state)
{
    (void)state;
    got g[3] = {0};
    stream s = {0};
    gp_http_req r = mkreq("POST", url("/slow"));
    r.body = "payload";
    r.body_len = 7;
    for (int i = 0; i < 3; i++)
        assert_int_equal(start(NULL, NULL, &r, on_resp, &g[i]), 0);
    start_stream(&s, "/stream?n=100");
    run_until(slow_waiting_3, 10.0);
    gp_http_free(h);
    h = NULL;
    for (int i = 0; i < 3; i++)
        assert_int_equal(g[i].calls, 0);
    assert_int_equal(s.fin.calls, 0);
    gp_str_clear(&s.data);
}

static gp_http *victim;
static got free_g[3];

static void on_free_client(void *ud, const gp_http_resp *r)
{
    on_resp(ud, r);
    gp_http_free(victim);
}

static void test_free_from_callback(void **state)
{
    (void)state;
    victim = h;
    gp_http_req slow = mkreq("GET", url("/slow"));
    gp_http_req hello = mkreq("GET", url("/hello"));
    assert_int_equal(start(NULL, NULL, &slow, on_resp, &free_g[0]), 0);
    assert_int_equal(start(NULL, NULL, &slow, on_resp, &free_g[1]), 0);
    assert_int_equal(start(NULL, NULL, &hello, on_free_client, &free_g[2]), 0);
    h = NULL; /* freed by the callback */
    run_until_done(1);
    assert_int_equal(free_g[2].calls, 1);
    assert_int_equal(free_g[0].calls, 0);
    assert_int_equal(free_g[1].calls, 0);
    for (int i = 0; i < 3; i++)
        got_clear(&free_g[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_status_body_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_json_arrives_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_delete_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue_keeps_final_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_log_hides_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_requests_reuse_one_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_requests_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_delivers_chunks_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_abort_from_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_cancelled_from_its_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_freed_from_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_failure_reported_from_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_starts_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_transfers_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
