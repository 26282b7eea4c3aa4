/* Timers and the clock: real libev timers, then virtual time (the switch is one-way, so the
 * real-mode tests run first). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ev.h>
#include <string.h>

#include "timer.h"
#include "timeutil.h"

/* What fired, in order, and the clock each callback saw. */
static struct {
    int n;
    int id[32];
    int64_t at[32];
} fired;

static int inside_start;

static void reset(void)
{
    memset(&fired, 0, sizeof fired);
}

static void record(void *ud)
{
    assert_false(inside_start);
    assert_true(fired.n < 32);
    fired.id[fired.n] = (int)(intptr_t)ud;
    fired.at[fired.n] = gp_now_ms();
    fired.n++;
}

static gp_timer *start(double after_s, gp_timer_cb cb, int id)
{
    inside_start = 1;
    gp_timer *t = gp_timer_start(after_s, cb, (void *)(intptr_t)id);
    inside_start = 0;
    assert_non_null(t);
    return t;
}

static int deadline_hit;

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    deadline_hit = 1;
    ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until `want` callbacks fired; fails instead of hanging. */
static void run_until_fired(int want)
{
    ev_timer deadline;
    deadline_hit = 0;
    ev_timer_init(&deadline, on_deadline, 5.0, 0.);
    ev_timer_start(gp_loop(), &deadline);
    while (fired.n < want && !deadline_hit)
        ev_run(gp_loop(), EVRUN_ONCE);
    ev_timer_stop(gp_loop(), &deadline);
    assert_false(deadline_hit);
}

/* ---- real mode ---- */

static void test_real_fires_from_loop_in_order(void **state)
{
    (void)state;
    reset();
    assert_false(gp_clock_is_virtual());
    int64_t wall = gp_wall_ms();
    assert_true(gp_now_ms() >= wall - 1000 && gp_now_ms() <= wall + 1000);

    double t0 = gp_mono_s();
    start(0.05, record, 2);
    start(0.0, record, 1); /* due now: still never inside gp_timer_start */
    start(-1.0, record, 0);
    assert_int_equal(fired.n, 0);
    run_until_fired(3);
    assert_int_equal(fired.n, 3);
    assert_int_equal(fired.id[2], 2);
    assert_true(gp_mono_s() - t0 >= 0.045);
}

static void test_real_stop_before_fire(void **state)
{
    (void)state;
    reset();
    gp_timer *t = start(0.01, record, 1);
    start(0.03, record, 2);
    gp_timer_stop(t);
    gp_timer_stop(NULL);
    run_until_fired(1);
    assert_int_equal(fired.n, 1);
    assert_int_equal(fired.id[0], 2);
}

static void test_real_stop_all(void **state)
{
    (void)state;
    reset();
    start(0.0, record, 1);
    start(10.0, record, 2);
    gp_timer_stop_all();
    /* no active watcher is left in the loop, so nothing can fire */
    assert_false(ev_run(gp_loop(), EVRUN_NOWAIT));
    assert_int_equal(fired.n, 0);
}

/* ---- virtual mode ---- */

static void test_virtual_order_and_clock(void **state)
{
    (void)state;
    reset();
    gp_clock_set_virtual(1000000);
    assert_true(gp_clock_is_virtual());
    assert_int_equal(gp_now_ms(), 1000000);
    start(3.0, record, 4);
    start(1.0, record, 1);
    start(2.0, record, 3);
    start(1.0, record, 2); /* same due time as id 1, started later */
    start(0.0, record, 0);
    assert_int_equal(fired.n, 0); /* after_s 0 never fires inside the start */

    gp_clock_advance(1001000);
    assert_int_equal(fired.n, 3);
    assert_int_equal(gp_now_ms(), 1001000);

    gp_clock_advance(1010000);
    assert_int_equal(fired.n, 5);
    int64_t due[] = {1000000, 1001000, 1001000, 1002000, 1003000};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fired.id[i], i);
        assert_int_equal(fired.at[i], due[i]);
    }
    assert_int_equal(gp_now_ms(), 1010000);
}

static gp_timer *victim;

/* Starts follow-ups: two due inside the current advance, one beyond it. */
static void chain(void *ud)
{
    record(ud);
    int id = (int)(intptr_t)ud;
    if (id == 1) {
        start(0.5, record, 2);  /* before the pre-existing id 4 */
        start(0.0, chain, 3);   /* now: after everything already due now */
        start(60.0, record, 9); /* beyond this advance */
    } else if (id == 3) {
        start(1.0, record, 5); /* due after id 4 but still inside the advance */
        gp_timer_stop(victim); /* due in this advance: must not fire */
    }
}

static void test_virtual_callbacks_start_and_stop(void **state)
{
    (void)state;
    reset();
    int64_t t0 = gp_now_ms();
    start(1.0, chain, 1);
    start(1.8, record, 4);
    victim = start(1.9, record, 8);
    gp_clock_advance(t0 + 10000);
    assert_int_equal(fired.n, 5);
    int want_id[] = {1, 3, 2, 4, 5};
    int64_t want_at[] = {1000, 1000, 1500, 1800, 2000};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fired.id[i], want_id[i]);
        assert_int_equal(fired.at[i] - t0, want_at[i]);
    }
    assert_int_equal(gp_now_ms(), t0 + 10000);

    gp_clock_advance(t0 + 61000);
    assert_int_equal(fired.n, 6);
    assert_int_equal(fired.id[5], 9);
    assert_int_equal(fired.at[5] - t0, 61000);
}

static void stop_self(void *ud)
{
    record(ud);
    gp_timer_stop(victim); /* its own handle: harmless, freed after return */
}

static void test_virtual_stop(void **state)
{
    (void)state;
    reset();
    int64_t t0 = gp_now_ms();
    gp_timer *a = start(1.0, record, 1);
    start(2.0, record, 2);
    victim = start(3.0, stop_self, 3);
    gp_timer_stop(a);
    gp_timer_stop(NULL);
    gp_clock_advance(t0 + 5000);
    assert_int_equal(fired.n, 2);
    assert_int_equal(fired.id[0], 2);
    assert_int_equal(fired.id[1], 3);
}

static void test_virtual_never_touches_libev(void **state)
{
    (void)state;
    reset();
    start(0.0, record, 1);
    start(1.0, record, 2);
    assert_false(ev_run(gp_loop(), EVRUN_NOWAIT));
    assert_int_equal(fired.n, 0);
    gp_clock_advance(gp_now_ms());
    assert_int_equal(fired.n, 1);
    gp_timer_stop_all();
}

static void test_virtual_stop_all(void **state)
{
    (void)state;
    reset();
    int64_t t0 = gp_now_ms();
    for (int i = 0; i < 100; i++)
        start(i * 0.1, record, i);
    gp_timer_stop_all();
    gp_clock_advance(t0 + 100000);
    assert_int_equal(fired.n, 0);
    /* the module still works after a stop_all */
    start(1.0, record, 7);
    gp_clock_advance(t0 + 200000);
    assert_int_equal(fired.n, 1);
    assert_int_equal(fired.at[0], t0 + 101000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_fires_from_loop_in_order),
        cmocka_unit_test(test_real_stop_before_fire),
        cmocka_unit_test(test_real_stop_all),
        cmocka_unit_test(test_virtual_order_and_clock),
        cmocka_unit_test(test_virtual_callbacks_start_and_stop),
        cmocka_unit_test(test_virtual_stop),
        cmocka_unit_test(test_virtual_never_touches_libev),
        cmocka_unit_test(test_virtual_stop_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
