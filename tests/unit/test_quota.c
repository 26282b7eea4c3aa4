/* Quotas: sliding windows and the quota-scheduled request queue, on a virtual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"
#include "ratelimit.h"
#include "timer.h"

#define T0 1767225600000LL

static void window_counts_a_sliding_minute(void **state)
{
    gp_window w;
    gp_window_init(&w, 10, 60000);
    uint32_t slots[10];
    for (int i = 0; i < 10; i++) {
        assert_true(gp_window_ready_at(&w, T0 + i * 1000) <= T0 + i * 1000);
        slots[i] = gp_window_take(&w, T0 + i * 1000);
    }
    /* All ten in flight: nothing until an answer comes. */
    assert_true(gp_window_ready_at(&w, T0 + 10000) == GP_WINDOW_IN_FLIGHT);
    /* Answers 100 ms after each send: the period counts from the answer. */
    for (int i = 0; i < 10; i++)
        gp_window_done(&w, slots[i], T0 + i * 1000 + 100);
    int64_t at = gp_window_ready_at(&w, T0 + 10000);
    assert_true(at >= T0 + 60100 && at <= T0 + 62100);
    assert_int_equal(gp_window_left(&w, T0 + 10000), 0);
    assert_int_equal(gp_window_left(&w, at), 1);
    uint32_t s = gp_window_take(&w, at);
    gp_window_done(&w, s, at + 100);
    /* Then the second one's turn: a sliding window, not a fixed minute. */
    assert_true(gp_window_ready_at(&w, at) >= T0 + 61100);
    gp_window_block(&w, T0 + 300000);
    assert_true(gp_window_ready_at(&w, T0 + 100000) == T0 + 300000);
    assert_int_equal(w.limited, 1);
    gp_window_free(&w);
}

/* A slow call holds its slot however long it takes; a cancelled one frees it. */
static void slow_answer_holds_the_slot(void **state)
{
    gp_window w;
    gp_window_init(&w, 1, 60000);
    uint32_t s = gp_window_take(&w, T0);
    assert_true(gp_window_ready_at(&w, T0 + 500000) == GP_WINDOW_IN_FLIGHT);
    gp_window_done(&w, s, T0 + 500000);
    assert_true(gp_window_ready_at(&w, T0 + 500000) >= T0 + 560000);
    gp_window_free(&w);
    gp_window_init(&w, 1, 60000);
    s = gp_window_take(&w, T0);
    gp_window_cancel(&w, s);
    assert_true(gp_window_ready_at(&w, T0 + 1) == T0 + 1);
    gp_window_free(&w);
}

/* ---- the queue, with a fake HTTP client that records what leaves and when */

typedef struct sent {
    char endpoint[32], url[64];
    int prio;
    int64_t at;
} sent;

static sent log_[512];
static size_t n_log;
static int answers, aborted;

/* Answers are given by the test (answer_all) or never, like a real vendor. */
static gp_http_cb pending_cb[512];
static void *pending_ud[512];
static size_t n_pending;

static void answer_all(void)
{
    size_t n = n_pending;
    n_pending = 0;
    gp_http_resp r = {.size = sizeof r, .status = 200, .body = "{}", .body_len = 2};
    for (size_t i = 0; i < n; i++)
        pending_cb[i](pending_ud[i], &r);
}

static int fake_send(void *ctx, const gp_http_req *req, gp_http_cb cb, void *ud)
{
    pending_cb[n_pending] = cb;
    pending_ud[n_pending++] = ud;
    sent *s = &log_[n_log++];
    snprintf(s->endpoint, sizeof s->endpoint, "%s", req->endpoint ? req->endpoint : "");
    snprintf(s->url, sizeof s->url, "%s", req->url);
    s->prio = req->priority;
    s->at = gp_now_ms();
    return 0; /* the callback would come from the HTTP client later; not needed here */
}

static void cb(void *ud, const gp_http_resp *r)
{
    answers++;
    if (r->error == GP_HTTP_ABORTED) aborted++;
}

static const gp_quota quotas[] = {{"plantRealtimeKpi", 10, 60}, {"chargeAndDischarge", 100, 60}};

static gp_http_req req(const char *endpoint, int prio, const char *url)
{
    static const char *const hdr[] = {"XSRF-TOKEN: abc", NULL};
    return (gp_http_req){.size = sizeof(gp_http_req),
                         .method = "POST",
                         .url = url,
                         .headers = hdr,
                         .body = "{}",
                         .body_len = 2,
                         .endpoint = endpoint,
                         .priority = prio};
}

static int setup(void **state)
{
    n_log = 0;
    n_pending = 0;
    answers = aborted = 0;
    return 0;
}

static void queue_spreads_requests_inside_quota(void **state)
{
    gp_quota_queue *q = gp_quotaq_new(fake_send, NULL, quotas, 2, "test");
    char url[64];
    for (int i = 0; i < 25; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1/kpi/%d", i);
        gp_http_req r = req("plantRealtimeKpi", GP_PRIO_TELEMETRY, url);
        assert_int_equal(gp_quotaq_request(q, &r, cb, NULL), 0);
    }
    assert_int_equal(n_log, 10); /* the first 10 at once */
    assert_int_equal(gp_quotaq_waiting(q), 15);
    answer_all(); /* answered at once: the minute counts from now */
    gp_clock_advance(T0 + 59000);
    assert_int_equal(n_log, 10);
    gp_clock_advance(T0 + 62000);
    assert_int_equal(n_log, 20);
    answer_all();
    gp_clock_advance(T0 + 125000);
    assert_int_equal(n_log, 25);
    answer_all();
    /* In order, and never more than 10 in any 60 s. */
    for (size_t i = 0; i < n_log; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1/kpi/%zu", i);
        assert_string_equal(log_[i].url, url);
        if (i >= 10) assert_true(log_[i].at - log_[i - 10].at >= 60000);
    }
    /* Unmetered endpoints and other quotas are not held up by a full one. */
    gp_http_req other = req("chargeAndDischarge", GP_PRIO_CONTROL, "http://127.0.0.1/cmd");
    assert_int_equal(gp_quotaq_request(q, &other, cb, NULL), 0);
    gp_http_req free_req = req(NULL, GP_PRIO_TELEMETRY, "http://127.0.0.1/free");
    assert_int_equal(gp_quotaq_request(q, &free_req, cb, NULL), 0);
    assert_int_equal(n_log, 27);
    answer_all();
    gp_quotaq_free(q);
}

static void control_goes_before_telemetry(void **state)
{
    static const gp_quota one[] = {{"api", 1, 60}};
    gp_quota_queue *q = gp_quotaq_new(fake_send, NULL, one, 1, "test");
    int64_t t = gp_now_ms();
    gp_http_req a = req("api", GP_PRIO_TELEMETRY, "http://127.0.0.1/read1");
    gp_http_req b = req("api", GP_PRIO_TELEMETRY, "http://127.0.0.1/read2");
    gp_http_req c = req("api", GP_PRIO_CONTROL, "http://127.0.0.1/command");
    gp_quotaq_request(q, &a, cb, NULL);
    gp_quotaq_request(q, &b, cb, NULL);
    gp_quotaq_request(q, &c, cb, NULL);
    assert_int_equal(n_log, 1);
    answer_all();
    gp_clock_advance(t + 62000);
    assert_int_equal(n_log, 2);
    assert_string_equal(log_[1].url, "http://127.0.0.1/command");
    answer_all();
    gp_clock_advance(t + 124000);
    assert_string_equal(log_[2].url, "http://127.0.0.1/read2");
    answer_all();
    gp_quotaq_free(q);
}

static void rate_limit_answer_pauses_endpoint(void **state)
{
    gp_quota_queue *q = gp_quotaq_new(fake_send, NULL, quotas, 2, "test");
    int64_t t = gp_now_ms();
    gp_http_req r = req("chargeAndDischarge", GP_PRIO_CONTROL, "http://127.0.0.1/cmd");
    gp_quotaq_request(q, &r, cb, NULL);
    assert_int_equal(n_log, 1);
    answer_all();
    gp_quotaq_limited(q, "chargeAndDischarge", 30);
    gp_quotaq_request(q, &r, cb, NULL);
    assert_int_equal(n_log, 1);
    gp_clock_advance(t + 29000);
    assert_int_equal(n_log, 1);
    gp_clock_advance(t + 31000);
    assert_int_equal(n_log, 2);
    answer_all();
    gp_quota_stats st[2];
    assert_int_equal(gp_quotaq_stats(q, st, 2), 2);
    assert_string_equal(st[1].endpoint, "chargeAndDischarge");
    assert_int_equal(st[1].limited, 1);
    assert_int_equal(st[1].sent, 2);
    assert_int_equal(st[1].delayed, 1);
    gp_quotaq_free(q);
}

static void abort_answers_every_waiting_request(void **state)
{
    static const gp_quota one[] = {{"api", 1, 60}};
    gp_quota_queue *q = gp_quotaq_new(fake_send, NULL, one, 1, "test");
    gp_http_req r = req("api", GP_PRIO_TELEMETRY, "http://127.0.0.1/x");
    for (int i = 0; i < 5; i++)
        gp_quotaq_request(q, &r, cb, NULL);
    assert_int_equal(gp_quotaq_waiting(q), 4);
    gp_quotaq_abort(q);
    assert_int_equal(aborted, 4);
    assert_int_equal(gp_quotaq_waiting(q), 0);
    answer_all(); /* the one in flight */
    assert_int_equal(answers, 5);
    gp_quotaq_free(q);
}

int main(void)
{
    gp_clock_set_virtual(T0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_counts_a_sliding_minute),
        cmocka_unit_test(slow_answer_holds_the_slot),
        cmocka_unit_test_setup(queue_spreads_requests_inside_quota, setup),
        cmocka_unit_test_setup(control_goes_before_telemetry, setup),
        cmocka_unit_test_setup(rate_limit_answer_pauses_endpoint, setup),
        cmocka_unit_test_setup(abort_answers_every_waiting_request, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    gp_timer_stop_all();
    return rc;
}
