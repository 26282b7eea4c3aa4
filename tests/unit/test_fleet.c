/* Fleet state: ids, lookup, re-discovery, readings, staleness, site aggregates, memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fleet.h"

static gp_device_info info(const char *vendor, double cap)
{
    return (gp_device_info){.size = sizeof(gp_device_info),
                            .vendor_id = vendor,
                            .caps = GP_CAP_READ | GP_CAP_SETPOINT,
                            .capacity_wh = cap,
                            .max_charge_w = 5000,
                            .max_discharge_w = NAN,
                            .soc_min_pct = NAN,
                            .soc_max_pct = NAN};
}

static gp_reading reading(double soc, double bat, double grid)
{
    return (gp_reading){.size = sizeof(gp_reading),
                        .online = 1,
                        .soc_pct = soc,
                        .battery_w = bat,
                        .pv_w = NAN,
                        .load_w = 400,
                        .grid_w = grid,
                        .capacity_wh = NAN,
                        .max_charge_w = NAN,
                        .max_discharge_w = NAN,
                        .soc_min_pct = 20,
                        .soc_max_pct = NAN};
}

static void ids_and_lookup(void **state)
{
    gp_fleet *f = gp_fleet_new();
    assert_int_equal(gp_fleet_add_adapter(f, "fusion", 0), 0);
    assert_int_equal(gp_fleet_add_adapter(f, "home-1", 0), 1);
    char err[100];
    gp_device_info a = info("NE=123", 10000), b = info(NULL, 13500);
    assert_int_equal(gp_fleet_add(f, 0, &a, NULL, err, sizeof err), 0);
    assert_int_equal(gp_fleet_add(f, 1, &b, NULL, err, sizeof err), 1);
    assert_string_equal(gp_fleet_id(f, 0), "fusion/NE=123");
    assert_string_equal(gp_fleet_vendor(f, 0), "NE=123");
    /* A one-device adapter names its device by the adapter id alone. */
    assert_string_equal(gp_fleet_id(f, 1), "home-1");
    assert_int_equal(gp_fleet_find(f, "home-1"), 1);
    assert_int_equal(gp_fleet_find(f, "fusion/NE=999"), -1);
    assert_true(isnan(gp_fleet_cdev(f, 0)->max_discharge_w));
    gp_device_info bad = info("x\ny", 1);
    assert_int_equal(gp_fleet_add(f, 0, &bad, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "control character"));
    gp_fleet_free(f);
}

static void rediscovery_keeps_index(void **state)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "a", 0);
    char err[100];
    gp_device_info d = info("b1", 10000);
    int existed = -1;
    assert_int_equal(gp_fleet_add(f, 0, &d, &existed, err, sizeof err), 0);
    assert_int_equal(existed, 0);
    gp_reading r = reading(50, -1000, 0);
    gp_fleet_reading(f, 0, &r, 1000);
    d.capacity_wh = 12000;
    assert_int_equal(gp_fleet_add(f, 0, &d, &existed, err, sizeof err), 0);
    assert_int_equal(existed, 1);
    assert_true(gp_fleet_cdev(f, 0)->capacity_wh == 12000);
    assert_true(gp_fleet_cdev(f, 0)->soc_pct == 50); /* telemetry kept */
    assert_int_equal(gp_fleet_count(f), 1);
    gp_fleet_free(f);
}

static void readings_and_staleness(void **state)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "a", 30000);
    char err[100];
    gp_device_info d = info("b1", 10000);
    gp_fleet_add(f, 0, &d, NULL, err, sizeof err);
    assert_true(isnan(gp_fleet_age_s(f, 0, 1000)));
    gp_reading r = reading(50, -1000, 200);
    r.ts_ms = 5000;
    gp_fleet_reading(f, 0, &r, 9000);
    const gp_device *dev = gp_fleet_cdev(f, 0);
    assert_true(dev->online);
    assert_true(dev->soc_min_pct == 20); /* limits in a reading update the device */
    assert_true(gp_fleet_age_s(f, 0, 9000) == 4.0);
    gp_fleet_refresh_online(f, 34000);
    assert_true(dev->online);
    gp_fleet_refresh_online(f, 36000);
    assert_false(dev->online);
    /* A reading stamped in the future counts from now. */
    gp_reading future = reading(50, 0, 0);
    future.ts_ms = 10000000;
    gp_fleet_reading(f, 0, &future, 37000);
    assert_int_equal(dev->ts_ms, 37000);
    /* A field the vendor stops reporting is unknown, not its old value. */
    gp_reading r2 = reading(51, NAN, 0);
    gp_fleet_reading(f, 0, &r2, 40000);
    assert_true(isnan(dev->battery_w));
    gp_fleet_set_extra(f, 0, "{\"cell_mv\":[3378,3375]}");
    assert_string_equal(gp_fleet_extra(f, 0), "{\"cell_mv\":[3378,3375]}");
    gp_fleet_set_extra(f, 0, NULL);
    assert_null(gp_fleet_extra(f, 0));
    gp_fleet_free(f);
}

static void site_aggregates(void **state)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "a", 0);
    char err[100];
    for (int i = 0; i < 3; i++) {
        char v[8];
        snprintf(v, sizeof v, "b%d", i);
        gp_device_info d = info(v, i == 2 ? NAN : 10000 * (i + 1));
        gp_fleet_add(f, 0, &d, NULL, err, sizeof err);
    }
    gp_reading r0 = reading(20, -1000, 500), r1 = reading(80, 2000, -300),
               r2 = reading(NAN, NAN, 100);
    gp_fleet_reading(f, 0, &r0, 1);
    gp_fleet_reading(f, 1, &r1, 1);
    gp_fleet_reading(f, 2, &r2, 1);
    gp_site s;
    gp_fleet_site(f, &s);
    assert_int_equal(s.devices, 3);
    assert_int_equal(s.online, 3);
    assert_true(s.battery_w == 1000);
    assert_true(s.grid_w == 300);
    assert_true(s.load_w == 1200);
    assert_true(s.capacity_wh == 30000);
    /* Capacity-weighted: (10 kWh * 20% + 20 kWh * 80%) / 30 kWh = 60%. */
    assert_true(fabs(s.soc_pct - 60.0) < 1e-9);
    assert_true(isnan(s.pv_w)); /* nobody reports PV: unknown, not 0 */
    gp_fleet_free(f);
}

static void memory_per_device(void **state)
{
    gp_fleet *f = gp_fleet_new();
    gp_fleet_add_adapter(f, "fusion", 0);
    char err[100], v[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(v, sizeof v, "NE=%08d", i);
        gp_device_info d = info(v, 10000);
        assert_true(gp_fleet_add(f, 0, &d, NULL, err, sizeof err) == i);
    }
    assert_int_equal(gp_fleet_find(f, "fusion/NE=00054321"), 54321);
    size_t per = gp_fleet_bytes(f) / 100000;
    print_message("# fleet: %zu bytes per device at 100,000 devices\n", per);
    /* Flat arrays: a few hundred bytes per device, not kilobytes. */
    assert_true(per < 1024);
    gp_fleet_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_and_lookup),         cmocka_unit_test(rediscovery_keeps_index),
        cmocka_unit_test(readings_and_staleness), cmocka_unit_test(site_aggregates),
        cmocka_unit_test(memory_per_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
