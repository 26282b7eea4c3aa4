/* Durations, ISO-8601 times, JSON text building, paths, id map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idmap.h"
#include "json.h"
#include "log.h"
#include "path.h"
#include "str.h"
#include "timeutil.h"

static void durations(void **state)
{
    int64_t ms;
    char err[200];
    assert_int_equal(gp_parse_duration_ms("500ms", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(gp_parse_duration_ms("30s", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(gp_parse_duration_ms("5m", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(gp_parse_duration_ms("1h", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(gp_parse_duration_ms("1d", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(gp_parse_duration_ms("1.5h", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(gp_parse_duration_ms("30", &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "unit"));
    assert_int_equal(gp_parse_duration_ms("-5s", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_duration_ms("5 s", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_duration_ms("", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_duration_ms("0x10s", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_duration_ms("1e3s", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_duration_ms("fast", &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "'fast'"));
    char buf[32];
    gp_format_duration(90000, buf, sizeof buf);
    assert_string_equal(buf, "90s");
    gp_format_duration(120000, buf, sizeof buf);
    assert_string_equal(buf, "2m");
    gp_format_duration(250, buf, sizeof buf);
    assert_string_equal(buf, "250ms");
}

static void times(void **state)
{
    int64_t ms;
    char err[200], buf[40];
    assert_int_equal(gp_parse_time_ms("2026-01-01T00:00:00Z", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1767225600000LL);
    assert_int_equal(gp_parse_time_ms("2026-01-01", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1767225600000LL);
    /* Days that do not exist are errors, not the next month. */
    assert_int_equal(gp_parse_time_ms("2026-02-29", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_time_ms("2026-04-31T00:00:00Z", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_time_ms("2028-02-29", &ms, err, sizeof err), 0);
    assert_int_equal(gp_parse_time_ms("2026-12-31", &ms, err, sizeof err), 0);
    assert_int_equal(gp_parse_time_ms("2026-01-01T01:00:00+01:00", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1767225600000LL);
    assert_int_equal(gp_parse_time_ms("2020-02-06T00:00:10+08:00", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1580918410000LL);
    assert_int_equal(gp_parse_time_ms("2026-03-29T01:30:00.250Z", &ms, err, sizeof err), 0);
    gp_format_time(ms, buf, sizeof buf);
    assert_string_equal(buf, "2026-03-29T01:30:00.250Z");
    assert_int_equal(gp_parse_time_ms("2026-01-01T00:00:00", &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "time zone"));
    assert_int_equal(gp_parse_time_ms("2026-13-01", &ms, err, sizeof err), -1);
    assert_int_equal(gp_parse_time_ms("yesterday", &ms, err, sizeof err), -1);
    /* Leap day and pre-epoch dates. */
    assert_int_equal(gp_parse_time_ms("2024-02-29T12:00:00Z", &ms, err, sizeof err), 0);
    gp_format_time(ms, buf, sizeof buf);
    assert_string_equal(buf, "2024-02-29T12:00:00.000Z");
    assert_int_equal(gp_parse_time_ms("1969-12-31T23:59:59Z", &ms, err, sizeof err), 0);
    assert_int_equal(ms, -1000);
}

static void json_text(void **state)
{
    gp_str *s = gp_str_new();
    gp_str_json(s, "a\"b\\c\n\x01");
    assert_string_equal(gp_str_cstr(s), "\"a\\\"b\\\\c\\n\\u0001\"");
    gp_str_reset(s);
    gp_str_json_num(s, NAN);
    gp_str_puts(s, ",");
    gp_str_json_num(s, 5000);
    gp_str_puts(s, ",");
    gp_str_json_num(s, -0.25);
    assert_string_equal(gp_str_cstr(s), "null,5000,-0.25");
    /* What we write, the host parser reads back. */
    gp_str_reset(s);
    gp_str_puts(s, "{\"k\":");
    gp_str_json(s, "tab\there");
    gp_str_puts(s, "}");
    char err[200];
    gp_json *j = gp_json_parse(gp_str_cstr(s), s->len, err, sizeof err);
    assert_non_null(j);
    assert_string_equal(gp_json_str(gp_json_get(j, "k")), "tab\there");
    gp_json_free(j);
    gp_str_free(s);
}

static void json_errors(void **state)
{
    char err[200];
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    assert_null(gp_json_parse(text, strlen(text), err, sizeof err));
    assert_non_null(strstr(err, "line 3"));
    assert_null(gp_json_parse("{\"a\": [1, 2", 11, err, sizeof err));
    assert_non_null(strstr(err, "end of JSON"));
    char deep[3000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    assert_null(gp_json_parse(deep, strlen(deep), err, sizeof err));
    assert_non_null(strstr(err, "nested more than"));
    gp_json *j = gp_json_parse("{\"n\":\"102.0\",\"s\":\"x\",\"b\":true}", 30, err, sizeof err);
    assert_non_null(j);
    assert_true(gp_json_num(gp_json_get(j, "n")) == 102.0);
    assert_true(isnan(gp_json_num(gp_json_get(j, "s"))));
    assert_true(isnan(gp_json_num(gp_json_get(j, "missing"))));
    assert_int_equal(gp_json_bool(gp_json_get(j, "b"), 0), 1);
    assert_int_equal(gp_json_type(gp_json_get(j, "missing")), GP_JSON_MISSING);
    assert_int_equal(gp_json_len(j), 3);
    assert_string_equal(gp_json_key(gp_json_at(j, 1)), "s");
    gp_json_free(j);
}

static void paths(void **state)
{
    char *p = gp_path_resolve("/etc/gridpilot", "strategies/../x.lua");
    assert_string_equal(p, "/etc/gridpilot/x.lua");
    free(p);
    p = gp_path_resolve("/etc/gridpilot", "/abs/./y");
    assert_string_equal(p, "/abs/y");
    free(p);
    p = gp_path_resolve("/a/b", "../../../c");
    assert_string_equal(p, "/c");
    free(p);
    p = gp_path_dirname_abs("/srv/site/config.json");
    assert_string_equal(p, "/srv/site");
    free(p);
}

static void idmap(void **state)
{
    gp_idmap m = {0};
    for (uint64_t k = 1; k <= 5000; k++)
        gp_idmap_put(&m, k * 7919, (uint32_t)k);
    for (uint64_t k = 1; k <= 5000; k += 2)
        gp_idmap_del(&m, k * 7919);
    uint32_t v;
    for (uint64_t k = 1; k <= 5000; k++) {
        int found = gp_idmap_get(&m, k * 7919, &v);
        assert_int_equal(found, k % 2 == 0);
        if (found) assert_int_equal(v, k);
    }
    assert_int_equal(m.n, 2500);
    gp_idmap_clear(&m);
}

static void secrets_masked(void **state)
{
    /* Route stderr to a file and check a registered secret never shows. */
    char path[] = "/tmp/gp-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    gp_log_add_secret("hunter22-secret");
    gp_log(GP_LOG_ERROR, "test", "login with hunter22-secret failed\nsecond line");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *text = gp_read_file(path, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "hunter22"));
    assert_non_null(strstr(text, "login with *** failed\n"));
    /* A multi-line event: every line carries the prefix. */
    assert_non_null(strstr(text, "error test: second line\n"));
    free(text);
    close(fd);
    unlink(path);
    gp_log_reset();
}

/* Data files are regular files: a device never ends and a FIFO blocks the open. */
static void read_file_kinds(void **state)
{
    (void)state;
    size_t len = 0;
    errno = 0;
    assert_null(gp_read_file("/dev/zero", &len));
    assert_int_equal(errno, EINVAL);
    assert_string_equal(gp_read_file_why(EINVAL),
                        "not a regular file (a device, a FIFO or a socket)");
    assert_null(gp_read_file("/tmp", &len));
    assert_int_equal(errno, EISDIR);
    assert_null(gp_read_file("/nonexistent/file", &len));
    assert_int_equal(errno, ENOENT);
    char path[] = "/tmp/gp-util-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    char *text = gp_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, 3);
    assert_string_equal(text, "abc");
    free(text);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations),      cmocka_unit_test(times),
        cmocka_unit_test(json_text),      cmocka_unit_test(json_errors),
        cmocka_unit_test(paths),          cmocka_unit_test(idmap),
        cmocka_unit_test(secrets_masked), cmocka_unit_test(read_file_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
