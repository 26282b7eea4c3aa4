/* The loader accepts a well-formed plugin and refuses each broken one with a clear reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

/* The services table is not used by the test plugins' entry functions beyond storing it. */
static const gp_host host = {.size = sizeof(gp_host), .abi_major = GP_ABI_MAJOR};

static char *plugin(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s.so", GP_TEST_PLUGIN_DIR, name);
    return buf;
}

static void refused(const char *name, const char *reason)
{
    gp_plugin p;
    char err[512];
    const char *file = plugin(name);
    assert_int_equal(gp_loader_open(file, &host, &p, err, sizeof err), -1);
    print_message("# %s\n", err);
    /* One line naming the file and the reason. */
    assert_non_null(strstr(err, file));
    assert_non_null(strstr(err, reason));
    assert_null(strchr(err, '\n'));
    assert_null(p.dl);
}

static void accepts_good(void **state)
{
    gp_plugin p;
    char err[512];
    assert_int_equal(gp_loader_open(plugin("good"), &host, &p, err, sizeof err), 0);
    assert_string_equal(p.desc.name, "good");
    assert_int_equal(p.desc.abi_major, GP_ABI_MAJOR);
    assert_non_null(p.desc.create);
    char caps[64];
    assert_string_equal(gp_caps_string(p.desc.caps, caps, sizeof caps), "read,setpoint");
    gp_loader_close(&p);
}

static void refuses_no_entry(void **state)
{
    refused("noentry", "no gp_plugin_entry_v1 symbol");
}
static void refuses_bad_magic(void **state)
{
    refused("badmagic", "wrong magic");
}
static void refuses_bad_major(void **state)
{
    refused("badmajor", "built for plugin ABI 2.");
}
static void refuses_missing_mandatory(void **state)
{
    refused("nodiscover", "no discover function");
}
static void refuses_cap_without_function(void **state)
{
    refused("capnofn", "claims the SETPOINT capability but has no command function");
}
static void refuses_tasks_without_poll(void **state)
{
    refused("tasksnopoll", "no task_poll function");
}
static void refuses_null_descriptor(void **state)
{
    refused("nulldesc", "returned no descriptor");
}

static void refuses_non_library(void **state)
{
    char path[] = "/tmp/gp-notso-XXXXXX";
    int fd = mkstemp(path);
    assert_true(write(fd, "not an ELF", 10) == 10);
    close(fd);
    gp_plugin p;
    char err[512];
    assert_int_equal(gp_loader_open(path, &host, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot load"));
    unlink(path);
}

static void finds_along_path(void **state)
{
    setenv("GRIDPILOT_PLUGIN_PATH", "/nonexistent:" GP_TEST_PLUGIN_DIR, 1);
    char **path = gp_loader_search_path(NULL, 0);
    assert_string_equal(path[0], "/nonexistent");
    assert_string_equal(path[1], GP_TEST_PLUGIN_DIR);
    char *f = gp_loader_find(path, "good");
    assert_non_null(f);
    assert_string_equal(f, plugin("good"));
    free(f);
    assert_null(gp_loader_find(path, "nosuchplugin"));
    gp_loader_free_path(path);
    unsetenv("GRIDPILOT_PLUGIN_PATH");
}

static void count_file(void *ud, const char *file)
{
    (*(int *)ud)++;
    assert_non_null(strstr(file, ".so"));
}

static void scans_folder(void **state)
{
    char *path[] = {(char *)GP_TEST_PLUGIN_DIR, NULL};
    int n = 0;
    gp_loader_scan(path, count_file, &n);
    assert_int_equal(n, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_good),
        cmocka_unit_test(refuses_no_entry),
        cmocka_unit_test(refuses_bad_magic),
        cmocka_unit_test(refuses_bad_major),
        cmocka_unit_test(refuses_missing_mandatory),
        cmocka_unit_test(refuses_cap_without_function),
        cmocka_unit_test(refuses_tasks_without_poll),
        cmocka_unit_test(refuses_null_descriptor),
        cmocka_unit_test(refuses_non_library),
        cmocka_unit_test(finds_along_path),
        cmocka_unit_test(scans_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
