/*
 * gp-emu --vendor huawei, tested from the outside: each test starts the built emulator as a
 * child process on an ephemeral loopback port (the port is read from its one line of stdout),
 * talks to it with libcurl and moves its emulated clock through the control API instead of
 * sleeping. With GP_EMU_VALGRIND=1 every emulator runs under valgrind and must exit 0 on
 * SIGTERM without leaks or memory errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define API "/rest/openapi/pvms/v1"
/* 2026-06-01T10:00:00Z: daylight, so PV, load and batteries all move. */
#define ANCHOR    "1780308000000"
#define ANCHOR_MS 1780308000000LL

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int under_valgrind(void)
{
    const char *v = getenv("GP_EMU_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

/* Time limits stretch under valgrind. */
static double slow(void)
{
    return under_valgrind() ? 20 : 1;
}

/* ---- the emulator process --------------------------------------------------------------- */

typedef struct emu {
    pid_t pid;
    int out; /* its stdout (after the first line) */
    int port;
    int tls;
    char base[64]; /* http(s)://127.0.0.1:PORT */
} emu;

/* Emulators still running when a test fails are killed by the teardown. */
static pid_t running[8];

static void track(pid_t pid, int on)
{
    for (size_t i = 0; i < 8; i++) {
        if (on && running[i] == 0) {
            running[i] = pid;
            return;
        }
        if (!on && running[i] == pid) {
            running[i] = 0;
            return;
        }
    }
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        if (!running[i]) continue;
        kill(running[i], SIGKILL);
        waitpid(running[i], NULL, 0);
        running[i] = 0;
    }
    return 0;
}

/* Read one line from fd within timeout_s; returns its length or -1. */
static int read_line(int fd, char *buf, size_t len, double timeout_s)
{
    size_t n = 0;
    double deadline = mono() + timeout_s;
    while (n + 1 < len) {
        int left = (int)((deadline - mono()) * 1000);
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0) continue;
        ssize_t got = read(fd, buf + n, 1);
        if (got <= 0) return -1;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

/* Start gp-emu with the given arguments (NULL-terminated, after the binary's own). Its stdout
 * and (when err_fd is not NULL) stderr come back through pipes. */
static pid_t spawn(const char *const *args, int *out_fd, int *err_fd)
{
    const char *argv[64];
    size_t n = 0;
    if (under_valgrind()) {
        argv[n++] = "valgrind";
        argv[n++] = "--quiet";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect";
        argv[n++] = "--error-exitcode=99";
    }
    argv[n++] = GP_EMU_BIN;
    for (size_t i = 0; args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    if (err_fd) assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    if (err_fd) {
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        posix_spawn_file_actions_addclose(&fa, err[0]);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    close(out[1]);
    *out_fd = out[0];
    if (err_fd) {
        close(err[1]);
        *err_fd = err[0];
    }
    return pid;
}

/* Start an emulator: --vendor huawei --port 0 --speed 0 --anchor ANCHOR, then `extra`. */
static void emu_start(emu *e, const char *const *extra)
{
    const char *args[48] = {"--vendor", "huawei", "--port",   "0",
                            "--speed",  "0",      "--anchor", ANCHOR};
    size_t n = 8;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    memset(e, 0, sizeof(*e));
    e->pid = spawn(args, &e->out, NULL);
    track(e->pid, 1);
    char line[200];
    int len = read_line(e->out, line, sizeof line, 10 * slow());
    assert_true(len > 0);
    const char *http = "gp-emu huawei listening on http://127.0.0.1:";
    const char *https = "gp-emu huawei listening on https://127.0.0.1:";
    if (strncmp(line, https, strlen(https)) == 0) {
        e->tls = 1;
        e->port = atoi(line + strlen(https));
    } else {
        assert_true(strncmp(line, http, strlen(http)) == 0);
        e->port = atoi(line + strlen(http));
    }
    assert_true(e->port > 0 && e->port < 65536);
    snprintf(e->base, sizeof e->base, "%s://127.0.0.1:%d", e->tls ? "https" : "http", e->port);
}

static int wait_exit(pid_t pid, double timeout_s)
{
    double deadline = mono() + timeout_s;
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (mono() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("gp-emu did not exit within %.0f s", timeout_s);
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL); /* polling a child's exit: there is no fd to wait on */
    }
    return status;
}

/* SIGTERM; it must exit 0 (under valgrind: without leaks or errors). */
static void emu_stop(emu *e)
{
    if (!e->pid) return;
    kill(e->pid, SIGTERM);
    int status = wait_exit(e->pid, 30 * slow());
    track(e->pid, 0);
    close(e->out);
    e->pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct res {
    CURLcode rc;
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char *headers;
    double secs;
} res;

static size_t grow(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = 0;
    return n;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    res *r = ud;
    return grow(&r->body, &r->len, data, size * n);
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    res *r = ud;
    size_t hl = r->headers ? strlen(r->headers) : 0;
    return grow(&r->headers, &hl, data, size * n);
}

static void res_free(res *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

/* One request; body NULL sends none. timeout_ms 0 means the default. */
static res http_t(const emu *e, const char *method, const char *path, const char *token,
                  const char *body, long timeout_ms)
{
    res r = {0};
    r.body = calloc(1, 1);
    char url[512], hdr[200];
    snprintf(url, sizeof url, "%s%s", e->base, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (token) {
        snprintf(hdr, sizeof hdr, "XSRF-TOKEN: %s", token);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : (long)(20000 * slow()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (e->tls) curl_easy_setopt(c, CURLOPT_CAINFO, GP_EMU_TLS_DIR "/ca.pem");
    double t0 = mono();
    r.rc = curl_easy_perform(c);
    r.secs = mono() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return r;
}

static res http(const emu *e, const char *method, const char *path, const char *token,
                const char *body)
{
    return http_t(e, method, path, token, body, 0);
}

/* A request that must succeed at the HTTP level with a JSON answer (cJSON_Delete it). */
static cJSON *call(const emu *e, const char *method, const char *path, const char *token,
                   const char *body)
{
    res r = http(e, method, path, token, body);
    if (r.rc != CURLE_OK) fail_msg("%s %s: %s", method, path, curl_easy_strerror(r.rc));
    cJSON *j = cJSON_Parse(r.body);
    if (!j) fail_msg("%s %s: not JSON: %.200s", method, path, r.body);
    res_free(&r);
    return j;
}

/* POST to a Huawei API; returns the parsed envelope. */
static cJSON *hw(const emu *e, const char *api, const char *token, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cJSON *hw(const emu *e, const char *api, const char *token, const char *fmt, ...)
{
    char body[16384], path[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, API "/%s", api);
    return call(e, "POST", path, token, body);
}

static int fail_code(const cJSON *j)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "failCode");
    assert_non_null(f);
    return (int)f->valuedouble;
}

/* The failCode of a call, the answer freed. */
static int hw_code(const emu *e, const char *api, const char *token, const char *body)
{
    cJSON *j = hw(e, api, token, "%s", body);
    int code = fail_code(j);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "success");
    assert_true(code == 0 ? cJSON_IsTrue(s) : cJSON_IsFalse(s));
    cJSON_Delete(j);
    return code;
}

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("no \"%s\" in the answer", key);
    return v;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("\"%s\" is not a number", key);
    return v->valuedouble;
}

static void advance(const emu *e, double seconds)
{
    char body[64];
    snprintf(body, sizeof body, "{\"advance_s\":%.3f}", seconds);
    cJSON_Delete(call(e, "POST", "/_emu/clock", NULL, body));
}

/* Log in and return the token (static buffer). The login quota is 1 per minute: this moves
 * the clock a minute first, so any test can call it again. */
static const char *login(const emu *e)
{
    static char token[200];
    advance(e, 61);
    res r =
        http(e, "POST", API "/login", NULL, "{\"username\":\"vpp\",\"password\":\"vpp-secret\"}");
    assert_int_equal(r.rc, CURLE_OK);
    assert_string_equal(r.body, "{\"success\":true,\"failCode\":0,\"message\":null}");
    const char *h = strstr(r.headers, "\nxsrf-token: ");
    assert_non_null(h);
    h += strlen("\nxsrf-token: ");
    size_t n = strcspn(h, "\r\n");
    assert_true(n > 2 && n < sizeof token);
    memcpy(token, h, n);
    token[n] = 0;
    res_free(&r);
    return token;
}

/* The emulator's view of one plant (cJSON_Delete the result; the plant is its first item). */
static cJSON *state_of(const emu *e, const char *code)
{
    char path[128];
    snprintf(path, sizeof path, "/_emu/state?plant=%s", code);
    cJSON *j = call(e, "GET", path, NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(get(j, "plants")), 1);
    return j;
}

static const cJSON *plant0(const cJSON *state)
{
    return cJSON_GetArrayItem(get(state, "plants"), 0);
}

/* The dataItemMap of the first plant of a plantRealtimeKpi answer. */
static const cJSON *kpi_map(const cJSON *j)
{
    assert_int_equal(fail_code(j), 0);
    return get(cJSON_GetArrayItem(get(j, "data"), 0), "dataItemMap");
}

/* A battery plant with at least min_cap Wh whose SoC is within [lo, hi], by code. */
static void pick_plant(const emu *e, double min_cap, double lo, double hi, char *code, size_t len)
{
    cJSON *j = call(e, "GET", "/_emu/state", NULL, NULL);
    const cJSON *p;
    cJSON_ArrayForEach(p, get(j, "plants"))
    {
        if (!cJSON_IsTrue(get(p, "has_battery")) || num(p, "capacity_wh") < min_cap) continue;
        double soc = num(p, "soc_pct");
        if (soc < lo || soc > hi) continue;
        snprintf(code, len, "%s", cJSON_GetStringValue(get(p, "code")));
        cJSON_Delete(j);
        return;
    }
    cJSON_Delete(j);
    fail_msg("no battery plant of >= %.0f Wh with SoC in [%.0f, %.0f]", min_cap, lo, hi);
}

/* The status entry of a task's only plant. */
static cJSON *task_status(const emu *e, const char *token, const char *rid, int *status,
                          double *kwh)
{
    cJSON *j = hw(e, "vpp/chargeAndDischargeStatus", token, "{\"requestID\":%s}", rid);
    assert_int_equal(fail_code(j), 0);
    const cJSON *s = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_non_null(s);
    *status = (int)num(s, "status");
    const cJSON *c = get(s, "chargedCapacity");
    const cJSON *d = get(s, "dischargedCapacity");
    *kwh = cJSON_IsNumber(c) ? c->valuedouble : cJSON_IsNumber(d) ? d->valuedouble : NAN;
    return j;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_login_token_cookie(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    res r =
        http(&e, "POST", API "/login", NULL, "{\"username\":\"vpp\",\"password\":\"vpp-secret\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"success\":true,\"failCode\":0,\"message\":null}");
    const char *h = strstr(r.headers, "\nxsrf-token: ");
    assert_non_null(h);
    char token[200];
    size_t n = strcspn(h + 13, "\r\n");
    memcpy(token, h + 13, n);
    token[n] = 0;
    assert_true(strncmp(token, "x-", 2) == 0 && n == 98);
    /* One set-cookie header with the session and the same token, as in the document. */
    char cookie[300];
    snprintf(cookie, sizeof cookie, "HttpOnly, XSRF-TOKEN=%s\r\n", token);
    assert_non_null(strstr(r.headers, "\nset-cookie: JSESSIONID="));
    assert_non_null(strstr(r.headers, cookie));
    res_free(&r);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", token, "{\"plantCodes\":\"NE=33000001\"}"),
                     0);

    /* One login per minute per account; the refused call counts too. */
    assert_int_equal(
        hw_code(&e, "login", NULL, "{\"username\":\"vpp\",\"password\":\"vpp-secret\"}"), 407);
    advance(&e, 61);
    assert_int_equal(hw_code(&e, "login", NULL, "{\"username\":\"vpp\",\"password\":\"nope\"}"),
                     20400);
    advance(&e, 61);
    assert_int_equal(
        hw_code(&e, "login", NULL, "{\"username\":\"who\",\"password\":\"vpp-secret\"}"), 20001);
    advance(&e, 61);
    /* The older spelling of the fields works too. */
    assert_int_equal(
        hw_code(&e, "login", NULL, "{\"userName\":\"vpp\",\"systemCode\":\"vpp-secret\"}"), 0);
    /* A body that is not JSON: 400 with the envelope. */
    advance(&e, 61);
    r = http(&e, "POST", API "/login", NULL, "username=vpp");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"success\":false"));
    res_free(&r);
    emu_stop(&e);
}

static void test_token_required(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *kpi = "{\"plantCodes\":\"NE=33000001\"}";
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", NULL, kpi), 305);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", "x-not-a-token", kpi), 305);
    assert_int_equal(hw_code(&e, "plants", NULL, "{\"pageNo\":1,\"pageSize\":10}"), 305);
    const char *tok = login(&e);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    /* Logout ends the session. */
    char body[300];
    snprintf(body, sizeof body, "{\"xsrftoken\":\"%s\"}", tok);
    assert_int_equal(hw_code(&e, "logout", tok, body), 0);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 305);
    emu_stop(&e);
}

static void test_idle_expiry(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *kpi = "{\"plantCodes\":\"NE=33000001\"}";
    const char *tok = login(&e);
    /* Each use restarts the 30 idle minutes. */
    advance(&e, 29 * 60);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    advance(&e, 29 * 60);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    advance(&e, 30 * 60 + 1);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 305);
    /* And the control API can end every session at once. */
    tok = login(&e);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    cJSON *j = call(&e, "POST", "/_emu/tokens/expire", NULL, "{}");
    assert_int_equal((int)num(j, "expired"), 1);
    cJSON_Delete(j);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 305);
    emu_stop(&e);
}

static void test_quota_407(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    const char *kpi = "{\"plantCodes\":\"NE=33000001,NE=33000002\"}";
    for (int i = 0; i < 10; i++)
        assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 407);
    /* Other APIs have their own quota. */
    assert_int_equal(hw_code(&e, "devices", tok,
                             "{\"plantCodes\":\"NE=33000001\",\"pageNo\":1,\"pageSize\":10}"),
                     0);
    /* Still inside the window (the 407 counted as an access): refused. */
    advance(&e, 59);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 407);
    /* A minute after the burst the window has room again. */
    advance(&e, 1.5);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
    cJSON *j = call(&e, "GET", "/_emu/stats", NULL, NULL);
    const cJSON *k = get(get(j, "apis"), "plantRealtimeKpi");
    assert_int_equal((int)num(k, "calls"), 13);
    assert_int_equal((int)num(k, "limited"), 2);
    assert_int_equal((int)num(k, "failures"), 0);
    cJSON_Delete(j);
    emu_stop(&e);
}

/* Ten refused calls in a minute keep the next minute refused, unless refused calls are not
 * counted (--set quota_counts_refused=0). */
static void test_quota_refused_calls(void **state)
{
    (void)state;
    for (int counted = 1; counted >= 0; counted--) {
        emu e;
        const char *strict[] = {NULL};
        const char *lenient[] = {"--set", "quota_counts_refused=0", NULL};
        emu_start(&e, counted ? strict : lenient);
        const char *tok = login(&e);
        const char *kpi = "{\"plantCodes\":\"NE=33000001\"}";
        for (int i = 0; i < 10; i++)
            assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 0);
        advance(&e, 30);
        for (int i = 0; i < 10; i++)
            assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), 407);
        advance(&e, 31);
        assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, kpi), counted ? 407 : 0);
        emu_stop(&e);
    }
}

static void test_paging_250(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--plants", "250", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    int seen = 0;
    for (int page = 1; page <= 4; page++) {
        cJSON *j = hw(&e, "plants", tok, "{\"pageNo\":%d,\"pageSize\":100}", page);
        assert_int_equal(fail_code(j), 0);
        const cJSON *d = get(j, "data");
        assert_int_equal((int)num(d, "total"), 250);
        assert_int_equal((int)num(d, "pageCount"), 3);
        assert_int_equal((int)num(d, "pageNo"), page);
        assert_int_equal((int)num(d, "pageSize"), 100);
        const cJSON *p;
        int n = 0;
        cJSON_ArrayForEach(p, get(d, "list"))
        {
            char want[16];
            snprintf(want, sizeof want, "NE=%d", 33000001 + seen);
            assert_string_equal(cJSON_GetStringValue(get(p, "plantCode")), want);
            assert_true(num(p, "capacity") >= 3 && num(p, "capacity") <= 10);
            n++;
            seen++;
        }
        assert_int_equal(n, page < 3 ? 100 : page == 3 ? 50 : 0);
        cJSON_Delete(j);
        advance(&e, 61); /* plants: one call per minute */
    }
    assert_int_equal(seen, 250);
    assert_int_equal(hw_code(&e, "plants", tok, "{\"pageNo\":1,\"pageSize\":15}"), 30006);
    advance(&e, 61);
    assert_int_equal(hw_code(&e, "plants", tok, "{\"pageSize\":10}"), 30004);
    advance(&e, 61);
    assert_int_equal(hw_code(&e, "plants", tok, "{\"pageNo\":0,\"pageSize\":10}"), 30021);
    advance(&e, 61);
    assert_int_equal(hw_code(&e, "plants", tok, "{\"pageNo\":1}"), 30005);
    advance(&e, 61);
    /* devices: 2 per battery plant, paged the same way. */
    cJSON *j = hw(&e, "devices", tok,
                  "{\"plantCodes\":\"NE=33000001,NE=33000002\",\"pageNo\":1,\"pageSize\":10,"
                  "\"deviceTypeId\":20815}");
    assert_int_equal(fail_code(j), 0);
    const cJSON *d = get(j, "data");
    assert_int_equal((int)num(d, "total"), 2);
    const cJSON *b = cJSON_GetArrayItem(get(d, "list"), 0);
    assert_int_equal((int)num(b, "deviceTypeId"), 20815);
    assert_string_equal(cJSON_GetStringValue(get(b, "dn")), "NE=35000001");
    const cJSON *m = get(b, "dataItemMap");
    assert_true(num(m, "ratedCapacity") >= 5);
    assert_int_equal((int)num(m, "dod"), 90);
    cJSON_Delete(j);
    emu_stop(&e);
}

/* "NE=33000001,...": n codes from the first. */
static void codes(char *buf, size_t len, int n)
{
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, len - off, "%sNE=%d", i ? "," : "", 33000001 + i);
}

static void test_101_plants(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--plants", "150", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    char list[2000], body[2400];
    codes(list, sizeof list, 101);
    snprintf(body, sizeof body, "{\"plantCodes\":\"%s\"}", list);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, body), 20015);
    snprintf(body, sizeof body,
             "{\"plantCodes\":\"%s\",\"dispatchSwitch\":1,\"controlType\":2,\"dispatchTime\":10,"
             "\"requestID\":1}",
             list);
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok, body), 20015);
    snprintf(body, sizeof body, "{\"plantCodes\":\"%s\",\"pageNo\":1,\"pageSize\":100}", list);
    assert_int_equal(hw_code(&e, "devices", tok, body), 20015);
    /* 100 is fine. */
    codes(list, sizeof list, 100);
    snprintf(body, sizeof body, "{\"plantCodes\":\"%s\"}", list);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, body), 0);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=1\"}"), 20007);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"\"}"), 20010);
    emu_stop(&e);
}

static void test_dispatch_checks(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--set", "no_soc_control_every=5", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        {"{\"dispatchSwitch\":1,\"controlType\":2,\"dispatchTime\":10,\"requestID\":1}", 20010},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":3,\"controlType\":2,"
         "\"dispatchTime\":10,\"requestID\":1}",
         20040},
        {"{\"plantCodes\":\"NE=33000001\",\"controlType\":2,\"dispatchTime\":10,"
         "\"requestID\":1}",
         20040},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"dispatchTime\":10,"
         "\"requestID\":1}",
         20041},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":7,"
         "\"requestID\":1}",
         20040},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":1,"
         "\"requestID\":1}",
         20042},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":1,"
         "\"targetSOC\":101,\"requestID\":1}",
         20042},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"requestID\":1}",
         20043},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":1441,\"requestID\":1}",
         20043},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10}",
         20044},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10,\"requestID\":\"abc\"}",
         20044},
        {"{\"plantCodes\":\"NE=33000001,NE=44\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10,\"requestID\":1}",
         20045},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10,\"powerDispatch\":-3000,\"requestID\":1}",
         20047},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":2,\"controlType\":2,"
         "\"dispatchTime\":10,\"powerDispatch\":3000,\"requestID\":1}",
         20047},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10,\"powerDispatch\":0,\"requestID\":1}",
         20047},
        {"{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
         "\"dispatchTime\":10,\"powerDispatch\":12.5,\"requestID\":1}",
         20047},
        /* Plant 5 needs a firmware update for SoC control (no_soc_control_every=5). */
        {"{\"plantCodes\":\"NE=33000001,NE=33000005\",\"dispatchSwitch\":1,\"controlType\":1,"
         "\"targetSOC\":90,\"requestID\":1}",
         20053},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = hw_code(&e, "vpp/chargeAndDischarge", tok, cases[i].body);
        if (code != cases[i].code)
            fail_msg("case %zu: failCode %d, want %d (%s)", i, code, cases[i].code, cases[i].body);
    }
    /* None of the refused requests was recorded: requestID 1 is still free, once. */
    const char *ok = "{\"plantCodes\":\"NE=33000001\",\"dispatchSwitch\":1,\"controlType\":2,"
                     "\"dispatchTime\":10,\"requestID\":1}";
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok, ok), 0);
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok, ok), 20048);
    /* The same ID as a string is the same ID. */
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok,
                             "{\"plantCodes\":\"NE=33000002\",\"dispatchSwitch\":0,"
                             "\"requestID\":\"0001\"}"),
                     20048);
    /* Status: unknown and missing IDs. */
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischargeStatus", tok, "{\"requestID\":42}"), 20050);
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischargeStatus", tok, "{}"), 20044);
    emu_stop(&e);
}

static void test_duration_task(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    char code[16];
    pick_plant(&e, 10000, 0, 70, code, sizeof code);
    cJSON *j = hw(&e, "vpp/chargeAndDischarge", tok,
                  "{\"plantCodes\":\"%s\",\"controlType\":2,\"dispatchTime\":10,"
                  "\"dispatchSwitch\":1,\"powerDispatch\":3000,\"requestID\":432523532523}",
                  code);
    assert_int_equal(fail_code(j), 0);
    const cJSON *d = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_string_equal(cJSON_GetStringValue(get(d, "plantCode")), code);
    assert_int_equal((int)num(d, "dispatchResult"), 0);
    assert_non_null(cJSON_GetStringValue(get(d, "remoteID")));
    cJSON_Delete(j);
    cJSON *st = state_of(&e, code);
    assert_string_equal(cJSON_GetStringValue(get(plant0(st), "mode")), "forced");
    assert_true(num(plant0(st), "setpoint_w") == -3000);
    cJSON_Delete(st);

    int status;
    double kwh;
    const char *rid = "432523532523";
    cJSON_Delete(task_status(&e, tok, rid, &status, &kwh));
    assert_int_equal(status, 1);
    assert_true(kwh == 0);
    /* Refreshed every 3 minutes: at 4 min the 3-minute figure (3 kW for 3 min = 0.15 kWh). */
    advance(&e, 240);
    cJSON_Delete(task_status(&e, tok, rid, &status, &kwh));
    assert_int_equal(status, 1);
    assert_true(fabs(kwh - 0.15) < 1e-9);
    /* At 11 min the duration is over but the last refresh (9 min) saw it running. */
    advance(&e, 420);
    j = task_status(&e, tok, rid, &status, &kwh);
    assert_int_equal(status, 1);
    assert_true(fabs(kwh - 0.45) < 1e-9);
    assert_true(cJSON_IsNull(get(cJSON_GetArrayItem(get(j, "data"), 0), "execEndTime")));
    cJSON_Delete(j);
    st = state_of(&e, code);
    assert_string_equal(cJSON_GetStringValue(get(plant0(st), "mode")), "self");
    cJSON_Delete(st);
    /* The 12-minute refresh reports it complete: 10 minutes at 3 kW. */
    advance(&e, 60);
    j = task_status(&e, tok, rid, &status, &kwh);
    assert_int_equal(status, 0);
    assert_true(fabs(kwh - 0.5) < 1e-9);
    const cJSON *s0 = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_string_equal(cJSON_GetStringValue(get(s0, "execStartTime")),
                        "2026-06-01T10:01:01+00:00");
    assert_string_equal(cJSON_GetStringValue(get(s0, "execEndTime")), "2026-06-01T10:11:01+00:00");
    assert_true(cJSON_IsNull(get(s0, "dischargedCapacity")));
    cJSON_Delete(j);
    emu_stop(&e);
}

static void test_soc_task(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    char code[16];
    pick_plant(&e, 10000, 20, 70, code, sizeof code);
    cJSON *st = state_of(&e, code);
    double soc0 = num(plant0(st), "soc_pct"), cap = num(plant0(st), "capacity_wh");
    cJSON_Delete(st);
    double target = floor(soc0) + 20;
    cJSON *j = hw(&e, "vpp/chargeAndDischarge", tok,
                  "{\"plantCodes\":\"%s\",\"controlType\":1,\"targetSOC\":%.0f,"
                  "\"dispatchSwitch\":1,\"powerDispatch\":4000,\"requestID\":7}",
                  code, target);
    assert_int_equal(fail_code(j), 0);
    cJSON_Delete(j);
    /* Stored energy rises by P * 0.95 per hour: the target is (target - soc0) % away. */
    double stored = (target - soc0) / 100 * cap;
    double hours = stored / (4000 * 0.95);
    int status;
    double kwh;
    advance(&e, hours * 3600 - 200 - 61); /* before the end, past some refresh */
    tok = login(&e);                      /* the session idled out meanwhile */
    cJSON_Delete(task_status(&e, tok, "7", &status, &kwh));
    assert_int_equal(status, 1);
    assert_true(kwh > 0 && kwh < stored / 0.95 / 1000);
    advance(&e, 200 + 180); /* past the end and the refresh after it */
    cJSON_Delete(task_status(&e, tok, "7", &status, &kwh));
    assert_int_equal(status, 0);
    /* The AC energy that went in: the stored energy over the efficiency. */
    assert_true(fabs(kwh - stored / 0.95 / 1000) < 0.002);
    st = state_of(&e, code);
    assert_string_equal(cJSON_GetStringValue(get(plant0(st), "mode")), "self");
    cJSON_Delete(st);
    cJSON *all = call(&e, "GET", "/_emu/state", NULL, NULL);
    const cJSON *t = cJSON_GetArrayItem(get(all, "tasks"), 0);
    const cJSON *sub = cJSON_GetArrayItem(get(t, "plants"), 0);
    double end_ms = num(sub, "end_ms");
    assert_true(fabs((end_ms - num(t, "start_ms")) / 3600000.0 - hours) < 0.001);
    cJSON_Delete(all);
    emu_stop(&e);
}

static void test_timeout_24h(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    /* Discharging to 5 % never gets there: the DoD of 90 % stops it at 10 %. */
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok,
                             "{\"plantCodes\":\"NE=33000001\",\"controlType\":1,\"targetSOC\":5,"
                             "\"dispatchSwitch\":2,\"requestID\":99}"),
                     0);
    int status;
    double kwh;
    advance(&e, 24 * 3600 - 120 - 61);
    tok = login(&e); /* the session idled out meanwhile */
    cJSON_Delete(task_status(&e, tok, "99", &status, &kwh));
    assert_int_equal(status, 1);
    assert_true(kwh > 0);
    cJSON *st = state_of(&e, "NE=33000001");
    assert_true(fabs(num(plant0(st), "soc_pct") - 10) < 0.01);
    cJSON_Delete(st);
    advance(&e, 180);
    cJSON *j = task_status(&e, tok, "99", &status, &kwh);
    assert_int_equal(status, 2);
    const cJSON *s0 = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_true(cJSON_IsNull(get(s0, "execEndTime")));
    assert_true(cJSON_IsNull(get(s0, "chargedCapacity")));
    assert_true(cJSON_IsNumber(get(s0, "dischargedCapacity")));
    cJSON_Delete(j);
    st = state_of(&e, "NE=33000001");
    assert_string_equal(cJSON_GetStringValue(get(plant0(st), "mode")), "self");
    cJSON_Delete(st);
    emu_stop(&e);
}

static void test_replace_and_stop(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    const char *a = "{\"plantCodes\":\"NE=33000002\",\"controlType\":2,\"dispatchTime\":600,"
                    "\"dispatchSwitch\":2,\"requestID\":11}";
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok, a), 0);
    advance(&e, 60);
    /* A second task on the same plant replaces the first, which ends there (status 0). */
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok,
                             "{\"plantCodes\":\"NE=33000002\",\"controlType\":2,"
                             "\"dispatchTime\":600,\"dispatchSwitch\":1,\"requestID\":12}"),
                     0);
    cJSON *st = state_of(&e, "NE=33000002");
    assert_string_equal(cJSON_GetStringValue(get(get(plant0(st), "task"), "requestID")), "12");
    const cJSON *t11 = cJSON_GetArrayItem(get(st, "tasks"), 0);
    assert_string_equal(cJSON_GetStringValue(get(t11, "requestID")), "11");
    const cJSON *sub = cJSON_GetArrayItem(get(t11, "plants"), 0);
    assert_true(cJSON_IsTrue(get(sub, "replaced")));
    assert_int_equal((int)num(sub, "status"), 0);
    cJSON_Delete(st);
    advance(&e, 180);
    int status;
    double kwh;
    cJSON_Delete(task_status(&e, tok, "11", &status, &kwh));
    assert_int_equal(status, 0);
    /* Stop: the plant goes back to self mode and task 12 ends. */
    assert_int_equal(hw_code(&e, "vpp/chargeAndDischarge", tok,
                             "{\"plantCodes\":\"NE=33000002\",\"dispatchSwitch\":0,"
                             "\"requestID\":13}"),
                     0);
    st = state_of(&e, "NE=33000002");
    assert_string_equal(cJSON_GetStringValue(get(plant0(st), "mode")), "self");
    assert_true(cJSON_IsNull(get(plant0(st), "task")));
    cJSON_Delete(st);
    advance(&e, 180);
    cJSON_Delete(task_status(&e, tok, "12", &status, &kwh));
    assert_int_equal(status, 0);
    cJSON *j = task_status(&e, tok, "13", &status, &kwh);
    assert_int_equal(status, 0);
    assert_true(isnan(kwh)); /* a stop moves no energy: both capacities null */
    cJSON_Delete(j);
    emu_stop(&e);
}

static void test_pv_only_plants(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--batteries-every", "3", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    cJSON *j = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=33000003\"}");
    const cJSON *m = kpi_map(j);
    assert_true(cJSON_IsNull(get(m, "batterySOC")));
    assert_true(cJSON_IsNull(get(m, "batteryDOD")));
    assert_true(num(m, "batteryPower") == 0);
    cJSON_Delete(j);
    j = hw(&e, "devices", tok, "{\"plantCodes\":\"NE=33000003\",\"pageNo\":1,\"pageSize\":10}");
    assert_int_equal((int)num(get(j, "data"), "total"), 1);
    cJSON_Delete(j);
    j = hw(&e, "vpp/chargeAndDischarge", tok,
           "{\"plantCodes\":\"NE=33000002,NE=33000003\",\"controlType\":2,\"dispatchTime\":30,"
           "\"dispatchSwitch\":1,\"requestID\":5}");
    assert_int_equal(fail_code(j), 0);
    const cJSON *r1 = cJSON_GetArrayItem(get(j, "data"), 1);
    assert_int_equal((int)num(r1, "dispatchResult"), 1);
    assert_true(cJSON_IsNull(get(r1, "remoteID")));
    cJSON_Delete(j);
    j = hw(&e, "vpp/chargeAndDischargeStatus", tok, "{\"requestID\":5}");
    assert_int_equal(cJSON_GetArraySize(get(j, "data")), 1); /* only the delivered plant */
    cJSON_Delete(j);
    emu_stop(&e);
}

static void test_dod_effects(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    cJSON *j = hw(&e, "vpp/dod", tok, "{\"dns\":\"NE=35000001,NE=34000001\",\"dod\":85}");
    assert_int_equal(fail_code(j), 0);
    const cJSON *r0 = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_string_equal(cJSON_GetStringValue(get(r0, "dn")), "NE=35000001");
    assert_int_equal((int)num(r0, "result"), 0);
    assert_int_equal((int)num(r0, "setDOD"), 85);
    const cJSON *r1 = cJSON_GetArrayItem(get(j, "data"), 1);
    assert_int_equal((int)num(r1, "result"), 1); /* an inverter has no DoD */
    cJSON_Delete(j);
    cJSON *st = state_of(&e, "NE=33000001");
    assert_true(num(plant0(st), "soc_min_pct") == 15);
    assert_int_equal((int)num(plant0(st), "dod"), 85);
    cJSON_Delete(st);
    /* plantRealtimeKpi shows it from the next 5-minute refresh. */
    advance(&e, 300);
    j = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=33000001\"}");
    assert_true(num(kpi_map(j), "batteryDOD") == 85);
    cJSON_Delete(j);
    /* Out of the battery's range: the closest allowed value. */
    j = hw(&e, "vpp/dod", tok, "{\"dns\":\"NE=35000001\",\"dod\":50}");
    assert_int_equal((int)num(cJSON_GetArrayItem(get(j, "data"), 0), "setDOD"), 80);
    cJSON_Delete(j);
    assert_int_equal(hw_code(&e, "vpp/dod", tok, "{\"dns\":\"NE=35000001\",\"dod\":101}"), 20039);
    assert_int_equal(hw_code(&e, "vpp/dod", tok, "{\"dns\":\"NE=35000001\"}"), 20039);
    assert_int_equal(hw_code(&e, "vpp/dod", tok, "{\"dns\":\"NE=99\",\"dod\":90}"), 20046);
    assert_int_equal(hw_code(&e, "vpp/dod", tok, "{\"dod\":90}"), 20011);
    char list[2000], body[2400];
    size_t off = 0;
    for (int i = 0; i < 101; i++)
        off +=
            (size_t)snprintf(list + off, sizeof list - off, "%sNE=%d", i ? "," : "", 35000001 + i);
    snprintf(body, sizeof body, "{\"dns\":\"%s\",\"dod\":90}", list);
    assert_int_equal(hw_code(&e, "vpp/dod", tok, body), 20017);
    emu_stop(&e);
}

static void test_devonoff_effects(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    cJSON *j =
        hw(&e, "vpp/devOnOff", tok, "{\"dns\":\"NE=34000001,NE=35000001\",\"controlType\":2}");
    assert_int_equal(fail_code(j), 0);
    assert_int_equal((int)num(cJSON_GetArrayItem(get(j, "data"), 0), "result"), 0);
    assert_int_equal((int)num(cJSON_GetArrayItem(get(j, "data"), 1), "result"), 1);
    cJSON_Delete(j);
    cJSON *st = state_of(&e, "NE=33000001");
    assert_true(cJSON_IsFalse(get(plant0(st), "inverter_on")));
    cJSON_Delete(st);
    advance(&e, 300);
    j = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=33000001\"}");
    const cJSON *m = kpi_map(j);
    assert_true(num(m, "pvPower") == 0);
    assert_true(num(m, "batteryPower") == 0);
    assert_true(num(m, "loadPower") > 0);
    assert_true(num(m, "meterPower") == -num(m, "loadPower")); /* all from the grid */
    cJSON_Delete(j);
    assert_int_equal(
        hw_code(&e, "vpp/devOnOff", tok, "{\"dns\":\"NE=34000001\",\"controlType\":1}"), 0);
    st = state_of(&e, "NE=33000001");
    assert_true(cJSON_IsTrue(get(plant0(st), "inverter_on")));
    cJSON_Delete(st);
    assert_int_equal(
        hw_code(&e, "vpp/devOnOff", tok, "{\"dns\":\"NE=34000001\",\"controlType\":3}"), 20019);
    assert_int_equal(
        hw_code(&e, "vpp/devOnOff", tok, "{\"dns\":\"NE=34000099\",\"controlType\":1}"), 20046);
    emu_stop(&e);
}

static void add_fault(const emu *e, const char *rule)
{
    res r = http(e, "POST", "/_emu/faults", NULL, rule);
    assert_int_equal(r.status, 200);
    res_free(&r);
}

static void test_faults(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    const char *kpi_path = API "/vpp/plantRealtimeKpi";
    const char *kpi = "{\"plantCodes\":\"NE=33000001\"}";
    char tokbuf[200];
    snprintf(tokbuf, sizeof tokbuf, "%s", tok);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"latency\",\"ms\":300}");
    res r = http(&e, "POST", kpi_path, tokbuf, kpi);
    assert_int_equal(r.rc, CURLE_OK);
    assert_true(r.secs >= 0.29);
    assert_non_null(strstr(r.body, "\"failCode\":0"));
    res_free(&r);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"http_status\",\"status\":502}");
    r = http(&e, "POST", kpi_path, tokbuf, kpi);
    assert_int_equal(r.status, 502);
    assert_null(strstr(r.body, "failCode"));
    res_free(&r);

    add_fault(&e, "{\"path\":\"*\",\"kind\":\"failcode\",\"failcode\":20004}");
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tokbuf, kpi), 20004);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"reset\"}");
    r = http(&e, "POST", kpi_path, tokbuf, kpi);
    assert_true(r.rc == CURLE_GOT_NOTHING || r.rc == CURLE_RECV_ERROR || r.rc == CURLE_SEND_ERROR);
    res_free(&r);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"malformed\"}");
    r = http(&e, "POST", kpi_path, tokbuf, kpi);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    cJSON *bad = cJSON_Parse(r.body);
    assert_null(bad);
    res_free(&r);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"truncated\"}");
    r = http(&e, "POST", kpi_path, tokbuf, kpi);
    assert_true(r.rc == CURLE_PARTIAL_FILE || r.rc == CURLE_RECV_ERROR);
    res_free(&r);

    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"stall\",\"ms\":3000}");
    r = http_t(&e, "POST", kpi_path, tokbuf, kpi, 400);
    assert_int_equal(r.rc, CURLE_OPERATION_TIMEDOUT);
    res_free(&r);

    /* Every rule was used up: the API answers again. */
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tokbuf, kpi), 0);

    /* A rule for one path leaves the others alone; count 0 lasts until cleared. */
    add_fault(&e, "{\"path\":\"devices\",\"kind\":\"failcode\",\"failcode\":401,\"count\":0}");
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tokbuf, kpi), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hw_code(&e, "devices", tokbuf,
                                 "{\"plantCodes\":\"NE=33000001\",\"pageNo\":1,\"pageSize\":10}"),
                         401);
    cJSON *f = call(&e, "DELETE", "/_emu/faults", NULL, NULL);
    assert_int_equal((int)num(f, "deleted"), 1);
    cJSON_Delete(f);
    assert_int_equal(hw_code(&e, "devices", tokbuf,
                             "{\"plantCodes\":\"NE=33000001\",\"pageNo\":1,\"pageSize\":10}"),
                     0);

    /* token_expired: 305 and the session is really gone. */
    add_fault(&e, "{\"path\":\"plantRealtimeKpi\",\"kind\":\"token_expired\"}");
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tokbuf, kpi), 305);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tokbuf, kpi), 305);

    /* The log names the fault of each request, the stats count the failures. */
    cJSON *log = call(&e, "GET", "/_emu/requests", NULL, NULL);
    int seen[8] = {0};
    static const char *const kinds[] = {"latency",   "http_status", "failcode", "reset",
                                        "malformed", "truncated",   "stall",    "token_expired"};
    const cJSON *q;
    cJSON_ArrayForEach(q, log)
    {
        const char *k = cJSON_GetStringValue(get(q, "fault"));
        for (int i = 0; k && i < 8; i++)
            seen[i] += strcmp(k, kinds[i]) == 0;
    }
    for (int i = 0; i < 8; i++)
        if (seen[i] < 1) fail_msg("no logged request with fault %s", kinds[i]);
    cJSON_Delete(log);
    cJSON *stats = call(&e, "GET", "/_emu/stats", NULL, NULL);
    const cJSON *k = get(get(stats, "apis"), "plantRealtimeKpi");
    assert_int_equal((int)num(k, "failures"), 8); /* all but latency, plus one natural 305 */
    cJSON_Delete(stats);

    /* Bad rules are refused with a reason. */
    r = http(&e, "POST", "/_emu/faults", NULL, "{\"path\":\"x\",\"kind\":\"meteor\"}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "kind"));
    res_free(&r);
    r = http(&e, "POST", "/_emu/faults", NULL, "{\"path\":\"x\",\"kind\":\"latency\"}");
    assert_int_equal(r.status, 400);
    res_free(&r);
    emu_stop(&e);
}

static void test_request_log(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    const char *tok = login(&e);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=33000002\"}"),
                     0);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", NULL, "{\"plantCodes\":\"NE=33000002\"}"),
                     305);
    cJSON *log = call(&e, "GET", "/_emu/requests?since=1", NULL, NULL);
    const cJSON *list = log;
    assert_int_equal(cJSON_GetArraySize(list), 2); /* the login was seq 1 */
    assert_int_equal((int)num(cJSON_GetArrayItem(list, 1), "seq"), 3);
    cJSON *page = call(&e, "GET", "/_emu/requests?since=0&limit=1", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(page), 1);
    assert_int_equal((int)num(cJSON_GetArrayItem(page, 0), "seq"), 1);
    cJSON_Delete(page);
    const cJSON *a = cJSON_GetArrayItem(list, 0);
    assert_int_equal((int)num(a, "seq"), 2);
    assert_true(num(a, "t_ms") == ANCHOR_MS + 61000);
    assert_string_equal(cJSON_GetStringValue(get(a, "method")), "POST");
    assert_string_equal(cJSON_GetStringValue(get(a, "path")), API "/vpp/plantRealtimeKpi");
    assert_string_equal(cJSON_GetStringValue(get(get(a, "headers"), "XSRF-TOKEN")), tok);
    assert_string_equal(cJSON_GetStringValue(get(a, "body")), "{\"plantCodes\":\"NE=33000002\"}");
    assert_int_equal((int)num(a, "failCode"), 0);
    assert_int_equal((int)num(cJSON_GetArrayItem(list, 1), "failCode"), 305);
    cJSON_Delete(log);
    cJSON *d = call(&e, "DELETE", "/_emu/requests", NULL, NULL);
    assert_int_equal((int)num(d, "deleted"), 3);
    cJSON_Delete(d);
    log = call(&e, "GET", "/_emu/requests", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(log), 0);
    cJSON_Delete(log);
    /* The control API itself is never logged; unknown paths are. */
    res r = http(&e, "POST", API "/nope", NULL, "{}");
    assert_int_equal(r.status, 404);
    res_free(&r);
    log = call(&e, "GET", "/_emu/requests?since=3", NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(log), 1);
    assert_int_equal((int)num(cJSON_GetArrayItem(log, 0), "seq"), 4); /* numbering goes on */
    cJSON_Delete(log);
    emu_stop(&e);
}

static void test_clock_control(void **state)
{
    (void)state;
    emu e;
    emu_start(&e, NULL);
    cJSON *c = call(&e, "GET", "/_emu/clock", NULL, NULL);
    assert_true(num(c, "now_ms") == ANCHOR_MS);
    assert_true(num(c, "speed") == 0);
    cJSON_Delete(c);
    c = call(&e, "POST", "/_emu/clock", NULL, "{\"advance_s\":3600}");
    assert_true(num(c, "now_ms") == ANCHOR_MS + 3600000);
    cJSON_Delete(c);
    c = call(&e, "POST", "/_emu/clock", NULL, "{\"speed\":1000}");
    assert_true(num(c, "speed") == 1000);
    double t0 = num(c, "now_ms");
    cJSON_Delete(c);
    /* Running at 1000x: wait (with a deadline) until the clock has visibly moved. */
    double deadline = mono() + 10 * slow(), now = t0;
    while (now < t0 + 1000 && mono() < deadline) {
        c = call(&e, "GET", "/_emu/clock", NULL, NULL);
        now = num(c, "now_ms");
        cJSON_Delete(c);
    }
    assert_true(now >= t0 + 1000);
    res r = http(&e, "POST", "/_emu/clock", NULL, "{\"speed\":-1}");
    assert_int_equal(r.status, 400);
    res_free(&r);
    r = http(&e, "POST", "/_emu/clock", NULL, "{\"warp\":9}");
    assert_int_equal(r.status, 400);
    res_free(&r);
    r = http(&e, "GET", "/_emu/nothing", NULL, NULL);
    assert_int_equal(r.status, 404);
    res_free(&r);
    emu_stop(&e);
}

/* The plant list and readings of an emulator started with this seed (caller frees). */
static char *fingerprint(const char *seed)
{
    emu e;
    const char *args[] = {"--seed", seed, "--plants", "20", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    char list[400];
    codes(list, sizeof list, 20);
    cJSON *p = hw(&e, "plants", tok, "{\"pageNo\":1,\"pageSize\":20}");
    cJSON *d = hw(&e, "devices", tok, "{\"plantCodes\":\"%s\",\"pageNo\":1,\"pageSize\":50}", list);
    cJSON *k = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"%s\"}", list);
    advance(&e, 3 * 3600);
    cJSON *k2 = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"%s\"}", list);
    char *a = cJSON_PrintUnformatted(get(p, "data")), *b = cJSON_PrintUnformatted(get(d, "data"));
    char *c = cJSON_PrintUnformatted(get(k, "data")), *c2 = cJSON_PrintUnformatted(get(k2, "data"));
    size_t len = strlen(a) + strlen(b) + strlen(c) + strlen(c2) + 4;
    char *out = malloc(len);
    snprintf(out, len, "%s|%s|%s|%s", a, b, c, c2);
    free(a);
    free(b);
    free(c);
    free(c2);
    cJSON_Delete(p);
    cJSON_Delete(d);
    cJSON_Delete(k);
    cJSON_Delete(k2);
    emu_stop(&e);
    return out;
}

static void test_determinism(void **state)
{
    (void)state;
    char *a = fingerprint("42"), *b = fingerprint("42"), *c = fingerprint("43");
    assert_string_equal(a, b);
    assert_true(strcmp(a, c) != 0);
    assert_non_null(strstr(a, "\"batterySOC\":"));
    free(a);
    free(b);
    free(c);
}

static void test_3000_plants(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--plants", "3000", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    double t0 = mono();
    int plants = 0;
    for (int call_no = 0; call_no < 30; call_no++) {
        if (call_no && call_no % 10 == 0) advance(&e, 60); /* 10 calls per minute */
        char list[1300];
        size_t off = 0;
        for (int i = 0; i < 100; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%sNE=%d", i ? "," : "",
                                    33000001 + call_no * 100 + i);
        cJSON *j = hw(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"%s\"}", list);
        assert_int_equal(fail_code(j), 0);
        plants += cJSON_GetArraySize(get(j, "data"));
        cJSON_Delete(j);
    }
    double secs = mono() - t0;
    assert_int_equal(plants, 3000);
    print_message("# 3000 plants read in 30 plantRealtimeKpi calls: %.3f s\n", secs);
    assert_true(secs < 30 * slow());
    emu_stop(&e);
}

static void test_https(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--tls-cert", GP_EMU_TLS_DIR "/server.pem", "--tls-key",
                          GP_EMU_TLS_DIR "/server.key", NULL};
    emu_start(&e, args);
    assert_true(e.tls);
    const char *tok = login(&e);
    assert_int_equal(hw_code(&e, "vpp/plantRealtimeKpi", tok, "{\"plantCodes\":\"NE=33000001\"}"),
                     0);
    emu_stop(&e);
}

/* gp-emu with bad arguments: exit 2 and one line naming the problem. */
static void expect_usage_error(const char *const *args, const char *needle)
{
    int out, err;
    pid_t pid = spawn(args, &out, &err);
    char line[400];
    int n = read_line(err, line, sizeof line, 10 * slow());
    int status = wait_exit(pid, 30 * slow());
    close(out);
    close(err);
    assert_true(n > 0);
    if (!strstr(line, needle)) fail_msg("\"%s\" does not mention \"%s\"", line, needle);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
}

static void test_cli_errors(void **state)
{
    (void)state;
    const char *a1[] = {"--vendor", "acme", NULL};
    expect_usage_error(a1, "--vendor acme");
    const char *a2[] = {"--vendor", "huawei", "--speed", "-2", NULL};
    expect_usage_error(a2, "--speed");
    const char *a3[] = {"--vendor", "huawei", "--plants", "0", NULL};
    expect_usage_error(a3, "--plants");
    const char *a4[] = {"--vendor", "huawei", "--set", "utc_offset=+8", NULL};
    expect_usage_error(a4, "utc_offset");
    const char *a5[] = {"--port", "0", NULL};
    expect_usage_error(a5, "--vendor");
    const char *a6[] = {"--vendor",  "huawei",           "--tls-cert", "/nonexistent.pem",
                        "--tls-key", "/nonexistent.key", NULL};
    int out, err;
    pid_t pid = spawn(a6, &out, &err);
    char line[400];
    assert_true(read_line(err, line, sizeof line, 10 * slow()) > 0);
    assert_non_null(strstr(line, "/nonexistent.pem"));
    int status = wait_exit(pid, 30 * slow());
    close(out);
    close(err);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

static void test_utc_offset(void **state)
{
    (void)state;
    emu e;
    const char *args[] = {"--set", "utc_offset=+08:00", NULL};
    emu_start(&e, args);
    const char *tok = login(&e);
    cJSON *j = hw(&e, "vpp/chargeAndDischarge", tok,
                  "{\"plantCodes\":\"NE=33000001\",\"controlType\":2,\"dispatchTime\":1,"
                  "\"dispatchSwitch\":1,\"requestID\":3}");
    cJSON_Delete(j);
    int status;
    double kwh;
    advance(&e, 180);
    j = task_status(&e, tok, "3", &status, &kwh);
    const cJSON *s0 = cJSON_GetArrayItem(get(j, "data"), 0);
    assert_string_equal(cJSON_GetStringValue(get(s0, "execStartTime")),
                        "2026-06-01T18:01:01+08:00");
    cJSON_Delete(j);
    emu_stop(&e);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_login_token_cookie, kill_leftovers),
        cmocka_unit_test_teardown(test_token_required, kill_leftovers),
        cmocka_unit_test_teardown(test_idle_expiry, kill_leftovers),
        cmocka_unit_test_teardown(test_quota_407, kill_leftovers),
        cmocka_unit_test_teardown(test_quota_refused_calls, kill_leftovers),
        cmocka_unit_test_teardown(test_paging_250, kill_leftovers),
        cmocka_unit_test_teardown(test_101_plants, kill_leftovers),
        cmocka_unit_test_teardown(test_dispatch_checks, kill_leftovers),
        cmocka_unit_test_teardown(test_duration_task, kill_leftovers),
        cmocka_unit_test_teardown(test_soc_task, kill_leftovers),
        cmocka_unit_test_teardown(test_timeout_24h, kill_leftovers),
        cmocka_unit_test_teardown(test_replace_and_stop, kill_leftovers),
        cmocka_unit_test_teardown(test_pv_only_plants, kill_leftovers),
        cmocka_unit_test_teardown(test_dod_effects, kill_leftovers),
        cmocka_unit_test_teardown(test_devonoff_effects, kill_leftovers),
        cmocka_unit_test_teardown(test_faults, kill_leftovers),
        cmocka_unit_test_teardown(test_request_log, kill_leftovers),
        cmocka_unit_test_teardown(test_clock_control, kill_leftovers),
        cmocka_unit_test_teardown(test_determinism, kill_leftovers),
        cmocka_unit_test_teardown(test_3000_plants, kill_leftovers),
        cmocka_unit_test_teardown(test_https, kill_leftovers),
        cmocka_unit_test_teardown(test_cli_errors, kill_leftovers),
        cmocka_unit_test_teardown(test_utc_offset, kill_leftovers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
