/*
 * The huawei plugin through its real entry (dlopen of the built module) and the mock host,
 * with answers shaped like the seed document's examples (plugins/huawei/fixtures/) and, for
 * fleets too big to write out, a small fake server answering from the request (fake_*).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mock_host.h"
#include "str.h"

#ifndef GP_HUAWEI_SO
#define GP_HUAWEI_SO "build/plugins/huawei/huawei.so"
#endif
#ifndef GP_HUAWEI_FIXTURES
#define GP_HUAWEI_FIXTURES "plugins/huawei/fixtures"
#endif

#define PASSWORD "Admin@1234-secret"
#define CFG_BODY                                                                                   \
    "\"base_url\":\"https://127.0.0.1:27200/\",\"username\":\"vpp\",\"password\":\"" PASSWORD "\""
#define CFG "{" CFG_BODY "}"

#define P1                                                                                         \
    "NE=12345678"        /* battery + inverter, ratedCapacity 10, usableCapacity 9.5 kWh, dod 90   \
                          */
#define P2 "NE=23456789" /* battery + inverter, ratedCapacity 15 kWh only */
#define P3 "NE=34567890" /* inverter only */

/* ---- helpers -------------------------------------------------------------------------- */

static char *fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", GP_HUAWEI_FIXTURES, name);
    size_t len = 0;
    char *text = gp_read_file(path, &len);
    if (!text) fail_msg("cannot read fixture %s", path);
    return text;
}

static mock_host *host(void)
{
    mock_host *m = mock_host_new("fusion");
    const char *so = getenv("GP_HUAWEI_PLUGIN") ? getenv("GP_HUAWEI_PLUGIN") : GP_HUAWEI_SO;
    if (!mock_host_load(m, so)) fail_msg("cannot load %s: %s", so, mock_host_load_error(m));
    return m;
}

static mock_host *with(const char *config)
{
    mock_host *m = host();
    if (!mock_host_create(m, config)) {
        for (size_t i = 0; i < mock_host_n_config_errors(m); i++)
            print_error("config: %s\n", mock_host_config_error(m, i));
        fail_msg("create failed for %s", config);
    }
    return m;
}

/* Every rule of the ABI kept, no secret in any log line, then freed. */
static void finish(mock_host *m)
{
    for (size_t i = 0; i < mock_host_n_violations(m); i++)
        print_error("violation: %s\n", mock_host_violation(m, i));
    assert_int_equal(mock_host_n_violations(m), 0);
    assert_int_equal(mock_host_commands_outstanding(m), 0);
    for (size_t i = 0; i < mock_host_n_logs(m); i++) {
        const char *line = mock_host_log_line(m, i, NULL);
        assert_null(strstr(line, PASSWORD));
        assert_null(strstr(line, "tok-"));
    }
    mock_host_free(m);
}

static void push_fx(mock_host *m, const char *name)
{
    char *text = fixture(name);
    mock_host_http_push_text(m, 200, text);
    free(text);
}

static void push_login(mock_host *m, const char *token)
{
    char *body = fixture("login_ok.json");
    char hdr[256];
    snprintf(hdr, sizeof hdr, "xsrf-token: %s", token);
    const char *headers[] = {"Content-Type: application/json;charset=UTF-8", hdr, NULL};
    mock_http_response r = {.status = 200, .body = body, .headers = headers};
    mock_host_http_push(m, &r);
    free(body);
}

static const mock_http_request *req(mock_host *m, size_t i)
{
    const mock_http_request *r = mock_host_http_request(m, i);
    if (!r) fail_msg("no HTTP request #%zu (have %zu)", i, mock_host_n_http_requests(m));
    return r;
}

static int has_header(const mock_http_request *r, const char *line)
{
    for (size_t i = 0; r->headers && r->headers[i]; i++)
        if (strcmp(r->headers[i], line) == 0) return 1;
    return 0;
}

static int has_header_prefix(const mock_http_request *r, const char *prefix)
{
    for (size_t i = 0; r->headers && r->headers[i]; i++)
        if (strncasecmp(r->headers[i], prefix, strlen(prefix)) == 0) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The request's body parsed; freed by the caller with cJSON_Delete. */
static cJSON *body_of(const mock_http_request *r)
{
    cJSON *j = cJSON_Parse(r->body);
    if (!j) fail_msg("request body is not JSON: %s", r->body);
    return j;
}

static double jnum(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_close(double a, double b)
{
    if (!(fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)))) fail_msg("%.17g != %.17g", a, b);
}

/* A discovered instance of config over the fixtures: login, 2 plant pages, devices. */
static mock_host *discovered_with(const char *config)
{
    mock_host *m = with(config);
    push_login(m, "tok-1");
    push_fx(m, "plants_page1.json");
    push_fx(m, "plants_page2.json");
    push_fx(m, "devices.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_discovered(m), 1);
    if (!mock_host_discovered_ok(m))
        fail_msg("discovery failed: %s", mock_host_discovered_message(m));
    return m;
}

static mock_host *discovered(void)
{
    return discovered_with(CFG);
}

static uint32_t dev(mock_host *m, const char *code)
{
    int64_t d = mock_host_find_device(m, code);
    if (d < 0) fail_msg("no device %s", code);
    return (uint32_t)d;
}

static const mock_result *result_of(mock_host *m, uint64_t id)
{
    size_t count = 0;
    const mock_result *r = mock_host_command_result(m, id, &count);
    if (count != 1) fail_msg("command %llu got %zu results", (unsigned long long)id, count);
    return r;
}

static const mock_result *task_of(mock_host *m, uint64_t id)
{
    size_t count = 0;
    const mock_result *r = mock_host_task_result(m, id, &count);
    if (count != 1) fail_msg("task %llu got %zu results", (unsigned long long)id, count);
    return r;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("\"%s\" does not contain \"%s\"", hay ? hay : "(null)", needle);
}

/* ---- a fake server for big fleets ------------------------------------------------------ */

typedef struct fake {
    int n_plants;
    gp_str out;    /* the last answer's body (valid until the next request) */
    char hdr[128]; /* the last answer's header */
    const char *headers[2];
    int n_cd; /* chargeAndDischarge requests seen */
} fake;

static const cJSON *fake_plant_codes(const cJSON *body)
{
    return cJSON_GetObjectItemCaseSensitive(body, "plantCodes");
}

/* Append entries [from, from+count) of a paged list built by `entry`. */
static void fake_page(fake *f, const cJSON *body, size_t total,
                      void (*entry)(fake *, size_t, const cJSON *), const cJSON *ctx)
{
    size_t page = (size_t)jnum(body, "pageNo"), size = (size_t)jnum(body, "pageSize");
    assert_true(page >= 1 && size >= 1);
    size_t pages = (total + size - 1) / size;
    gp_str_printf(&f->out,
                  "{\"success\":true,\"failCode\":0,\"message\":null,\"data\":{\"total\":%zu,"
                  "\"pageCount\":%zu,\"pageNo\":%zu,\"pageSize\":%zu,\"list\":[",
                  total, pages, page, size);
    for (size_t i = (page - 1) * size, k = 0; i < total && k < size; i++, k++) {
        if (k) gp_str_puts(&f->out, ",");
        entry(f, i, ctx);
    }
    gp_str_puts(&f->out, "]}}");
}

static void fake_plant(fake *f, size_t i, const cJSON *ctx)
{
    (void)ctx;
    gp_str_printf(&f->out, "{\"plantCode\":\"NE=%07zu\",\"plantName\":\"p%zu\"}", 1000000 + i, i);
}

/* Two devices per asked plant: a battery and an inverter. */
static void fake_device(fake *f, size_t i, const cJSON *codes)
{
    char code[64];
    const char *list = codes->valuestring;
    size_t which = i / 2, at = 0;
    const char *p = list;
    while (at < which && (p = strchr(p, ',')) != NULL) {
        p++;
        at++;
    }
    size_t len = strcspn(p, ",");
    snprintf(code, sizeof code, "%.*s", (int)len, p);
    if (i % 2 == 0)
        gp_str_printf(&f->out,
                      "{\"plantCode\":\"%s\",\"dn\":\"BAT-%s\",\"deviceTypeId\":20815,"
                      "\"dataItemMap\":{\"usableCapacity\":10.0,\"dod\":95}}",
                      code, code);
    else
        gp_str_printf(&f->out,
                      "{\"plantCode\":\"%s\",\"dn\":\"INV-%s\",\"deviceTypeId\":20822,"
                      "\"dataItemMap\":{\"model\":\"SUN2000\"}}",
                      code, code);
}

static void fake_handler(void *ud, const mock_http_request *r, mock_http_response *resp)
{
    fake *f = ud;
    gp_str_reset(&f->out);
    cJSON *body = cJSON_Parse(r->body);
    resp->error = GP_HTTP_OK;
    resp->status = 200;
    if (ends_with(r->url, "/login")) {
        snprintf(f->hdr, sizeof f->hdr, "xsrf-token: tok-fake");
        f->headers[0] = f->hdr;
        f->headers[1] = NULL;
        resp->headers = f->headers;
        gp_str_puts(&f->out, "{\"success\":true,\"failCode\":0,\"message\":null}");
    } else if (ends_with(r->url, "/plants")) {
        fake_page(f, body, (size_t)f->n_plants, fake_plant, NULL);
    } else if (ends_with(r->url, "/devices")) {
        const cJSON *codes = fake_plant_codes(body);
        size_t n = 1;
        for (const char *p = codes->valuestring; *p; p++)
            n += *p == ',';
        fake_page(f, body, 2 * n, fake_device, codes);
    } else if (ends_with(r->url, "/vpp/chargeAndDischarge")) {
        f->n_cd++;
        const cJSON *codes = fake_plant_codes(body);
        gp_str_puts(&f->out, "{\"success\":true,\"failCode\":0,\"message\":null,\"data\":[");
        const char *p = codes->valuestring;
        for (int k = 0; *p; k++) {
            size_t len = strcspn(p, ",");
            gp_str_printf(&f->out,
                          "%s{\"plantCode\":\"%.*s\",\"sn\":\"sn%d\",\"dispatchResult\":0,"
                          "\"remoteID\":\"r%d\"}",
                          k ? "," : "", (int)len, p, k, k);
            p += len + (p[len] == ',');
        }
        gp_str_puts(&f->out, "]}");
    } else {
        resp->error = GP_HTTP_CONNECT;
        resp->error_msg = "fake: no such API";
    }
    cJSON_Delete(body);
    resp->body = gp_str_cstr(&f->out);
}

/* ---- descriptor and configuration ---------------------------------------------------- */

static void test_descriptor(void **state)
{
    (void)state;
    mock_host *m = host();
    const gp_plugin_desc *d = mock_host_desc(m);
    assert_string_equal(d->name, "huawei");
    assert_int_equal(d->caps,
                     GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF);
    assert_int_equal(d->flags, GP_PF_TASKS | GP_PF_NATIVE_DURATION);
    assert_true(d->task_poll_s == 180);
    assert_int_equal(d->max_batch, 100);
    assert_non_null(d->login);
    static const struct {
        const char *name;
        uint32_t limit;
    } want[] = {{"login", 1},
                {"logout", 1},
                {"plants", 1},
                {"devices", 10},
                {"plantRealtimeKpi", 10},
                {"chargeAndDischarge", 100},
                {"chargeAndDischargeStatus", 100},
                {"dod", 10},
                {"devOnOff", 10}};
    assert_int_equal(d->n_quotas, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < d->n_quotas; i++) {
        assert_string_equal(d->quotas[i].endpoint, want[i].name);
        assert_int_equal(d->quotas[i].limit, want[i].limit);
        assert_int_equal(d->quotas[i].period_s, 60);
    }
    finish(m);
}

static void expect_config_error(const char *config, const char *needle)
{
    mock_host *m = host();
    assert_null(mock_host_create(m, config));
    if (!mock_host_has_config_error(m, needle)) {
        for (size_t i = 0; i < mock_host_n_config_errors(m); i++)
            print_error("got: %s\n", mock_host_config_error(m, i));
        fail_msg("no config error containing \"%s\" for %s", needle, config);
    }
    for (size_t i = 0; i < mock_host_n_config_errors(m); i++)
        assert_null(strstr(mock_host_config_error(m, i), PASSWORD));
    finish(m);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error("[]", "must be an object");
    expect_config_error("{\"username\":\"vpp\",\"password\":\"x\"}", "base_url: required");
    expect_config_error("{\"base_url\":\"ftp://x\",\"username\":\"vpp\",\"password\":\"x\"}",
                        "base_url: must be an http:// or https://");
    expect_config_error("{\"base_url\":\"https://\",\"username\":\"vpp\",\"password\":\"x\"}",
                        "base_url: must be an http:// or https://");
    expect_config_error("{\"base_url\":42,\"username\":\"vpp\",\"password\":\"x\"}",
                        "base_url: must be a string");
    expect_config_error("{\"base_url\":\"https://h\",\"password\":\"x\"}", "username: required");
    expect_config_error("{\"base_url\":\"https://h\",\"username\":\"\",\"password\":\"x\"}",
                        "username: must be a non-empty string");
    expect_config_error("{\"base_url\":\"https://h\",\"username\":\"vpp\"}", "password: required");
    expect_config_error("{\"base_url\":\"https://h\",\"username\":\"vpp\",\"password\":\"\"}",
                        "password: must not be empty");
    expect_config_error("{\"base_url\":\"https://h\",\"username\":\"vpp\",\"password_env\":"
                        "\"GP_TEST_HUAWEI_UNSET_VAR\"}",
                        "password_env: environment variable GP_TEST_HUAWEI_UNSET_VAR is not set");
    expect_config_error("{" CFG_BODY ",\"poll\":\"5m\"}", "poll: unknown key");
    expect_config_error("{" CFG_BODY ",\"plants\":\"NE=1\"}", "plants: must be an array");
    expect_config_error("{" CFG_BODY ",\"plants\":[\"NE=1\",7]}", "plants[1]: must be a string");
    expect_config_error("{" CFG_BODY ",\"plants\":[\"NE=1\",\"NE=1\"]}",
                        "plants[1]: duplicate plant code");
    expect_config_error("{" CFG_BODY ",\"plants\":[\"NE=1,NE=2\"]}",
                        "plants[0]: \"NE=1,NE=2\" is not a plant code");
    expect_config_error("{" CFG_BODY ",\"plants\":[]}", "plants: must not be empty");
    expect_config_error("{" CFG_BODY ",\"default_duration\":\"25h\"}",
                        "default_duration: must be between 1m and 24h");
    expect_config_error("{" CFG_BODY ",\"default_duration\":\"soon\"}",
                        "default_duration: 'soon' is not a duration");
    expect_config_error("{" CFG_BODY ",\"default_duration\":3600}",
                        "default_duration: must be a duration string");
    expect_config_error("{" CFG_BODY ",\"page_size\":7}",
                        "page_size: must be 10, 20, 30, 50 or 100");
    expect_config_error("{" CFG_BODY ",\"page_size\":200}", "page_size: must be 10, 20");
    expect_config_error("{" CFG_BODY ",\"page_size\":\"100\"}", "page_size: must be 10, 20");

    /* Every problem at once, each with its path. */
    mock_host *m = host();
    assert_null(mock_host_create(m, "{\"base_url\":1,\"page_size\":3,\"x\":1}"));
    assert_true(mock_host_has_config_error(m, "base_url:"));
    assert_true(mock_host_has_config_error(m, "username:"));
    assert_true(mock_host_has_config_error(m, "password:"));
    assert_true(mock_host_has_config_error(m, "page_size:"));
    assert_true(mock_host_has_config_error(m, "x: unknown key"));
    finish(m);

    /* A good one with every key, and no I/O in create. */
    m = host();
    setenv("GP_TEST_HUAWEI_PW", "from-env", 1);
    assert_non_null(mock_host_create(
        m, "{\"base_url\":\"http://127.0.0.1:8080\",\"username\":\"u\",\"password_env\":"
           "\"GP_TEST_HUAWEI_PW\",\"plants\":[\"NE=1\"],\"default_duration\":\"90s\","
           "\"page_size\":50}"));
    assert_int_equal(mock_host_n_config_errors(m), 0);
    assert_int_equal(mock_host_n_http_requests(m), 0);
    finish(m);
}

/* ---- login ---------------------------------------------------------------------------- */

static void test_login_token_in_header(void **state)
{
    (void)state;
    mock_host *m = discovered();
    const mock_http_request *r = req(m, 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "https://127.0.0.1:27200/rest/openapi/pvms/v1/login");
    assert_string_equal(r->endpoint, "login");
    assert_int_equal(r->priority, GP_PRIO_CONTROL);
    assert_false(has_header_prefix(r, "XSRF-TOKEN:"));
    assert_true(has_header(r, "Content-Type: application/json"));
    cJSON *b = body_of(r);
    assert_string_equal(jstr(b, "username"), "vpp");
    assert_string_equal(jstr(b, "password"), PASSWORD);
    cJSON_Delete(b);
    /* Every later request carries the token. */
    for (size_t i = 1; i < mock_host_n_http_requests(m); i++)
        assert_true(has_header(req(m, i), "XSRF-TOKEN: tok-1"));
    /* The login op logs in again and reports. */
    mock_host_clear(m);
    push_login(m, "tok-2");
    assert_int_equal(mock_host_login(m), 0);
    assert_int_equal(mock_host_n_login_done(m), 0); /* answered from the loop, not inline */
    mock_host_run(m);
    assert_int_equal(mock_host_n_login_done(m), 1);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    push_fx(m, "realtime_kpi.json");
    uint32_t d = dev(m, P1);
    mock_host_read(m, 1, &d, 1);
    mock_host_run(m);
    assert_true(has_header(req(m, 1), "XSRF-TOKEN: tok-2"));
    finish(m);
}

static void test_login_token_in_cookie(void **state)
{
    (void)state;
    mock_host *m = with(CFG);
    char *body = fixture("login_ok.json");
    /* The seed's example: one set-cookie header joining JSESSIONID and XSRF-TOKEN. */
    const char *headers[] = {
        "Content-Type: application/json;charset=UTF-8",
        "set-cookie: JSESSIONID=42E06857DCAB625E768CF58C3051F0A6; Path=/; Secure; HttpOnly, "
        "XSRF-TOKEN=tok-9hrxi1r7xc62ksbpd809; Path=/",
        NULL};
    mock_http_response r = {.status = 200, .body = body, .headers = headers};
    mock_host_http_push(m, &r);
    free(body);
    push_fx(m, "plants_array.json");
    push_fx(m, "devices.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_true(mock_host_discovered_ok(m));
    assert_int_equal(mock_host_n_devices(m), 2);
    assert_true(has_header(req(m, 1), "XSRF-TOKEN: tok-9hrxi1r7xc62ksbpd809"));

    /* Older servers: several Set-Cookie headers, the token in the second one. */
    mock_host_clear(m);
    body = fixture("login_ok.json");
    const char *legacy[] = {"Set-Cookie: JSESSIONID=1; Path=/",
                            "Set-Cookie: XSRF-TOKEN=tok-legacy; Path=/", NULL};
    mock_http_response r2 = {.status = 200, .body = body, .headers = legacy};
    mock_host_http_push(m, &r2);
    free(body);
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    push_fx(m, "realtime_kpi.json");
    uint32_t d = dev(m, P1);
    mock_host_read(m, 1, &d, 1);
    mock_host_run(m);
    assert_true(has_header(req(m, 1), "XSRF-TOKEN: tok-legacy"));

    /* Lower-case names, as the V500R007C00SPC110 notes say the server sends its headers. */
    mock_host_clear(m);
    body = fixture("login_ok.json");
    const char *lower[] = {"set-cookie: JSESSIONID=2; Path=/; Secure; HttpOnly, "
                           "xsrf-token=tok-lower; Path=/",
                           NULL};
    mock_http_response r3 = {.status = 200, .body = body, .headers = lower};
    mock_host_http_push(m, &r3);
    free(body);
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    push_fx(m, "realtime_kpi.json");
    mock_host_read(m, 2, &d, 1);
    mock_host_run(m);
    assert_true(has_header(req(m, 1), "XSRF-TOKEN: tok-lower"));
    finish(m);
}

static void test_login_without_token(void **state)
{
    (void)state;
    mock_host *m = with(CFG);
    push_fx(m, "login_ok.json"); /* success, but no token anywhere */
    mock_host_discover(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_discovered(m), 1);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m), "no XSRF-TOKEN");
    assert_int_equal(mock_host_n_http_requests(m), 1); /* no loop of logins */

    mock_host_clear(m);
    push_fx(m, "login_ok.json");
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_login_done(m), 1);
    const mock_result *r = mock_host_login_done(m, 0);
    assert_int_equal(r->status, GP_FAILED);
    assert_int_equal(r->code, GP_E_AUTH);
    assert_contains(r->message, "login: the answer carried no XSRF-TOKEN");
    assert_int_equal(mock_host_n_http_requests(m), 1);
    finish(m);
}

static void test_login_refused(void **state)
{
    (void)state;
    mock_host *m = with(CFG);
    mock_host_http_push_text(m, 200, "{\"success\":false,\"failCode\":20400,\"message\":\"\"}");
    mock_host_login(m);
    mock_host_run(m);
    const mock_result *r = mock_host_login_done(m, 0);
    assert_int_equal(r->status, GP_FAILED);
    assert_int_equal(r->code, 20400);
    assert_contains(r->message, "failCode 20400: The username or password of the third-party "
                                "system is incorrect.");

    /* The seed's failed-login example, during discovery. */
    mock_host_clear(m);
    push_fx(m, "login_failed.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m), "login failed");
    assert_contains(mock_host_discovered_message(m), "third-party system ID does not exist");
    assert_int_equal(mock_host_n_http_requests(m), 1);
    finish(m);
}

static void push_407(mock_host *m)
{
    push_fx(m, "error_407.json");
}

/* 407 to a login: tell the host (its quota queue holds the next login until the vendor's
 * minute is over) and log in again; give up after three such answers in a row. */
static void test_login_rate_limited(void **state)
{
    (void)state;
    mock_host *m = with(CFG);
    push_407(m);
    push_407(m);
    push_login(m, "tok-1");
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_login_done(m), 1);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    assert_int_equal(mock_host_n_http_requests(m), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(ends_with(req(m, i)->url, "/login"));
        assert_string_equal(req(m, i)->endpoint, "login");
    }
    assert_int_equal(mock_host_n_rate_limited(m), 2);
    for (size_t i = 0; i < 2; i++) {
        double after = -1;
        assert_string_equal(mock_host_rate_limited_at(m, i, &after), "login");
        assert_true(after == 0);
    }

    /* Three in a row: an authentication failure that says why, and no fourth login. */
    mock_host_clear(m);
    for (int i = 0; i < 4; i++)
        push_407(m);
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_login_done(m), 1);
    const mock_result *r = mock_host_login_done(m, 0);
    assert_int_equal(r->status, GP_FAILED);
    assert_int_equal(r->code, GP_E_AUTH);
    assert_contains(r->message, "login: refused 3 times in a row as too many requests");
    assert_int_equal(mock_host_n_http_requests(m), 3);
    assert_int_equal(mock_host_n_rate_limited(m), 3);
    mock_host_free(m);

    /* The login of a discovery too; the count starts again with each login. */
    m = with(CFG);
    push_407(m);
    push_407(m);
    push_login(m, "tok-2");
    push_fx(m, "plants_array.json");
    push_fx(m, "devices.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_true(mock_host_discovered_ok(m));
    assert_int_equal(mock_host_n_devices(m), 2);
    assert_true(has_header(req(m, 3), "XSRF-TOKEN: tok-2"));
    assert_int_equal(mock_host_n_rate_limited(m), 2);
    mock_host_free(m);

    m = with(CFG);
    for (int i = 0; i < 4; i++)
        push_407(m);
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m),
                    "discovery: login failed: huawei: login: refused 3 times in a row");
    assert_int_equal(mock_host_n_http_requests(m), 3);
    finish(m);
}

/* ---- discovery ------------------------------------------------------------------------ */

static void test_discovery_pages(void **state)
{
    (void)state;
    mock_host *m = discovered();
    assert_int_equal(mock_host_n_http_requests(m), 4);
    const char *urls[] = {"/login", "/plants", "/plants", "/devices"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(ends_with(req(m, i)->url, urls[i]));
        if (i) {
            assert_string_equal(req(m, i)->endpoint, i == 3 ? "devices" : "plants");
            assert_int_equal(req(m, i)->priority, GP_PRIO_TELEMETRY);
        }
    }
    cJSON *b = body_of(req(m, 1));
    assert_true(jnum(b, "pageNo") == 1 && jnum(b, "pageSize") == 100);
    cJSON_Delete(b);
    b = body_of(req(m, 2));
    assert_true(jnum(b, "pageNo") == 2 && jnum(b, "pageSize") == 100);
    cJSON_Delete(b);
    b = body_of(req(m, 3));
    assert_string_equal(jstr(b, "plantCodes"), P1 "," P2 "," P3);
    assert_true(jnum(b, "pageNo") == 1);
    cJSON_Delete(b);

    assert_int_equal(mock_host_n_devices(m), 3);
    const uint32_t all =
        GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF;
    const gp_device_info *d1 = &mock_host_device(m, dev(m, P1))->info;
    assert_int_equal(d1->caps, all);
    /* batterySOC is a percentage of the rated capacity: ratedCapacity 10 kWh, not the usable
     * 9.5 kWh. */
    assert_close(d1->capacity_wh, 10000);
    assert_close(d1->soc_min_pct, 10); /* dod 90 */
    assert_true(isnan(d1->max_charge_w) && isnan(d1->max_discharge_w) && isnan(d1->soc_max_pct));
    assert_string_equal(d1->model, "LUNA2000-10");
    const gp_device_info *d2 = &mock_host_device(m, dev(m, P2))->info;
    assert_int_equal(d2->caps, all);
    assert_close(d2->capacity_wh, 15000); /* ratedCapacity 15 kWh, usableCapacity null */
    assert_true(isnan(d2->soc_min_pct));
    const gp_device_info *d3 = &mock_host_device(m, dev(m, P3))->info;
    assert_int_equal(d3->caps, GP_CAP_READ | GP_CAP_ONOFF);
    assert_true(isnan(d3->capacity_wh));
    assert_string_equal(d3->model, "SUN2000-5KTL");
    finish(m);
}

static void test_discovery_filter(void **state)
{
    (void)state;
    mock_host *m = with("{" CFG_BODY ",\"plants\":[\"" P2 "\",\"NE=99999999\"],\"page_size\":10}");
    push_login(m, "tok-1");
    push_fx(m, "plants_array.json"); /* the seed's own shape: a bare array, one page */
    push_fx(m, "devices.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_true(mock_host_discovered_ok(m));
    assert_int_equal(mock_host_n_devices(m), 1);
    assert_true(mock_host_find_device(m, P2) >= 0);
    assert_true(mock_host_log_contains(m, "not in the account: NE=99999999"));
    cJSON *b = body_of(req(m, 1));
    assert_true(jnum(b, "pageSize") == 10);
    cJSON_Delete(b);
    b = body_of(req(m, 2));
    assert_string_equal(jstr(b, "plantCodes"), P2);
    cJSON_Delete(b);
    finish(m);
}

static void test_discovery_session_expired(void **state)
{
    (void)state;
    /* A session that expired since the last discovery: one login, the request again. */
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "error_305.json");
    push_login(m, "tok-2");
    push_fx(m, "plants_array.json");
    push_fx(m, "devices.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_true(mock_host_discovered_ok(m));
    assert_int_equal(mock_host_n_http_requests(m), 4);
    assert_true(ends_with(req(m, 1)->url, "/login"));
    assert_true(has_header(req(m, 2), "XSRF-TOKEN: tok-2"));
    mock_host_free(m);

    /* 305 right after a login: fail, never loop. */
    m = with(CFG);
    push_login(m, "tok-1");
    push_fx(m, "error_305.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m), "plants: failCode 305");
    assert_int_equal(mock_host_n_http_requests(m), 2);
    finish(m);
}

static void test_discovery_errors(void **state)
{
    (void)state;
    mock_host *m = with(CFG);
    push_login(m, "tok-1");
    push_fx(m, "error_20007.json");
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m),
                    "plants: failCode 20007: The system does not have the desired power plant");
    mock_host_clear(m);
    mock_host_http_push_text(m, 200, "{\"success\":true,\"failCode\":0,\"data\":{\"list\":3}}");
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m), "plants: data is neither a list");
    mock_host_clear(m);
    push_fx(m, "plants_array.json");
    mock_host_http_push_text(m, 200, "{\"success\":true,\"failCode\":0,\"data\":[{\"plantC");
    mock_host_discover(m);
    mock_host_run(m);
    assert_false(mock_host_discovered_ok(m));
    assert_contains(mock_host_discovered_message(m), "devices: malformed JSON answer");
    assert_int_equal(mock_host_n_devices(m), 0);
    finish(m);
}

/* ---- reads ---------------------------------------------------------------------------- */

static void read_all(mock_host *m, uint64_t op, gp_status want)
{
    size_t before = mock_host_n_read_done(m);
    mock_host_read(m, op, NULL, 0);
    mock_host_run(m);
    assert_int_equal(mock_host_n_read_done(m), before + 1);
    const mock_result *r = mock_host_read_done(m, before);
    assert_int_equal(r->id, op);
    if (r->status != want) fail_msg("read_done %d, want %d: %s", r->status, want, r->message);
}

static void test_read_converts(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "realtime_kpi.json");
    read_all(m, 7, GP_DONE);
    const mock_http_request *r = req(m, 0);
    assert_true(ends_with(r->url, "/rest/openapi/pvms/v1/vpp/plantRealtimeKpi"));
    assert_string_equal(r->endpoint, "plantRealtimeKpi");
    assert_int_equal(r->priority, GP_PRIO_TELEMETRY);
    assert_true(has_header(r, "XSRF-TOKEN: tok-1"));
    cJSON *b = body_of(r);
    assert_string_equal(jstr(b, "plantCodes"), P1 "," P2 "," P3);
    cJSON_Delete(b);
    assert_int_equal(mock_host_n_readings(m), 3);

    const mock_reading *a = mock_host_last_reading(m, dev(m, P1));
    assert_int_equal(a->r.online, 1);
    assert_close(a->r.pv_w, 7000);
    assert_close(a->r.grid_w, 1000);    /* meterPower -1 kW: drawn from the grid */
    assert_close(a->r.battery_w, 5000); /* discharging */
    assert_close(a->r.load_w, 1000);
    assert_close(a->r.soc_pct, 90.1);
    assert_true(isnan(a->r.soc_min_pct)); /* batteryDOD null */
    assert_close(mock_host_extra_num(a, "totalEnergy"), 11900);

    const mock_reading *b2 = mock_host_last_reading(m, dev(m, P2));
    assert_int_equal(b2->r.online, 1); /* faulty is still connected */
    assert_close(b2->r.pv_w, 1991);
    assert_close(b2->r.grid_w, -817);     /* meterPower > 0: feed-in */
    assert_close(b2->r.battery_w, -1168); /* charging */
    assert_close(b2->r.load_w, 6);
    assert_close(b2->r.soc_pct, 55.5);
    assert_close(b2->r.soc_min_pct, 10); /* 100 - batteryDOD 90 */
    assert_close(mock_host_extra_num(b2, "healthState"), 2);

    const mock_reading *c = mock_host_last_reading(m, dev(m, P3));
    assert_int_equal(c->r.online, 0); /* healthState 1: disconnected */
    assert_true(isnan(c->r.pv_w) && isnan(c->r.grid_w) && isnan(c->r.battery_w) &&
                isnan(c->r.load_w) && isnan(c->r.soc_pct) && isnan(c->r.soc_min_pct));
    assert_true(isnan(mock_host_extra_num(c, "dayEnergy")));
    finish(m);
}

static void test_read_seed_example(void **state)
{
    (void)state;
    /* The seed's own example: pmeterPower, healthState 3, a plant missing from the answer. */
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "realtime_kpi_seed.json");
    read_all(m, 8, GP_DONE);
    assert_int_equal(mock_host_n_readings(m), 2);
    assert_null(mock_host_last_reading(m, dev(m, P3))); /* not reported: the host marks it stale */
    const mock_reading *b = mock_host_last_reading(m, dev(m, P2));
    assert_close(b->r.grid_w, 1000);
    assert_close(b->r.soc_min_pct, 62.7);
    assert_int_equal(b->r.online, 1);

    /* Wrong types inside one plant's map: NAN and a warning, the rest stands. */
    mock_host_clear(m);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCode\":\"" P1
                             "\",\"dataItemMap\":{\"pvPower\":\"lots\",\"loadPower\":[1],"
                             "\"batterySOC\":50}},{\"plantCode\":\"" P2 "\",\"dataItemMap\":7}]}");
    read_all(m, 9, GP_DONE);
    assert_int_equal(mock_host_n_readings(m), 1);
    const mock_reading *a = mock_host_last_reading(m, dev(m, P1));
    assert_true(isnan(a->r.pv_w) && isnan(a->r.load_w));
    assert_close(a->r.soc_pct, 50);
    assert_true(mock_host_log_contains(m, "plantRealtimeKpi: " P1 ": pvPower is not a number"));
    assert_true(mock_host_log_contains(m, "without a dataItemMap"));
    finish(m);
}

/* ---- commands ------------------------------------------------------------------------- */

static void test_setpoints_batched(void **state)
{
    (void)state;
    fake f = {.n_plants = 250};
    mock_host *m = with(CFG);
    mock_host_http_set_handler(m, fake_handler, &f);
    mock_host_set_next_request_id(m, 432523532523ULL);
    mock_host_discover(m);
    mock_host_run(m);
    assert_true(mock_host_discovered_ok(m));
    assert_int_equal(mock_host_n_devices(m), 250);
    for (size_t i = 0; i < 250; i++)
        assert_int_equal(mock_host_device(m, i)->info.caps, GP_CAP_READ | GP_CAP_SETPOINT |
                                                                GP_CAP_SOC_TARGET | GP_CAP_DOD |
                                                                GP_CAP_ONOFF);
    mock_host_clear(m);

    gp_cmd cmds[250];
    for (uint32_t i = 0; i < 250; i++) {
        cmds[i] = mock_host_cmd(m, 1000 + i, i, GP_CMD_SETPOINT, -3000);
        cmds[i].duration_s = 1800;
    }
    mock_host_command(m, cmds, 250);
    mock_host_run(m);
    assert_int_equal(f.n_cd, 3);
    assert_int_equal(mock_host_n_http_requests(m), 3);
    size_t sizes[3], want[3] = {100, 100, 50};
    char refs[3][32];
    for (size_t k = 0; k < 3; k++) {
        const mock_http_request *r = req(m, k);
        assert_string_equal(r->endpoint, "chargeAndDischarge");
        assert_int_equal(r->priority, GP_PRIO_CONTROL);
        assert_true(has_header(r, "XSRF-TOKEN: tok-fake"));
        cJSON *b = body_of(r);
        const char *codes = jstr(b, "plantCodes");
        assert_non_null(codes);
        sizes[k] = 1;
        for (const char *p = codes; *p; p++)
            sizes[k] += *p == ',';
        assert_int_equal(sizes[k], want[k]);
        assert_true(jnum(b, "dispatchSwitch") == 1);
        assert_true(jnum(b, "controlType") == 2);
        assert_true(jnum(b, "dispatchTime") == 30);
        assert_true(jnum(b, "powerDispatch") == 3000); /* > 0: charge, in the seed's sign */
        assert_null(cJSON_GetObjectItem(b, "targetSOC"));
        const cJSON *id = cJSON_GetObjectItem(b, "requestID");
        assert_true(cJSON_IsNumber(id));
        /* The text, not the double: request ids are Longs. */
        const char *at = strstr(r->body, "\"requestID\":");
        assert_non_null(at);
        snprintf(refs[k], sizeof refs[k], "%.*s", (int)strspn(at + 12, "0123456789"), at + 12);
        for (size_t j = 0; j < k; j++)
            assert_string_not_equal(refs[j], refs[k]);
        cJSON_Delete(b);
    }
    assert_string_equal(refs[0], "432523532523");
    for (uint32_t i = 0; i < 250; i++) {
        const mock_result *r = result_of(m, 1000 + i);
        assert_int_equal(r->status, GP_PENDING);
        assert_string_equal(r->vendor_ref, refs[i / 100]);
        assert_non_null(r->detail);
        assert_contains(r->detail, "\"remoteID\":");
    }
    finish(m);
    gp_str_clear(&f.out);
}

static void test_dispatch_results(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 41);
    push_fx(m, "charge_discharge_mixed.json");
    gp_cmd c[3] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, 2500),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_SETPOINT, 2500),
                   mock_host_cmd(m, 3, dev(m, P3), GP_CMD_SETPOINT, 2500)};
    mock_host_command(m, c, 3);
    /* The plant without a battery is refused at once, without a request. */
    const mock_result *r3 = result_of(m, 3);
    assert_int_equal(r3->status, GP_FAILED);
    assert_int_equal(r3->code, GP_E_UNSUPPORTED);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 1);
    cJSON *b = body_of(req(m, 0));
    assert_string_equal(jstr(b, "plantCodes"), P1 "," P2);
    assert_true(jnum(b, "dispatchSwitch") == 2);
    assert_true(jnum(b, "powerDispatch") == -2500); /* < 0: discharge, in the seed's sign */
    assert_true(jnum(b, "controlType") == 2);
    assert_true(jnum(b, "dispatchTime") == 60); /* default_duration 1h */
    assert_true(jnum(b, "requestID") == 41);
    cJSON_Delete(b);
    const mock_result *r1 = result_of(m, 1);
    assert_int_equal(r1->status, GP_PENDING);
    assert_string_equal(r1->vendor_ref, "41");
    assert_contains(r1->detail, "\"remoteID\":\"12345678\"");
    const mock_result *r2 = result_of(m, 2);
    assert_int_equal(r2->status, GP_FAILED);
    assert_int_equal(r2->code, GP_E_REJECTED);
    assert_false(r2->retryable);
    assert_contains(r2->message, "vendor refused the task for this plant");

    /* A plant missing from data: the request was accepted, so the task may run there too.
     * Polled under the request's ID, never sent again. */
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 77);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCode\":\"" P1
                             "\",\"sn\":\"a\",\"dispatchResult\":0,\"remoteID\":\"x\"}]}");
    gp_cmd d[2] = {mock_host_cmd(m, 4, dev(m, P1), GP_CMD_SETPOINT, -1000),
                   mock_host_cmd(m, 5, dev(m, P2), GP_CMD_SETPOINT, -1000)};
    mock_host_command(m, d, 2);
    mock_host_run(m);
    assert_int_equal(result_of(m, 4)->status, GP_PENDING);
    assert_null(result_of(m, 4)->message);
    const mock_result *r5 = result_of(m, 5);
    assert_int_equal(r5->status, GP_PENDING);
    assert_string_equal(r5->vendor_ref, "77");
    assert_contains(r5->message, "chargeAndDischarge: no result for plant " P2);
    assert_contains(r5->message, "outcome unknown: polling request 77");
    assert_int_equal(mock_host_n_http_requests(m), 1);

    /* Different parameters: separate requests, each with its own requestID. */
    mock_host_clear(m);
    push_fx(m, "charge_discharge_ok.json");
    push_fx(m, "charge_discharge_ok.json");
    gp_cmd e[2] = {mock_host_cmd(m, 6, dev(m, P1), GP_CMD_SETPOINT, -1000),
                   mock_host_cmd(m, 7, dev(m, P2), GP_CMD_SETPOINT, -2000)};
    mock_host_command(m, e, 2);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 2);
    assert_string_not_equal(result_of(m, 6)->vendor_ref, result_of(m, 7)->vendor_ref);
    finish(m);
}

static cJSON *one_command(mock_host *m, gp_cmd c, const char *answer_fixture, gp_status want)
{
    mock_host_clear(m);
    push_fx(m, answer_fixture);
    mock_host_command(m, &c, 1);
    mock_host_run(m);
    const mock_result *r = result_of(m, c.id);
    if (r->status != want) fail_msg("status %d, want %d: %s", r->status, want, r->message);
    assert_int_equal(mock_host_n_http_requests(m), 1);
    return body_of(req(m, 0));
}

static void test_setpoint_modes(void **state)
{
    (void)state;
    mock_host *m = discovered_with("{" CFG_BODY ",\"default_duration\":\"15m\"}");
    uint32_t d = dev(m, P1);

    /* soc_target: SoC control, no dispatchTime. */
    gp_cmd c = mock_host_cmd(m, 1, d, GP_CMD_SETPOINT, 4000);
    c.soc_target = 20;
    cJSON *b = one_command(m, c, "charge_discharge_ok.json", GP_PENDING);
    assert_true(jnum(b, "dispatchSwitch") == 2);
    assert_true(jnum(b, "controlType") == 1);
    assert_true(jnum(b, "targetSOC") == 20);
    assert_true(jnum(b, "powerDispatch") == -4000);
    assert_null(cJSON_GetObjectItem(b, "dispatchTime"));
    cJSON_Delete(b);

    /* No duration: default_duration; 90 s: 2 minutes; 2 days: Huawei's 24 h. */
    uint32_t secs[] = {0, 90, 172800};
    double mins[] = {15, 2, 1440};
    for (size_t i = 0; i < 3; i++) {
        c = mock_host_cmd(m, 2 + i, d, GP_CMD_SETPOINT, -1234.4);
        c.duration_s = secs[i];
        b = one_command(m, c, "charge_discharge_ok.json", GP_PENDING);
        assert_true(jnum(b, "controlType") == 2);
        assert_true(jnum(b, "dispatchTime") == mins[i]);
        assert_true(jnum(b, "powerDispatch") == 1234);
        cJSON_Delete(b);
    }

    /* Bad values are refused without a request. */
    mock_host_clear(m);
    gp_cmd bad[2] = {mock_host_cmd(m, 10, d, GP_CMD_SETPOINT, NAN),
                     mock_host_cmd(m, 11, d, GP_CMD_SETPOINT, 100)};
    bad[1].soc_target = 120;
    mock_host_command(m, bad, 2);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 0);
    assert_int_equal(result_of(m, 10)->code, GP_E_REJECTED);
    assert_int_equal(result_of(m, 11)->code, GP_E_REJECTED);
    assert_contains(result_of(m, 11)->message, "soc_target");
    finish(m);
}

static void test_release(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "charge_discharge_ok.json");
    /* Releases of two plants share one request: dispatchSwitch 0. */
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_RELEASE, 0),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_RELEASE, 0)};
    mock_host_command(m, c, 2);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 1);
    cJSON *b = body_of(req(m, 0));
    assert_string_equal(jstr(b, "plantCodes"), P1 "," P2);
    assert_true(jnum(b, "dispatchSwitch") == 0);
    assert_null(cJSON_GetObjectItem(b, "controlType"));
    assert_null(cJSON_GetObjectItem(b, "powerDispatch"));
    assert_null(cJSON_GetObjectItem(b, "dispatchTime"));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(b, "requestID")));
    cJSON_Delete(b);
    for (uint64_t id = 1; id <= 2; id++) {
        const mock_result *r = result_of(m, id);
        assert_int_equal(r->status, GP_DONE);
        assert_null(r->vendor_ref);
    }
    finish(m);
}

static void test_dod(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "dod_ok.json");
    gp_cmd c[3] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_DOD, 90),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_DOD, 90),
                   mock_host_cmd(m, 3, dev(m, P3), GP_CMD_DOD, 90)};
    mock_host_command(m, c, 3);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 1);
    const mock_http_request *r = req(m, 0);
    assert_true(ends_with(r->url, "/vpp/dod"));
    assert_string_equal(r->endpoint, "dod");
    assert_int_equal(r->priority, GP_PRIO_CONTROL);
    assert_string_equal(r->body, "{\"dns\":\"BA4372D08E0,5D02E8B40AD\",\"dod\":90}");
    assert_int_equal(result_of(m, 1)->status, GP_DONE);
    assert_contains(result_of(m, 1)->detail, "\"setDOD\":90");
    /* The seed's example: the second battery applied 88. The core must not believe 90. */
    const mock_result *r2 = result_of(m, 2);
    assert_int_equal(r2->status, GP_FAILED);
    assert_int_equal(r2->code, GP_E_REJECTED);
    assert_false(r2->retryable);
    assert_contains(r2->message,
                    "battery 5D02E8B40AD of plant " P2 " applied DoD 88 %, not the requested 90 %");
    assert_contains(r2->detail, "\"setDOD\":88");
    const mock_result *r3 = result_of(m, 3);
    assert_int_equal(r3->status, GP_FAILED);
    assert_int_equal(r3->code, GP_E_UNSUPPORTED);
    assert_contains(r3->message, "no battery");

    /* result 1 for a battery: refused; a battery missing from data: protocol. */
    mock_host_clear(m);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"dn\":"
                             "\"BA4372D08E0\",\"result\":1,\"setDOD\":80}]}");
    gp_cmd d[2] = {mock_host_cmd(m, 4, dev(m, P1), GP_CMD_DOD, 85),
                   mock_host_cmd(m, 5, dev(m, P2), GP_CMD_DOD, 85)};
    mock_host_command(m, d, 2);
    mock_host_run(m);
    assert_int_equal(result_of(m, 4)->code, GP_E_REJECTED);
    assert_contains(result_of(m, 4)->message, "refused the DoD setting for device BA4372D08E0");
    assert_int_equal(result_of(m, 5)->code, GP_E_PROTOCOL);
    finish(m);
}

static void test_on_off(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "dev_on_off_ok.json");
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_ONOFF, 1),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_ONOFF, 1)};
    mock_host_command(m, c, 2);
    mock_host_run(m);
    const mock_http_request *r = req(m, 0);
    assert_true(ends_with(r->url, "/vpp/devOnOff"));
    assert_string_equal(r->endpoint, "devOnOff");
    assert_string_equal(r->body, "{\"dns\":\"NE=33333,NE=44444\",\"controlType\":1}");
    assert_int_equal(result_of(m, 1)->status, GP_DONE);
    assert_int_equal(result_of(m, 2)->status, GP_FAILED);
    assert_int_equal(result_of(m, 2)->code, GP_E_REJECTED);

    mock_host_clear(m);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"dn\":"
                             "\"NE=55555\",\"result\":0}]}");
    gp_cmd off = mock_host_cmd(m, 3, dev(m, P3), GP_CMD_ONOFF, 0);
    mock_host_command(m, &off, 1);
    mock_host_run(m);
    assert_string_equal(req(m, 0)->body, "{\"dns\":\"NE=55555\",\"controlType\":2}");
    assert_int_equal(result_of(m, 3)->status, GP_DONE);
    finish(m);
}

/* ---- session expiry and quota answers ------------------------------------------------- */

static void test_session_expired(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "error_305.json");
    read_all(m, 1, GP_FAILED);
    const mock_result *r = mock_host_read_done(m, 0);
    assert_int_equal(r->code, GP_E_AUTH);
    assert_contains(r->message, "plantRealtimeKpi: failCode 305");
    assert_int_equal(mock_host_n_http_requests(m), 1); /* no login of its own */

    /* Until the host's login op runs, operations fail at once as AUTH. */
    gp_cmd c = mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -500);
    mock_host_command(m, &c, 1);
    assert_int_equal(result_of(m, 1)->code, GP_E_AUTH);
    mock_host_task_poll(m, 1, dev(m, P1), "41", GP_CMD_SETPOINT, -500);
    assert_int_equal(task_of(m, 1)->code, GP_E_AUTH);
    assert_int_equal(mock_host_n_http_requests(m), 1);

    /* A 305 to a command: AUTH for every command of the request. */
    push_login(m, "tok-2");
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    push_fx(m, "error_305.json");
    gp_cmd d[2] = {mock_host_cmd(m, 2, dev(m, P1), GP_CMD_SETPOINT, -500),
                   mock_host_cmd(m, 3, dev(m, P2), GP_CMD_SETPOINT, -500)};
    mock_host_command(m, d, 2);
    mock_host_run(m);
    assert_int_equal(result_of(m, 2)->code, GP_E_AUTH);
    assert_int_equal(result_of(m, 3)->code, GP_E_AUTH);

    /* The login op works, and the replay carries the new token. */
    push_login(m, "tok-3");
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_n_login_done(m), 2);
    assert_int_equal(mock_host_login_done(m, 1)->status, GP_DONE);
    push_fx(m, "realtime_kpi.json");
    read_all(m, 2, GP_DONE);
    const mock_http_request *last = req(m, mock_host_n_http_requests(m) - 1);
    assert_true(has_header(last, "XSRF-TOKEN: tok-3"));
    finish(m);
}

static void test_late_305_keeps_new_session(void **state)
{
    (void)state;
    /* Two reads with the old token; the first 305 leads to a new login; the second 305
     * arrives after it and must not throw the new session away. */
    mock_host *m = discovered();
    mock_host_clear(m);
    char *e305 = fixture("error_305.json");
    mock_http_response late = {.status = 200, .body = e305, .delay_ms = 10000};
    mock_host_http_push_text(m, 200, e305);
    mock_host_http_push(m, &late);
    free(e305);
    uint32_t a = dev(m, P1), b = dev(m, P2);
    mock_host_read(m, 1, &a, 1);
    mock_host_read(m, 2, &b, 1);
    mock_host_run(m);
    assert_int_equal(mock_host_read_done(m, 0)->code, GP_E_AUTH);
    push_login(m, "tok-2");
    mock_host_login(m);
    mock_host_run(m);
    assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
    mock_host_advance(m, 10000);
    assert_int_equal(mock_host_n_read_done(m), 2);
    /* Not AUTH: the core would log in again for nothing. A retryable failure it replays. */
    const mock_result *late305 = mock_host_read_done(m, 1);
    assert_int_equal(late305->status, GP_FAILED);
    assert_int_equal(late305->code, GP_E_TRANSPORT);
    assert_true(late305->retryable);
    assert_contains(late305->message, "plantRealtimeKpi: failCode 305");
    assert_contains(late305->message, "the session changed");
    push_fx(m, "realtime_kpi.json");
    read_all(m, 3, GP_DONE);
    assert_true(has_header(req(m, 3), "XSRF-TOKEN: tok-2"));

    /* The same for a command: the vendor did nothing with it (305), so a retry with a new
     * requestID is safe; and it is no unknown outcome to poll. */
    mock_host_clear(m);
    e305 = fixture("error_305.json");
    mock_http_response late_cmd = {.status = 200, .body = e305, .delay_ms = 10000};
    mock_host_http_push(m, &late_cmd);
    free(e305);
    gp_cmd c = mock_host_cmd(m, 9, a, GP_CMD_SETPOINT, -500);
    mock_host_command(m, &c, 1);
    mock_host_run(m);
    push_login(m, "tok-3");
    mock_host_login(m);
    mock_host_run(m);
    mock_host_advance(m, 10000);
    const mock_result *rc = result_of(m, 9);
    assert_int_equal(rc->status, GP_FAILED);
    assert_int_equal(rc->code, GP_E_TRANSPORT);
    assert_true(rc->retryable);
    assert_contains(rc->message, "chargeAndDischarge: failCode 305");
    push_fx(m, "realtime_kpi.json");
    read_all(m, 4, GP_DONE);
    assert_true(has_header(req(m, mock_host_n_http_requests(m) - 1), "XSRF-TOKEN: tok-3"));
    finish(m);
}

static void test_rate_limited(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "error_407.json");
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -500),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_SETPOINT, -500)};
    mock_host_command(m, c, 2);
    mock_host_run(m);
    for (uint64_t id = 1; id <= 2; id++) {
        const mock_result *r = result_of(m, id);
        assert_int_equal(r->status, GP_FAILED);
        assert_int_equal(r->code, GP_E_RATE_LIMIT);
        assert_contains(r->message, "chargeAndDischarge: failCode 407");
    }
    assert_int_equal(mock_host_n_rate_limited(m), 1);
    double after = -1;
    assert_string_equal(mock_host_rate_limited_at(m, 0, &after), "chargeAndDischarge");
    assert_true(after == 0);

    push_fx(m, "error_407.json");
    read_all(m, 3, GP_FAILED);
    assert_int_equal(mock_host_read_done(m, 0)->code, GP_E_RATE_LIMIT);
    assert_string_equal(mock_host_rate_limited_at(m, 1, NULL), "plantRealtimeKpi");

    push_fx(m, "error_407.json");
    mock_host_task_poll(m, 9, dev(m, P1), "41", GP_CMD_SETPOINT, -500);
    mock_host_run(m);
    assert_int_equal(task_of(m, 9)->code, GP_E_RATE_LIMIT);
    assert_string_equal(mock_host_rate_limited_at(m, 2, NULL), "chargeAndDischargeStatus");

    /* HTTP 429 from a proxy in front: the same. */
    mock_host_http_push_text(m, 429, "Too Many Requests");
    gp_cmd d = mock_host_cmd(m, 10, dev(m, P1), GP_CMD_DOD, 80);
    mock_host_command(m, &d, 1);
    mock_host_run(m);
    assert_int_equal(result_of(m, 10)->code, GP_E_RATE_LIMIT);
    assert_string_equal(mock_host_rate_limited_at(m, 3, NULL), "dod");
    assert_int_equal(mock_host_n_rate_limited(m), 4);
    finish(m);
}

/* ---- task polls ----------------------------------------------------------------------- */

static void test_task_poll(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    push_fx(m, "task_status.json");
    gp_task t[4] = {
        {.cmd_id = 1, .vendor_ref = "432523532523", .kind = GP_CMD_SETPOINT, .value = -3000},
        {.cmd_id = 2, .vendor_ref = "432523532523", .kind = GP_CMD_SETPOINT, .value = -3000},
        {.cmd_id = 3, .vendor_ref = "432523532523", .kind = GP_CMD_SETPOINT, .value = 3000},
        {.cmd_id = 4, .vendor_ref = "432523532523", .kind = GP_CMD_SETPOINT, .value = 3000},
    };
    const char *codes[4] = {P1, P2, P3, "NE=77777777"};
    for (size_t i = 0; i < 4; i++) {
        t[i].target.device = i < 3 ? dev(m, codes[i]) : 0;
        t[i].target.local = UINT32_MAX;
        t[i].target.vendor_id = codes[i];
    }
    mock_host_task_poll_tasks(m, t, 4);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 1);
    const mock_http_request *r = req(m, 0);
    assert_true(ends_with(r->url, "/vpp/chargeAndDischargeStatus"));
    assert_string_equal(r->endpoint, "chargeAndDischargeStatus");
    assert_int_equal(r->priority, GP_PRIO_CONTROL);
    assert_string_equal(r->body, "{\"requestID\":432523532523}");

    const mock_result *a = task_of(m, 1);
    assert_int_equal(a->status, GP_DONE);
    assert_close(a->energy_wh, 1000000); /* chargedCapacity 1000 kWh */
    assert_string_equal(a->vendor_ref, "432523532523");
    assert_contains(a->detail, "\"execStartTime\":\"2020-02-06T00:00:10+08:00\"");
    assert_contains(a->detail, "\"execEndTime\":\"2020-02-06T00:01:10+08:00\"");
    assert_contains(a->detail, "\"remoteID\":\"12345678\"");
    cJSON *dj = cJSON_Parse(a->detail);
    assert_true(cJSON_IsObject(dj));
    cJSON_Delete(dj);
    const mock_result *b = task_of(m, 2);
    assert_int_equal(b->status, GP_PENDING);
    assert_close(b->energy_wh, 2000000);
    assert_contains(b->detail, "\"execStartTime\":\"2020-02-06T00:00:00+08:00\"");
    const mock_result *c = task_of(m, 3);
    assert_int_equal(c->status, GP_TIMEOUT);
    assert_close(c->energy_wh, 1500); /* dischargedCapacity 1.5 kWh */
    const mock_result *d = task_of(m, 4);
    assert_int_equal(d->status, GP_PENDING); /* not listed yet */
    assert_true(isnan(d->energy_wh));

    /* 20050: the vendor does not know the requestID. */
    mock_host_clear(m);
    push_fx(m, "error_20050.json");
    mock_host_task_poll(m, 5, dev(m, P1), "99", GP_CMD_SETPOINT, -1);
    mock_host_run(m);
    const mock_result *e = task_of(m, 5);
    assert_int_equal(e->status, GP_FAILED);
    assert_int_equal(e->code, 20050);
    assert_false(e->retryable);
    assert_contains(e->message, "the vendor has no task 99 (failCode 20050: The charging and "
                                "discharging task query parameter does not exist.)");

    /* A reference that is not a requestID: no request, a protocol error. */
    mock_host_clear(m);
    mock_host_task_poll(m, 6, dev(m, P1), "sim-3", GP_CMD_SETPOINT, -1);
    mock_host_task_poll(m, 7, dev(m, P1), "007", GP_CMD_SETPOINT, -1);
    assert_int_equal(task_of(m, 6)->code, GP_E_PROTOCOL);
    assert_int_equal(task_of(m, 7)->code, GP_E_PROTOCOL);
    assert_int_equal(mock_host_n_http_requests(m), 0);

    /* A single-object data (the seed's table says Map) and an unknown status value. */
    mock_host_clear(m);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":{\"plantCode\":\"" P1
                             "\",\"status\":0,\"dischargedCapacity\":2.5}}");
    mock_host_task_poll(m, 8, dev(m, P1), "12", GP_CMD_SETPOINT, 100);
    mock_host_run(m);
    assert_int_equal(task_of(m, 8)->status, GP_DONE);
    assert_close(task_of(m, 8)->energy_wh, 2500);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCode\":\"" P1
                             "\",\"status\":7}]}");
    mock_host_task_poll(m, 9, dev(m, P1), "12", GP_CMD_SETPOINT, 100);
    mock_host_run(m);
    /* The vendor knows the task: a garbled status is asked again, not a lost task. */
    assert_int_equal(task_of(m, 9)->status, GP_PENDING);
    assert_string_equal(task_of(m, 9)->vendor_ref, "12");
    assert_contains(task_of(m, 9)->message, "status for plant " P1 " under request 12 is missing "
                                            "or not 0/1/2");
    assert_true(mock_host_log_contains(m, "status for plant " P1 " under request 12"));
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCode\":\"" P1
                             "\",\"chargedCapacity\":1}]}");
    mock_host_task_poll(m, 10, dev(m, P1), "12", GP_CMD_SETPOINT, -100);
    mock_host_run(m);
    assert_int_equal(task_of(m, 10)->status, GP_PENDING);
    assert_contains(task_of(m, 10)->message, "is missing or not 0/1/2");
    finish(m);
}

/* ---- broken answers ------------------------------------------------------------------- */

typedef struct broken {
    const char *name;
    int error; /* gp_http_error */
    long status;
    const char *body;
    int code;        /* expected for reads and task polls */
    int cmd_pending; /* the vendor may have acted: a charge/discharge becomes a task to poll */
    const char *needle;
} broken;

static const broken broken_answers[] = {
    {"malformed", GP_HTTP_OK, 200, "{not json", GP_E_PROTOCOL, 1, "malformed JSON answer"},
    {"truncated", GP_HTTP_OK, 200, "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCo",
     GP_E_PROTOCOL, 1, "malformed JSON answer"},
    {"empty", GP_HTTP_OK, 200, "", GP_E_PROTOCOL, 1, "malformed JSON answer"},
    {"array", GP_HTTP_OK, 200, "[1,2]", GP_E_PROTOCOL, 1, "not a JSON object"},
    {"http500", GP_HTTP_OK, 500, "<html>oops</html>", GP_E_TRANSPORT, 1, "HTTP 500"},
    {"http503", GP_HTTP_OK, 503, NULL, GP_E_TRANSPORT, 1, "HTTP 503"},
    {"http404", GP_HTTP_OK, 404, "<html>nope</html>", 404, 0, "HTTP 404"},
    {"reset", GP_HTTP_CONNECT, 0, NULL, GP_E_TRANSPORT, 1, "transport failed"},
    {"timeout", GP_HTTP_TIMEOUT, 0, NULL, GP_E_TRANSPORT, 1, "transport failed"},
    {"too large", GP_HTTP_TOO_LARGE, 200, NULL, GP_E_PROTOCOL, 1, "over the host's size limit"},
    {"tls", GP_HTTP_TLS, 0, NULL, GP_E_TRANSPORT, 0, "transport failed"},
    {"failCode type", GP_HTTP_OK, 200, "{\"success\":false,\"failCode\":\"bad\"}", GP_E_PROTOCOL, 1,
     "failCode is not an integer"},
    {"success false", GP_HTTP_OK, 200, "{\"success\":false,\"message\":\"busy\"}", GP_E_PROTOCOL, 1,
     "success is false without a failCode (vendor: busy)"},
    {"server abnormal", GP_HTTP_OK, 200, "{\"success\":false,\"failCode\":20004,\"data\":null}",
     20004, 1, "failCode 20004: The server is abnormal."},
    {"data type", GP_HTTP_OK, 200, "{\"success\":true,\"failCode\":0,\"data\":\"x\"}",
     GP_E_PROTOCOL, 1, "data is not a list"},
};

static void push_broken(mock_host *m, const broken *b)
{
    mock_http_response r = {
        .error = b->error, .error_msg = "transport failed", .status = b->status, .body = b->body};
    mock_host_http_push(m, &r);
}

/* The requestID of the i-th request (a chargeAndDischarge), as decimal text. */
static void request_id_of(mock_host *m, size_t i, char *out, size_t n)
{
    const char *at = strstr(req(m, i)->body, "\"requestID\":");
    if (!at) fail_msg("request #%zu has no requestID: %s", i, req(m, i)->body);
    snprintf(out, n, "%.*s", (int)strspn(at + 12, "0123456789"), at + 12);
}

static void test_broken_answers(void **state)
{
    (void)state;
    mock_host *m = discovered();
    for (size_t i = 0; i < sizeof(broken_answers) / sizeof(broken_answers[0]); i++) {
        const broken *b = &broken_answers[i];
        mock_host_clear(m);
        /* A read. */
        push_broken(m, b);
        read_all(m, 100 + i, GP_FAILED);
        const mock_result *r = mock_host_read_done(m, 0);
        if (r->code != b->code) fail_msg("%s: read code %d, want %d", b->name, r->code, b->code);
        assert_contains(r->message, "plantRealtimeKpi");
        assert_contains(r->message, b->needle);
        assert_int_equal(mock_host_n_readings(m), 0);
        /* Two commands of one request. When the vendor may have acted, each is a task to poll
         * under the request's ID: a retry would go out with a new ID and could start a second
         * task. */
        push_broken(m, b);
        gp_cmd c[2] = {mock_host_cmd(m, 10 * i + 1, dev(m, P1), GP_CMD_SETPOINT, -500),
                       mock_host_cmd(m, 10 * i + 2, dev(m, P2), GP_CMD_SETPOINT, -500)};
        mock_host_command(m, c, 2);
        mock_host_run(m);
        char id[32];
        request_id_of(m, 1, id, sizeof id);
        for (size_t k = 0; k < 2; k++) {
            const mock_result *cr = result_of(m, c[k].id);
            if (b->cmd_pending) {
                if (cr->status != GP_PENDING)
                    fail_msg("%s: command status %d, want PENDING: %s", b->name, cr->status,
                             cr->message);
                assert_string_equal(cr->vendor_ref, id);
                assert_contains(cr->message, "outcome unknown: polling request");
            } else {
                assert_int_equal(cr->status, GP_FAILED);
                if (cr->code != b->code)
                    fail_msg("%s: command code %d, want %d", b->name, cr->code, b->code);
                assert_int_equal(cr->retryable, b->code == GP_E_TRANSPORT);
            }
            assert_contains(cr->message, "chargeAndDischarge");
            assert_contains(cr->message, b->needle);
            assert_null(strchr(cr->message, '\n'));
        }
        if (b->cmd_pending) assert_true(mock_host_log_contains(m, "unknown: polling its task"));
        /* A stop can be sent again without harm: a retryable failure. */
        push_broken(m, b);
        gp_cmd stop = mock_host_cmd(m, 10 * i + 4, dev(m, P1), GP_CMD_RELEASE, 0);
        mock_host_command(m, &stop, 1);
        mock_host_run(m);
        const mock_result *sr = result_of(m, stop.id);
        assert_int_equal(sr->status, GP_FAILED);
        assert_int_equal(sr->code, b->code);
        assert_int_equal(sr->retryable, b->cmd_pending || b->code == GP_E_TRANSPORT);
        assert_contains(sr->message, b->needle);
        /* A task poll: a broken answer means "poll again", never a lost task. */
        push_broken(m, b);
        mock_host_task_poll(m, 10 * i + 3, dev(m, P1), "5", GP_CMD_SETPOINT, -500);
        mock_host_run(m);
        const mock_result *tr = task_of(m, 10 * i + 3);
        assert_int_equal(tr->status, GP_FAILED);
        assert_int_equal(tr->code, b->code);
        if (b->code == GP_E_PROTOCOL || b->code == GP_E_TRANSPORT || b->code == 20004)
            assert_true(tr->retryable);
        assert_contains(tr->message, "chargeAndDischargeStatus");
        /* Nothing sent twice. */
        assert_int_equal(mock_host_n_http_requests(m), 4);
        assert_int_equal(mock_host_n_violations(m), 0);
    }
    finish(m);
}

/* Item: a charge/discharge whose answer was lost is polled under its requestID; the vendor's
 * "no such task" (20050) then ends it for good, saying the command never arrived. The
 * knowledge survives a restart (host kv). */
static void test_unknown_outcome_polled(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 500);
    mock_http_response lost = {.error = GP_HTTP_TIMEOUT, .error_msg = "timed out after 20 s"};
    mock_host_http_push(m, &lost);
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -2000),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_SETPOINT, -2000)};
    mock_host_command(m, c, 2);
    mock_host_run(m);
    for (uint64_t id = 1; id <= 2; id++) {
        const mock_result *r = result_of(m, id);
        assert_int_equal(r->status, GP_PENDING);
        assert_string_equal(r->vendor_ref, "500");
        assert_contains(r->message, "timed out after 20 s; outcome unknown: polling request 500");
    }
    assert_int_equal(mock_host_n_http_requests(m), 1);
    /* Remembered in kv: sent at this minute, unconfirmed. */
    char key[40], line[64];
    snprintf(key, sizeof key, "sent.%lld", (long long)(mock_host_now(m) / 60000));
    snprintf(line, sizeof line, "500 %lld 1\n", (long long)mock_host_now(m));
    assert_non_null(mock_host_kv_value(m, "sent.minutes", NULL));
    assert_contains(mock_host_kv_value(m, key, NULL), line);

    /* The vendor did get it: the poll finds the task. */
    push_fx(m, "task_status.json");
    mock_host_task_poll(m, 1, dev(m, P1), "500", GP_CMD_SETPOINT, -2000);
    mock_host_run(m);
    assert_int_equal(task_of(m, 1)->status, GP_DONE);

    /* Another request whose answer was lost, then a restart: the vendor never got it. */
    mock_host_clear(m);
    mock_http_response reset = {.error = GP_HTTP_CONNECT, .error_msg = "connection reset"};
    mock_host_http_push(m, &reset);
    gp_cmd d = mock_host_cmd(m, 3, dev(m, P1), GP_CMD_SETPOINT, 1500);
    mock_host_command(m, &d, 1);
    mock_host_run(m);
    assert_int_equal(result_of(m, 3)->status, GP_PENDING);
    assert_string_equal(result_of(m, 3)->vendor_ref, "501");
    mock_host_destroy(m);
    assert_non_null(mock_host_create(m, CFG));
    push_login(m, "tok-2");
    mock_host_login(m);
    mock_host_run(m);
    push_fx(m, "error_20050.json");
    gp_task t = {.cmd_id = 3,
                 .target = {.device = 0, .local = UINT32_MAX, .vendor_id = P1},
                 .vendor_ref = "501",
                 .kind = GP_CMD_SETPOINT,
                 .value = 1500};
    mock_host_task_poll_tasks(m, &t, 1);
    mock_host_run(m);
    const mock_result *e = task_of(m, 3);
    assert_int_equal(e->status, GP_FAILED);
    assert_int_equal(e->code, 20050);
    assert_false(e->retryable);
    assert_contains(e->message, "the vendor has no task 501: the command never arrived");
    /* The lost command, the login, the status: nothing sent again. */
    assert_int_equal(mock_host_n_http_requests(m), 3);
    assert_true(ends_with(req(m, 0)->url, "/vpp/chargeAndDischarge"));
    assert_true(ends_with(req(m, 2)->url, "/vpp/chargeAndDischargeStatus"));
    finish(m);
}

/* The failCodes of the seed text (fixtures/seed_error_codes.md: section 7 verbatim, then the
 * interface lists of 5.3.6 and 5.3.9): "| No. | code | description |" rows, a row without
 * number and code continuing the one before (a page break), the first description of a code
 * winning. Fills codes/texts (texts owned by the caller, free each). Returns the count. */
static size_t seed_codes(int *codes, char **texts, size_t max)
{
    char *doc = fixture("seed_error_codes.md");
    size_t n = 0;
    int last = -1; /* index of the row a continuation belongs to, -1 after a skipped row */
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        char no[16], code[16], desc[400];
        if (line[0] != '|') continue;
        /* Split "| a | b | c |" by hand: sscanf cannot express empty cells. */
        char *cell[3] = {NULL, NULL, NULL};
        char *p = line + 1;
        for (int k = 0; k < 3 && p; k++) {
            cell[k] = p;
            p = strchr(p, '|');
            if (p) *p++ = '\0';
        }
        if (!cell[2]) continue;
        if (sscanf(cell[0], " %15[0-9]", no) != 1) no[0] = '\0';
        if (sscanf(cell[1], " %15[0-9]", code) != 1) code[0] = '\0';
        snprintf(desc, sizeof desc, "%s", cell[2] + strspn(cell[2], " "));
        for (size_t len = strlen(desc); len && desc[len - 1] == ' ';)
            desc[--len] = '\0';
        int blank = cell[0][strspn(cell[0], " ")] == '\0' && cell[1][strspn(cell[1], " ")] == '\0';
        if (!blank && !no[0]) continue; /* a header or separator row (repeated at page breaks) */
        if (blank) {
            if (last >= 0 && desc[0]) { /* continued across a page */
                char joined[800];
                snprintf(joined, sizeof joined, "%s %s", texts[last], desc);
                free(texts[last]);
                texts[last] = gp_xstrdup(joined);
            }
            continue;
        }
        last = -1;
        if (!code[0]) continue;
        int c = atoi(code);
        int seen = 0;
        for (size_t i = 0; i < n; i++)
            seen |= codes[i] == c;
        if (seen || n == max) continue;
        codes[n] = c;
        texts[n] = gp_xstrdup(desc);
        last = (int)n++;
    }
    free(doc);
    return n;
}

/* Every failCode of the seed, with the seed's own description, through a read. */
static void test_fail_codes(void **state)
{
    (void)state;
    int codes[200];
    char *texts[200];
    size_t n = seed_codes(codes, texts, 200);
    /* Section 7 has 84 rows; 20052 and 20053 come from the interface lists. */
    assert_int_equal(n, 86);
    mock_host *m = discovered();
    for (size_t i = 0; i < n; i++) {
        mock_host_clear(m);
        char body[160], want[600];
        snprintf(body, sizeof body,
                 "{\"success\":false,\"data\":null,\"failCode\":%d,\"message\":null}", codes[i]);
        mock_host_http_push_text(m, 200, body);
        read_all(m, i + 1, GP_FAILED);
        const mock_result *r = mock_host_read_done(m, 0);
        snprintf(want, sizeof want, "plantRealtimeKpi: failCode %d: %s", codes[i], texts[i]);
        assert_contains(r->message, want);
        assert_null(strstr(r->message, "unknown error code"));
        if (codes[i] == 305 || codes[i] == 30029) {
            /* Authentication: the session is dropped; the core logs in and replays. */
            assert_int_equal(r->code, GP_E_AUTH);
            assert_false(r->retryable);
            read_all(m, 1000 + i, GP_FAILED);
            assert_contains(mock_host_read_done(m, 1)->message, "not logged in");
            assert_int_equal(mock_host_n_http_requests(m), 1);
            push_login(m, "tok-again");
            mock_host_login(m);
            mock_host_run(m);
            assert_int_equal(mock_host_login_done(m, 0)->status, GP_DONE);
        } else if (codes[i] == 407) {
            assert_int_equal(r->code, GP_E_RATE_LIMIT);
            assert_true(r->retryable);
        } else {
            assert_int_equal(r->code, codes[i]);
            /* Server trouble, not the request's: 20004 and 30008 may succeed when sent again. */
            assert_int_equal(r->retryable, codes[i] == 20004 || codes[i] == 30008);
        }
        free(texts[i]);
    }
    /* 30029 to a login: the credentials, not the session; no loop. */
    mock_host_clear(m);
    mock_host_http_push_text(m, 200, "{\"success\":false,\"failCode\":30029,\"message\":null}");
    mock_host_login(m);
    mock_host_run(m);
    const mock_result *lr = mock_host_login_done(m, 0);
    assert_int_equal(lr->status, GP_FAILED);
    assert_int_equal(lr->code, GP_E_AUTH);
    assert_false(lr->retryable);
    assert_contains(lr->message, "login: failCode 30029: Authentication failed.");
    assert_int_equal(mock_host_n_http_requests(m), 1);
    /* A code the seed does not list still says what it is. */
    mock_host_clear(m);
    push_login(m, "tok-last");
    mock_host_login(m);
    mock_host_run(m);
    mock_host_http_push_text(m, 200, "{\"success\":false,\"failCode\":42,\"message\":\"odd\"}");
    gp_cmd c = mock_host_cmd(m, 999, dev(m, P1), GP_CMD_SETPOINT, -500);
    mock_host_command(m, &c, 1);
    mock_host_run(m);
    assert_contains(result_of(m, 999)->message, "failCode 42: unknown error code (vendor: odd)");
    finish(m);
}

/* ---- review fixes: capacity and power, meter, 0 W, DoD range, several batteries, 25 h ---- */

static const char devices_capacity[] =
    "{\"success\":true,\"failCode\":0,\"message\":null,\"data\":["
    "{\"plantCode\":\"" P1 "\",\"dn\":\"B1\",\"deviceTypeId\":20815,\"dataItemMap\":"
    "{\"model\":\"LUNA2000-10\",\"ratedCapacity\":10.0,\"usableCapacity\":9.0,\"dod\":90}},"
    "{\"plantCode\":\"" P1 "\",\"dn\":\"B1b\",\"deviceTypeId\":20815,\"dataItemMap\":"
    "{\"ratedCapacity\":5.0,\"usableCapacity\":4.5}},"
    "{\"plantCode\":\"" P2 "\",\"dn\":\"B2\",\"deviceTypeId\":20815,\"dataItemMap\":"
    "{\"ratedCapacity\":null,\"usableCapacity\":7.2}},"
    "{\"plantCode\":\"" P3 "\",\"dn\":\"I3\",\"deviceTypeId\":20822,\"dataItemMap\":"
    "{\"ratedPower\":5.0}}]}";

static mock_host *discovered_capacity(const char *config)
{
    mock_host *m = with(config);
    push_login(m, "tok-1");
    push_fx(m, "plants_page1.json");
    push_fx(m, "plants_page2.json");
    mock_host_http_push_text(m, 200, devices_capacity);
    mock_host_discover(m);
    mock_host_run(m);
    if (!mock_host_discovered_ok(m))
        fail_msg("discovery failed: %s", mock_host_discovered_message(m));
    return m;
}

/* batterySOC is a percentage of the rated capacity: announce ratedCapacity, usableCapacity
 * only without a rating; battery power from config battery_power_w, else unknown. */
static void test_capacity_and_power(void **state)
{
    (void)state;
    mock_host *m = discovered_capacity(CFG);
    const gp_device_info *d1 = &mock_host_device(m, dev(m, P1))->info;
    assert_close(d1->capacity_wh, 15000); /* 10 + 5 kWh rated, not 9 + 4.5 usable */
    assert_true(isnan(d1->max_charge_w) && isnan(d1->max_discharge_w));
    const gp_device_info *d2 = &mock_host_device(m, dev(m, P2))->info;
    assert_close(d2->capacity_wh, 7200); /* no rating: usableCapacity */
    finish(m);

    m = discovered_capacity("{" CFG_BODY ",\"battery_power_w\":5000}");
    for (size_t i = 0; i < 2; i++) {
        const gp_device_info *d = &mock_host_device(m, dev(m, i ? P2 : P1))->info;
        assert_close(d->max_charge_w, 5000);
        assert_close(d->max_discharge_w, 5000);
    }
    const gp_device_info *d3 = &mock_host_device(m, dev(m, P3))->info;
    assert_true(isnan(d3->max_charge_w) && isnan(d3->max_discharge_w)); /* no battery */
    finish(m);

    expect_config_error("{" CFG_BODY ",\"battery_power_w\":0}",
                        "battery_power_w: must be a number of watts above 0");
    expect_config_error("{" CFG_BODY ",\"battery_power_w\":\"5kW\"}",
                        "battery_power_w: must be a number of watts above 0");
    expect_config_error("{" CFG_BODY ",\"battery_power_w\":-1}", "battery_power_w:");
}

/* meterPower null and pmeterPower a number (or the reverse): the number is the grid power. */
static void test_read_meter_either(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_http_push_text(
        m, 200,
        "{\"success\":true,\"failCode\":0,\"data\":["
        "{\"plantCode\":\"" P1 "\",\"dataItemMap\":{\"meterPower\":null,\"pmeterPower\":-1.5}},"
        "{\"plantCode\":\"" P2 "\",\"dataItemMap\":{\"meterPower\":2.0,\"pmeterPower\":null}},"
        "{\"plantCode\":\"" P3 "\",\"dataItemMap\":{\"meterPower\":null,\"pmeterPower\":null}}]}");
    read_all(m, 1, GP_DONE);
    assert_close(mock_host_last_reading(m, dev(m, P1))->r.grid_w, 1500);
    assert_close(mock_host_last_reading(m, dev(m, P2))->r.grid_w, -2000);
    assert_true(isnan(mock_host_last_reading(m, dev(m, P3))->r.grid_w));
    finish(m);
}

/* "Hold 0 W" has no Huawei form: refused, no request. Releases still stop. */
static void test_hold_zero_watts(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    gp_cmd c[3] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, 0),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_SETPOINT, 0.4),
                   mock_host_cmd(m, 3, dev(m, P2), GP_CMD_SETPOINT, -0.3)};
    c[1].duration_s = 600;
    c[2].soc_target = 50;
    mock_host_command(m, c, 3);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 0);
    for (uint64_t id = 1; id <= 3; id++) {
        const mock_result *r = result_of(m, id);
        assert_int_equal(r->status, GP_FAILED);
        assert_int_equal(r->code, GP_E_UNSUPPORTED);
        assert_false(r->retryable);
        assert_contains(r->message, "Huawei cannot hold 0 W; send release to return the plant "
                                    "to its own mode");
    }
    finish(m);
}

/* DoD outside what a Huawei battery allows (end-of-discharge SoC 0..20 %, seed 5.3.8) is
 * refused before sending: the vendor would quietly apply the closest allowed value. */
static void test_dod_range(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    gp_cmd c[4] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_DOD, 79),
                   mock_host_cmd(m, 2, dev(m, P1), GP_CMD_DOD, 101),
                   mock_host_cmd(m, 3, dev(m, P2), GP_CMD_DOD, 50),
                   mock_host_cmd(m, 4, dev(m, P2), GP_CMD_DOD, NAN)};
    mock_host_command(m, c, 4);
    assert_int_equal(mock_host_n_http_requests(m), 0);
    for (uint64_t id = 1; id <= 4; id++) {
        const mock_result *r = result_of(m, id);
        assert_int_equal(r->status, GP_FAILED);
        assert_int_equal(r->code, GP_E_REJECTED);
        assert_contains(r->message, "is outside 80..100");
    }
    assert_contains(result_of(m, 1)->message, "dod 79 for " P1);
    /* The edges go out. */
    mock_host_clear(m);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"dn\":\"BA4372D08E0\","
                             "\"result\":0,\"setDOD\":80}]}");
    gp_cmd e = mock_host_cmd(m, 5, dev(m, P1), GP_CMD_DOD, 80);
    mock_host_command(m, &e, 1);
    mock_host_run(m);
    assert_string_equal(req(m, 0)->body, "{\"dns\":\"BA4372D08E0\",\"dod\":80}");
    assert_int_equal(result_of(m, 5)->status, GP_DONE);
    /* A DoD the vendor reports applying differently (an LG battery allows 80..88). */
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":[{\"dn\":\"BA4372D08E0\","
                             "\"result\":0,\"setDOD\":88}]}");
    gp_cmd f = mock_host_cmd(m, 6, dev(m, P1), GP_CMD_DOD, 100);
    mock_host_command(m, &f, 1);
    mock_host_run(m);
    const mock_result *r6 = result_of(m, 6);
    assert_int_equal(r6->status, GP_FAILED);
    assert_contains(r6->message, "applied DoD 88 %, not the requested 100 %");
    finish(m);
}

/* A plant with several batteries: one refused (dispatchResult 1), another took the task (0).
 * Huawei runs it on the others: a task to poll, with a note, not a failure. */
static void test_partial_dispatch(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 61);
    mock_host_http_push_text(m, 200,
                             "{\"success\":true,\"failCode\":0,\"data\":["
                             "{\"plantCode\":\"" P1 "\",\"sn\":\"a\",\"dispatchResult\":1},"
                             "{\"plantCode\":\"" P1
                             "\",\"sn\":\"b\",\"dispatchResult\":0,\"remoteID\":\"r2\"},"
                             "{\"plantCode\":\"" P2 "\",\"sn\":\"c\",\"dispatchResult\":1},"
                             "{\"plantCode\":\"" P2 "\",\"sn\":\"d\",\"dispatchResult\":1}]}");
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, 3000),
                   mock_host_cmd(m, 2, dev(m, P2), GP_CMD_SETPOINT, 3000)};
    mock_host_command(m, c, 2);
    mock_host_run(m);
    const mock_result *r1 = result_of(m, 1);
    assert_int_equal(r1->status, GP_PENDING);
    assert_string_equal(r1->vendor_ref, "61");
    assert_contains(r1->message, "plant " P1 ": 1 of its 2 batteries did not take the task");
    assert_contains(r1->detail, "\"remoteID\":\"r2\"");
    /* Every battery refused: that is a refusal. */
    const mock_result *r2 = result_of(m, 2);
    assert_int_equal(r2->status, GP_FAILED);
    assert_int_equal(r2->code, GP_E_REJECTED);
    finish(m);
}

static const char status_running[] =
    "{\"success\":true,\"failCode\":0,\"data\":[{\"plantCode\":\"" P1
    "\",\"status\":1,\"chargedCapacity\":0.5}]}";

/* A task not final 25 h after its request went out ends TIMEOUT, also after a restart. */
static void test_task_gives_up_after_25h(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 900);
    push_fx(m, "charge_discharge_ok.json");
    gp_cmd c[2] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -1000),
                   mock_host_cmd(m, 2, dev(m, P1), GP_CMD_SETPOINT, -10)};
    c[0].soc_target = 100;
    mock_host_command(m, &c[0], 1);
    mock_host_run(m);
    assert_string_equal(result_of(m, 1)->vendor_ref, "900");
    const int64_t hour = 3600000;

    /* 24 h 58 min later: still running at the vendor, still pending here. */
    mock_host_advance(m, 25 * hour - 2 * 60000);
    mock_host_http_push_text(m, 200, status_running);
    mock_host_task_poll(m, 1, dev(m, P1), "900", GP_CMD_SETPOINT, -1000);
    mock_host_run(m);
    assert_int_equal(task_of(m, 1)->status, GP_PENDING);
    /* 25 h: given up, whatever the vendor says. */
    mock_host_clear(m);
    mock_host_advance(m, 3 * 60000);
    mock_host_http_push_text(m, 200, status_running);
    mock_host_task_poll(m, 1, dev(m, P1), "900", GP_CMD_SETPOINT, -1000);
    mock_host_run(m);
    const mock_result *t = task_of(m, 1);
    assert_int_equal(t->status, GP_TIMEOUT);
    assert_contains(t->message, "task 900 for plant " P1 " is not final 25.0 h after it was sent");
    /* A poll that fails on the way at that age ends the same. */
    mock_host_clear(m);
    mock_http_response down = {.error = GP_HTTP_CONNECT, .error_msg = "connection refused"};
    mock_host_http_push(m, &down);
    mock_host_task_poll(m, 3, dev(m, P1), "900", GP_CMD_SETPOINT, -1000);
    mock_host_run(m);
    assert_int_equal(task_of(m, 3)->status, GP_TIMEOUT);
    /* The vendor's own answer wins when it is final. */
    push_fx(m, "task_status.json");
    mock_host_task_poll(m, 4, dev(m, P1), "900", GP_CMD_SETPOINT, -1000);
    mock_host_run(m);
    assert_int_equal(task_of(m, 4)->status, GP_DONE);

    /* After a restart, from the send time kept in kv. */
    mock_host_clear(m);
    push_fx(m, "charge_discharge_ok.json");
    mock_host_command(m, &c[1], 1);
    mock_host_run(m);
    assert_string_equal(result_of(m, 2)->vendor_ref, "901");
    mock_host_destroy(m);
    mock_host *m2 = with(CFG);
    mock_host_kv_copy(m2, m);
    mock_host_set_time(m2, mock_host_now(m) + 25 * hour);
    mock_host_free(m);
    push_login(m2, "tok-2");
    mock_host_login(m2);
    mock_host_run(m2);
    mock_host_http_push_text(m2, 200, status_running);
    gp_task tk = {.cmd_id = 2,
                  .target = {.device = 0, .local = UINT32_MAX, .vendor_id = P1},
                  .vendor_ref = "901",
                  .kind = GP_CMD_SETPOINT,
                  .value = -10};
    mock_host_task_poll_tasks(m2, &tk, 1);
    mock_host_run(m2);
    assert_int_equal(task_of(m2, 2)->status, GP_TIMEOUT);
    finish(m2);
}

/* The send times are kept 48 h: older minutes leave the kv store whole. */
static void test_send_times_pruned(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    mock_host_set_next_request_id(m, 10);
    push_fx(m, "charge_discharge_ok.json");
    gp_cmd c = mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -1000);
    mock_host_command(m, &c, 1);
    mock_host_run(m);
    char old_key[40];
    snprintf(old_key, sizeof old_key, "sent.%lld", (long long)(mock_host_now(m) / 60000));
    assert_non_null(mock_host_kv_value(m, old_key, NULL));
    mock_host_advance(m, 50LL * 3600000);
    push_fx(m, "charge_discharge_ok.json");
    c = mock_host_cmd(m, 2, dev(m, P1), GP_CMD_SETPOINT, -1000);
    mock_host_command(m, &c, 1);
    mock_host_run(m);
    assert_null(mock_host_kv_value(m, old_key, NULL));
    char hours[40];
    snprintf(hours, sizeof hours, "%lld", (long long)(mock_host_now(m) / 60000));
    assert_string_equal(mock_host_kv_value(m, "sent.minutes", NULL), hours);
    /* Request 10 is forgotten: no limit of ours applies to it any more. */
    mock_host_http_push_text(m, 200, status_running);
    mock_host_task_poll(m, 1, dev(m, P1), "10", GP_CMD_SETPOINT, -1000);
    mock_host_run(m);
    assert_int_equal(task_of(m, 1)->status, GP_PENDING);
    finish(m);
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void test_no_session(void **state)
{
    (void)state;
    /* Before any discovery there is no session: AUTH at once, no request, no login. */
    mock_host *m = with(CFG);
    mock_host_read(m, 1, NULL, 0);
    assert_int_equal(mock_host_n_read_done(m), 1);
    assert_int_equal(mock_host_read_done(m, 0)->code, GP_E_AUTH);
    gp_cmd c = {.id = 3,
                .target = {.device = 0, .local = UINT32_MAX, .vendor_id = P1},
                .kind = GP_CMD_SETPOINT,
                .value = -100,
                .soc_target = NAN,
                .attempt = 1};
    mock_host_command(m, &c, 1);
    assert_int_equal(result_of(m, 3)->code, GP_E_AUTH);
    gp_task t = {.cmd_id = 5, .vendor_ref = "12", .target = {.vendor_id = P1}};
    mock_host_task_poll_tasks(m, &t, 1);
    assert_int_equal(task_of(m, 5)->code, GP_E_AUTH);
    /* A command without a plant code is refused whatever the session. */
    c.id = 6;
    c.target.vendor_id = "";
    mock_host_command(m, &c, 1);
    assert_int_equal(result_of(m, 6)->code, GP_E_REJECTED);
    mock_host_run(m);
    assert_int_equal(mock_host_n_http_requests(m), 0);
    finish(m);
}

static void test_destroy_in_flight(void **state)
{
    (void)state;
    mock_host *m = discovered();
    mock_host_clear(m);
    /* Answers that never arrive before destroy: the plugin frees what it held. */
    const char *slow_body = "{\"success\":true,\"failCode\":0,\"data\":[]}";
    mock_http_response slow = {.status = 200, .body = slow_body, .delay_ms = 60000};
    for (int i = 0; i < 6; i++)
        mock_host_http_push(m, &slow);
    mock_host_read(m, 1, NULL, 0);
    gp_cmd c[3] = {mock_host_cmd(m, 1, dev(m, P1), GP_CMD_SETPOINT, -500),
                   mock_host_cmd(m, 2, dev(m, P1), GP_CMD_DOD, 80),
                   mock_host_cmd(m, 3, dev(m, P2), GP_CMD_ONOFF, 1)};
    mock_host_command(m, c, 3);
    mock_host_task_poll(m, 4, dev(m, P1), "7", GP_CMD_SETPOINT, -500);
    mock_host_login(m);
    assert_int_equal(mock_host_http_in_flight(m), 6);
    mock_host_destroy(m);
    assert_int_equal(mock_host_n_violations(m), 0);
    /* A discovery in flight too. */
    assert_non_null(mock_host_create(m, CFG));
    mock_host_http_push(m, &slow);
    mock_host_discover(m);
    mock_host_destroy(m);
    mock_host_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_login_token_in_header),
        cmocka_unit_test(test_login_token_in_cookie),
        cmocka_unit_test(test_login_without_token),
        cmocka_unit_test(test_login_refused),
        cmocka_unit_test(test_discovery_pages),
        cmocka_unit_test(test_discovery_filter),
        cmocka_unit_test(test_discovery_session_expired),
        cmocka_unit_test(test_discovery_errors),
        cmocka_unit_test(test_read_converts),
        cmocka_unit_test(test_read_seed_example),
        cmocka_unit_test(test_setpoints_batched),
        cmocka_unit_test(test_dispatch_results),
        cmocka_unit_test(test_setpoint_modes),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_dod),
        cmocka_unit_test(test_on_off),
        cmocka_unit_test(test_session_expired),
        cmocka_unit_test(test_late_305_keeps_new_session),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_task_poll),
        cmocka_unit_test(test_broken_answers),
        cmocka_unit_test(test_fail_codes),
        cmocka_unit_test(test_no_session),
        cmocka_unit_test(test_destroy_in_flight),
        cmocka_unit_test(test_login_rate_limited),
        cmocka_unit_test(test_unknown_outcome_polled),
        cmocka_unit_test(test_capacity_and_power),
        cmocka_unit_test(test_read_meter_either),
        cmocka_unit_test(test_hold_zero_watts),
        cmocka_unit_test(test_dod_range),
        cmocka_unit_test(test_partial_dispatch),
        cmocka_unit_test(test_task_gives_up_after_25h),
        cmocka_unit_test(test_send_times_pruned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
