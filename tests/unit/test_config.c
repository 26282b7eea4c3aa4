/* Configuration: defaults, relative paths, secrets, and every problem named by its path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "str.h"
#include "tariff.h"
#include "timeutil.h"

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/gp-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/site.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void put(fixture *f, const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", f->dir, name);
    write_file(p, text);
}

/* Does some diagnostic line contain all of the given fragments? */
static int has(const gp_diag *d, const char *a, const char *b)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->lines[i], a) && (!b || strstr(d->lines[i], b))) return 1;
    return 0;
}

static void dump(const gp_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "# diag: %s\n", d->lines[i]);
}

static void defaults_and_paths(void **state)
{
    fixture *f = *state;
    put(f, "s.lua", "return { decide = function() end }");
    put(f, "ca.pem", "x");
    write_file(f->path, "{\"plugin_path\": [\"plugins\", \"/opt/p\"],"
                        " \"strategy\": {\"file\": \"s.lua\", \"params\": {\"cheap\": 0.1}},"
                        " \"adapters\": [{\"id\": \"sim\", \"plugin\": \"sim\", \"ca_file\":"
                        " \"./ca.pem\", \"task_poll\": \"3m\"}]}");
    gp_diag d = {0};
    gp_config *c = gp_config_load(f->path, 0, &d);
    dump(&d);
    assert_non_null(c);
    assert_string_equal(c->site, "gridpilot");
    assert_int_equal(c->tick_ms, 60000);
    assert_int_equal(c->on_exit, GP_ON_EXIT_RELEASE);
    assert_string_equal(c->timezone, "UTC");
    char want[256];
    snprintf(want, sizeof want, "%s/var", f->dir);
    assert_string_equal(c->state_dir, want);
    snprintf(want, sizeof want, "%s/plugins", f->dir);
    assert_string_equal(c->plugin_path[0], want);
    assert_string_equal(c->plugin_path[1], "/opt/p");
    snprintf(want, sizeof want, "%s/s.lua", f->dir);
    assert_string_equal(c->strategy_file, want);
    assert_string_equal(c->strategy_params, "{\"cheap\":0.1}");
    assert_int_equal(c->strategy_timeout_ms, 200);
    assert_int_equal(c->strategy_memory, 64u << 20);
    assert_true(isinf(c->site_import_w));
    assert_int_equal(c->n_adapters, 1);
    assert_int_equal(c->adapters[0].poll_ms, 60000);
    assert_int_equal(c->adapters[0].task_poll_ms, 180000);
    assert_int_equal(c->adapters[0].tls_verify, 1);
    snprintf(want, sizeof want, "%s/ca.pem", f->dir);
    assert_string_equal(c->adapters[0].ca_file, want);
    assert_int_equal(c->max_attempts, 3);
    gp_config_free(c);
}

static void every_problem_named(void **state)
{
    fixture *f = *state;
    write_file(f->path,
               "{\"tik\": \"60s\", \"tick\": \"fast\", \"on_exit\": \"stop\","
               " \"timezone\": \"Mars/Olympus\","
               " \"strategy\": {\"file\": \"missing.lua\", \"params\": 3},"
               " \"limits\": {\"site_import_w\": -5, \"site_import_w\": 5},"
               " \"api\": {\"listen\": \"8321\"},"
               " \"adapters\": [{\"id\": \"a\", \"plugin\": \"sim\", \"poll\": \"5 minutes\","
               " \"tls_verify\": \"yes\", \"confg\": {}},"
               " {\"plugin\": \"sim\"}, {\"id\": \"a\", \"plugin\": \"sim\"},"
               " {\"id\": \"bad id!\", \"plugin\": \"x\", \"config\": []}]}");
    gp_diag d = {0};
    assert_null(gp_config_load(f->path, 0, &d));
    dump(&d);
    assert_true(has(&d, "tik: unknown key", NULL));
    assert_true(has(&d, "tick: ", "'fast' is not a duration"));
    assert_true(has(&d, "on_exit: ", "release"));
    assert_true(has(&d, "timezone: ", "Mars/Olympus"));
    assert_true(has(&d, "strategy.file: ", "missing.lua"));
    assert_true(has(&d, "strategy.params: ", "object"));
    assert_true(has(&d, "limits.site_import_w: ", "between"));
    assert_true(has(&d, "limits.site_import_w: given twice", NULL));
    assert_true(has(&d, "api.listen: ", "host:port"));
    assert_true(has(&d, "adapters[0].poll: ", "5 minutes"));
    assert_true(has(&d, "adapters[0].tls_verify: ", "true or false"));
    assert_true(has(&d, "adapters[0].confg: unknown key", NULL));
    assert_true(has(&d, "adapters[1].id: missing", NULL));
    assert_true(has(&d, "adapters[2].id: ", "already used by adapters[0]"));
    assert_true(has(&d, "adapters[3].id: ", "letters, digits"));
    assert_true(has(&d, "adapters[3].config: must be an object", NULL));
    assert_int_equal(d.n, 16);
    gp_diag_clear(&d);

    /* With `partial` (check), the config still comes back so plugins can be checked. */
    gp_config *c = gp_config_load(f->path, 1, &d);
    assert_non_null(c);
    assert_int_equal(c->n_adapters, 4);
    gp_config_free(c);
    gp_diag_clear(&d);
}

static void syntax_errors(void **state)
{
    fixture *f = *state;
    write_file(f->path, "{\n  \"site\": \"x\",\n  \"adapters\": [\n    {\"id\": \"a\",}\n  ]\n}\n");
    gp_diag d = {0};
    assert_null(gp_config_load(f->path, 0, &d));
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.lines[0], "line 4"));
    gp_diag_clear(&d);
    write_file(f->path, "[1, 2]");
    assert_null(gp_config_load(f->path, 0, &d));
    assert_true(has(&d, "must be a JSON object", NULL));
    gp_diag_clear(&d);
    assert_null(gp_config_load("/nonexistent/gp.json", 0, &d));
    assert_true(has(&d, "cannot read", "No such file"));
    gp_diag_clear(&d);
    write_file(f->path, "{\"adapters\": []}");
    assert_null(gp_config_load(f->path, 0, &d));
    assert_true(has(&d, "adapters: is empty", NULL));
    gp_diag_clear(&d);
}

static void secrets(void **state)
{
    fixture *f = *state;
    const char *adapters = "\"adapters\": [{\"id\": \"a\", \"plugin\": \"sim\"}]";
    char text[512];

    setenv("GP_TEST_TOKEN", "tok-from-env-123", 1);
    snprintf(text, sizeof text, "{\"api\": {\"token_env\": \"GP_TEST_TOKEN\"}, %s}", adapters);
    write_file(f->path, text);
    gp_diag d = {0};
    gp_config *c = gp_config_load(f->path, 0, &d);
    assert_non_null(c);
    assert_string_equal(c->api_token, "tok-from-env-123");
    assert_string_equal(c->api_listen, "127.0.0.1:8321");
    gp_config_free(c);

    put(f, "token.txt", "tok-from-file-456\n");
    snprintf(text, sizeof text, "{\"api\": {\"token_file\": \"token.txt\"}, %s}", adapters);
    write_file(f->path, text);
    c = gp_config_load(f->path, 0, &d);
    assert_non_null(c);
    assert_string_equal(c->api_token, "tok-from-file-456");
    gp_config_free(c);

    unsetenv("GP_TEST_UNSET");
    snprintf(text, sizeof text, "{\"api\": {\"token_env\": \"GP_TEST_UNSET\"}, %s}", adapters);
    write_file(f->path, text);
    assert_null(gp_config_load(f->path, 0, &d));
    assert_true(has(&d, "api.token_env: ", "GP_TEST_UNSET is not set"));
    gp_diag_clear(&d);

    snprintf(text, sizeof text,
             "{\"api\": {\"token\": \"plain-secret-789\", \"token_env\": \"GP_TEST_TOKEN\"}, %s}",
             adapters);
    write_file(f->path, text);
    assert_null(gp_config_load(f->path, 0, &d));
    assert_true(has(&d, "api: give only one of token", NULL));
    /* Whatever goes wrong, a secret value is never part of a message. */
    for (size_t i = 0; i < d.n; i++)
        assert_null(strstr(d.lines[i], "plain-secret"));
    gp_diag_clear(&d);

    /* Not even a syntax error quotes the file: it may stop inside or before a secret. */
    static const char *broken[] = {
        "{\"api\": {\"token\": \"plain-secret-789\n}}",
        "{\"api\": {\"token\": plain-secret-789}}",
        "{\"api\": {\"token\": \"plain-\\qsecret\"}}",
    };
    for (size_t k = 0; k < sizeof broken / sizeof *broken; k++) {
        write_file(f->path, broken[k]);
        assert_null(gp_config_load(f->path, 0, &d));
        assert_int_equal(d.n, 1);
        assert_non_null(strstr(d.lines[0], "line 1, column"));
        assert_null(strstr(d.lines[0], "secret"));
        gp_diag_clear(&d);
    }
}

static void strategy_and_dispatch_options(void **state)
{
    fixture *f = *state;
    put(f, "s.lua", "return {}");
    write_file(f->path,
               "{\"strategy\": {\"file\": \"s.lua\", \"timeout\": \"50ms\","
               " \"memory_limit_mb\": 8},"
               " \"dispatch\": {\"max_attempts\": 5, \"command_timeout\": \"30s\"},"
               " \"tariff\": {\"default\": {\"import\": 0.25, \"export\": 0.05}},"
               " \"on_exit\": \"hold\", \"tick\": \"5s\", \"timezone\": "
               "\"Europe/London\","
               " \"adapters\": [{\"id\": \"a\", \"plugin\": \"sim\", \"poll\": \"10s\"}]}");
    gp_diag d = {0};
    gp_config *c = gp_config_load(f->path, 0, &d);
    dump(&d);
    assert_non_null(c);
    assert_int_equal(c->strategy_timeout_ms, 50);
    assert_int_equal(c->strategy_memory, 8u << 20);
    assert_int_equal(c->max_attempts, 5);
    assert_int_equal(c->command_timeout_ms, 30000);
    assert_true(c->has_tariff);
    assert_true(c->tariff_import == 0.25 && c->tariff_export == 0.05);
    assert_int_equal(c->on_exit, GP_ON_EXIT_HOLD);
    assert_int_equal(c->tick_ms, 5000);
    assert_int_equal(c->adapters[0].poll_ms, 10000);
    gp_config_free(c);
}

static int64_t iso_ms(const char *iso)
{
    int64_t ms = 0;
    char err[200];
    assert_int_equal(gp_parse_time_ms(iso, &ms, err, sizeof err), 0);
    return ms;
}

/* Tariffs are loaded with the config: files relative to its folder, periods in its time
 * zone, and their problems among the config's, by JSON path, file and line. */
static void tariffs(void **state)
{
    fixture *f = *state;
    const char *ad = "\"adapters\": [{\"id\": \"a\", \"plugin\": \"sim\"}]";
    char text[1024];
    put(f, "p.csv",
        "start,stop,import,export\n"
        "2026-01-01T00:00:00Z,2026-01-01T00:30:00Z,0.1,0.02\n"
        "2026-01-01T00:30:00Z,2026-01-01T01:00:00Z,0.2,\n");
    snprintf(text, sizeof text,
             "{\"tariff\": {\"file\": \"p.csv\", \"default\": {\"export\": 0.04}}, %s}", ad);
    write_file(f->path, text);
    gp_diag d = {0};
    gp_config *c = gp_config_load(f->path, 0, &d);
    dump(&d);
    assert_non_null(c);
    assert_true(c->has_tariff && isnan(c->tariff_import) && c->tariff_export == 0.04);
    assert_non_null(c->tariff);
    assert_true(gp_tariff_import(c->tariff, iso_ms("2026-01-01T00:45:00Z")) == 0.2);
    assert_true(gp_tariff_export(c->tariff, iso_ms("2026-01-01T00:45:00Z")) == 0.04);
    assert_true(isnan(gp_tariff_import(c->tariff, iso_ms("2026-01-01T01:00:00Z"))));
    gp_config_free(c);

    /* The fixed price is a tariff too. */
    snprintf(text, sizeof text, "{\"tariff\": {\"default\": {\"import\": 0.3}}, %s}", ad);
    write_file(f->path, text);
    c = gp_config_load(f->path, 0, &d);
    assert_non_null(c);
    assert_true(gp_tariff_import(c->tariff, 0) == 0.3);
    gp_config_free(c);

    /* Periods in the configured zone: 16:00 BST is 15:00Z in summer. */
    snprintf(text, sizeof text,
             "{\"timezone\": \"Europe/London\", \"tariff\": {\"periods\": [{\"from\": "
             "\"16:00\", \"to\": \"19:00\", \"import\": 0.35, \"export\": 0.15}], \"default\": "
             "{\"import\": 0.25, \"export\": 0.05}}, %s}",
             ad);
    write_file(f->path, text);
    c = gp_config_load(f->path, 0, &d);
    dump(&d);
    assert_non_null(c);
    assert_true(gp_tariff_import(c->tariff, iso_ms("2026-06-01T14:59:59Z")) == 0.25);
    assert_true(gp_tariff_import(c->tariff, iso_ms("2026-06-01T15:00:00Z")) == 0.35);
    assert_true(gp_tariff_import(c->tariff, iso_ms("2026-12-01T15:00:00Z")) == 0.25);
    gp_config_free(c);

    /* Problems: in the file (by line), in periods, in keys. */
    put(f, "bad.csv",
        "start,stop,import,export\n"
        "2026-01-01T00:00:00Z,2026-01-01T00:30:00Z,0.1,0.02\n"
        "2026-01-01T01:00:00Z,2026-01-01T00:30:00Z,0.2,\n");
    snprintf(text, sizeof text,
             "{\"tariff\": {\"file\": \"bad.csv\", \"unit\": \"euros\", \"colour\": 1}, %s}", ad);
    write_file(f->path, text);
    assert_null(gp_config_load(f->path, 0, &d));
    char want[256];
    snprintf(want, sizeof want,
             "tariff.file: %s/bad.csv line 3: stop 2026-01-01T00:30:00Z is before start "
             "2026-01-01T01:00:00Z",
             f->dir);
    assert_true(has(&d, want, NULL));
    assert_true(has(&d, "tariff.unit: must be", NULL));
    assert_true(has(&d, "tariff.colour: unknown key", NULL));
    gp_diag_clear(&d);

    snprintf(text, sizeof text, "{\"tariff\": {\"file\": \"nowhere.csv\"}, %s}", ad);
    write_file(f->path, text);
    assert_null(gp_config_load(f->path, 0, &d));
    snprintf(want, sizeof want, "tariff.file: %s/nowhere.csv: cannot read", f->dir);
    assert_true(has(&d, want, NULL));
    gp_diag_clear(&d);

    snprintf(text, sizeof text,
             "{\"tariff\": {\"periods\": [{\"from\": \"16:00\", \"to\": \"19:00\", \"import\": "
             "0.3}, {\"from\": \"18:00\", \"to\": \"18:00\", \"import\": 0.1}]}, %s}",
             ad);
    write_file(f->path, text);
    assert_null(gp_config_load(f->path, 0, &d));
    assert_true(has(&d, "tariff.periods[1].to: the same as from", NULL));
    gp_diag_clear(&d);

    /* An unknown zone is reported once, not again by the periods; `check` still gets the
     * config (without a tariff). */
    snprintf(text, sizeof text,
             "{\"timezone\": \"Europe/Atlantis\", \"tariff\": {\"periods\": [{\"from\": "
             "\"16:00\", \"to\": \"19:00\", \"import\": 0.3}], \"file\": 7}, %s}",
             ad);
    write_file(f->path, text);
    c = gp_config_load(f->path, 1, &d);
    dump(&d);
    assert_non_null(c);
    assert_null(c->tariff);
    assert_true(has(&d, "timezone: unknown time zone 'Europe/Atlantis'", NULL));
    assert_true(has(&d, "tariff.file: must be a non-empty string", NULL));
    assert_int_equal(d.n, 2);
    gp_config_free(c);
    gp_diag_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_and_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(every_problem_named, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(strategy_and_dispatch_options, setup, teardown),
        cmocka_unit_test_setup_teardown(tariffs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
