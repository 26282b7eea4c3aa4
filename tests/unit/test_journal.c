/* Unit tests for the command journal (core/journal.c): each test gets a fresh state_dir. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal.h"
#include "str.h"

typedef struct fx {
    char dir[64]; /* the temp dir, removed by teardown */
    char state[128];
    char err[512];
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gp_journal_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->state, sizeof f->state, "%s/var", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static gp_journal *open_rw(fx *f)
{
    gp_journal *j = gp_journal_open(f->state, 0, f->err, sizeof f->err);
    if (!j) fail_msg("open: %s", f->err);
    return j;
}

static gp_jrow sample(const char *device, gp_jstate st)
{
    gp_jrow r = {0};
    r.device = device;
    r.adapter = "fusion";
    r.kind = GP_CMD_SETPOINT;
    r.value = -2500.5;
    r.soc_target = NAN;
    r.energy_wh = NAN;
    r.state = st;
    r.origin = "strategy";
    return r;
}

static uint64_t add(gp_journal *j, const char *device, gp_jstate st, int64_t now)
{
    gp_jrow r = sample(device, st);
    uint64_t id = gp_journal_add(j, &r, now);
    if (!id) fail_msg("add: %s", gp_journal_error(j));
    return id;
}

/* A deep copy of one row, for checking what a callback saw after it returned. */
typedef struct rowcopy {
    gp_jrow r;
    char *s[6];
} rowcopy;

static int copy_cb(void *ud, const gp_jrow *row)
{
    rowcopy *c = ud;
    c->r = *row;
    const char *src[6] = {row->device, row->adapter, row->vendor_ref,
                          row->error,  row->origin,  row->detail};
    for (int i = 0; i < 6; i++)
        c->s[i] = gp_xstrdup(src[i]);
    c->r.device = c->s[0];
    c->r.adapter = c->s[1];
    c->r.vendor_ref = c->s[2];
    c->r.error = c->s[3];
    c->r.origin = c->s[4];
    c->r.detail = c->s[5];
    return 0;
}

static void rowcopy_free(rowcopy *c)
{
    for (int i = 0; i < 6; i++)
        free(c->s[i]);
    memset(c, 0, sizeof *c);
}

static void get_row(gp_journal *j, uint64_t id, rowcopy *c)
{
    memset(c, 0, sizeof *c);
    int rc = gp_journal_get(j, id, copy_cb, c);
    if (rc != 1) fail_msg("get %llu: %d %s", (unsigned long long)id, rc, gp_journal_error(j));
}

/* Collects ids in visiting order. */
typedef struct ids {
    uint64_t v[2048];
    int n;
    int stop_after; /* 0 = never */
} ids;

static int ids_cb(void *ud, const gp_jrow *row)
{
    ids *l = ud;
    if (l->n < 2048) l->v[l->n] = row->id;
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

/* ---- names ------------------------------------------------------------------------------ */

static void test_state_names_round_trip(void **state)
{
    (void)state;
    const char *want[] = {"queued", "sent",    "accepted", "pending",  "done",
                          "failed", "timeout", "dry_run",  "cancelled"};
    for (int s = 0; s < GP_JS_COUNT; s++) {
        assert_string_equal(gp_jstate_name((gp_jstate)s), want[s]);
        assert_int_equal(gp_jstate_parse(want[s]), s);
        int term = s == GP_JS_DONE || s == GP_JS_FAILED || s == GP_JS_TIMEOUT ||
                   s == GP_JS_DRY_RUN || s == GP_JS_CANCELLED;
        assert_int_equal(gp_jstate_terminal((gp_jstate)s) != 0, term);
    }
    assert_int_equal(gp_jstate_parse("finished"), -1);
    assert_int_equal(gp_jstate_parse(NULL), -1);
    assert_string_equal(gp_cmd_kind_name(GP_CMD_SETPOINT), "setpoint");
    assert_string_equal(gp_cmd_kind_name(GP_CMD_DOD), "dod");
    assert_string_equal(gp_cmd_kind_name(GP_CMD_ONOFF), "on");
    assert_string_equal(gp_cmd_kind_name(GP_CMD_RELEASE), "release");
    for (int k = GP_CMD_SETPOINT; k <= GP_CMD_RELEASE; k++)
        assert_int_equal(gp_cmd_kind_parse(gp_cmd_kind_name((gp_cmd_kind)k)), k);
    assert_int_equal(gp_cmd_kind_parse("off"), -1);
    assert_int_equal(gp_cmd_kind_parse(NULL), -1);
}

/* ---- add / get ------------------------------------------------------------------------- */

static void test_add_row_fields(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    gp_jrow r = {0};
    r.device = "fusion/NE=123";
    r.adapter = "fusion-main";
    r.kind = GP_CMD_SETPOINT;
    r.value = -2500.5;
    r.soc_target = 80;
    r.duration_s = 900;
    r.state = GP_JS_QUEUED;
    r.vendor_ref = "req-7";
    r.attempts = 2;
    r.error = "earlier";
    r.energy_wh = 12.25;
    r.origin = "api";
    r.detail = "{\"a\":1}";
    r.id = 999;
    r.created_ms = r.updated_ms = 1; /* ignored */
    uint64_t id = gp_journal_add(j, &r, 1700000000123);
    assert_true(id > 0);

    rowcopy c;
    get_row(j, id, &c);
    assert_int_equal(c.r.id, id);
    assert_string_equal(c.r.device, "fusion/NE=123");
    assert_string_equal(c.r.adapter, "fusion-main");
    assert_int_equal(c.r.kind, GP_CMD_SETPOINT);
    assert_true(c.r.value == -2500.5);
    assert_true(c.r.soc_target == 80);
    assert_int_equal(c.r.duration_s, 900);
    assert_int_equal(c.r.state, GP_JS_QUEUED);
    assert_string_equal(c.r.vendor_ref, "req-7");
    assert_int_equal(c.r.created_ms, 1700000000123);
    assert_int_equal(c.r.updated_ms, 1700000000123);
    assert_int_equal(c.r.attempts, 2);
    assert_string_equal(c.r.error, "earlier");
    assert_true(c.r.energy_wh == 12.25);
    assert_string_equal(c.r.origin, "api");
    assert_string_equal(c.r.detail, "{\"a\":1}");
    rowcopy_free(&c);

    /* NAN and NULL survive as NAN and NULL; release has no value. */
    gp_jrow rel = {0};
    rel.device = "sigen/1";
    rel.adapter = "sigen";
    rel.kind = GP_CMD_RELEASE;
    rel.value = NAN;
    rel.soc_target = NAN;
    rel.energy_wh = NAN;
    rel.state = GP_JS_DRY_RUN;
    uint64_t id2 = gp_journal_add(j, &rel, 1700000000200);
    assert_true(id2 > id);
    get_row(j, id2, &c);
    assert_int_equal(c.r.kind, GP_CMD_RELEASE);
    assert_int_equal(c.r.state, GP_JS_DRY_RUN);
    assert_true(isnan(c.r.value));
    assert_true(isnan(c.r.soc_target));
    assert_true(isnan(c.r.energy_wh));
    assert_null(c.r.vendor_ref);
    assert_null(c.r.error);
    assert_null(c.r.origin);
    assert_null(c.r.detail);
    assert_int_equal(c.r.duration_s, 0);
    rowcopy_free(&c);

    assert_int_equal(gp_journal_get(j, 424242, copy_cb, &c), 0);

    /* Bad rows are refused with a reason, not stored. */
    gp_jrow bad = sample(NULL, GP_JS_QUEUED);
    assert_int_equal(gp_journal_add(j, &bad, 1), 0);
    assert_non_null(strstr(gp_journal_error(j), "journal.db"));
    bad = sample("x/1", GP_JS_QUEUED);
    bad.kind = (gp_cmd_kind)9;
    assert_int_equal(gp_journal_add(j, &bad, 1), 0);
    assert_non_null(strstr(gp_journal_error(j), "kind"));
    gp_journal_close(j);

    /* On disk: names for kind and state, Unix ms, NULL for NAN. */
    char path[256];
    snprintf(path, sizeof path, "%s/journal.db", f->state);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT kind, state, created_ms, value IS NULL,"
                                        " soc_target IS NULL FROM commands ORDER BY id",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "setpoint");
    assert_string_equal((const char *)sqlite3_column_text(s, 1), "queued");
    assert_int_equal(sqlite3_column_int64(s, 2), 1700000000123);
    assert_int_equal(sqlite3_column_int(s, 3), 0);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "release");
    assert_string_equal((const char *)sqlite3_column_text(s, 1), "dry_run");
    assert_int_equal(sqlite3_column_int(s, 3), 1);
    assert_int_equal(sqlite3_column_int(s, 4), 1);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_setters(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t id = add(j, "a/1", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_set_vendor_ref(j, id, "REQ-42"), 0);
    assert_int_equal(gp_journal_set_attempts(j, id, 3), 0);
    assert_int_equal(gp_journal_set_result(j, id, 150.5, "{\"k\":2}"), 0);
    /* NAN / NULL leave what is stored. */
    assert_int_equal(gp_journal_set_result(j, id, NAN, NULL), 0);
    rowcopy c;
    get_row(j, id, &c);
    assert_string_equal(c.r.vendor_ref, "REQ-42");
    assert_int_equal(c.r.attempts, 3);
    assert_true(c.r.energy_wh == 150.5);
    assert_string_equal(c.r.detail, "{\"k\":2}");
    rowcopy_free(&c);
    assert_int_equal(gp_journal_set_vendor_ref(j, id, NULL), 0);
    get_row(j, id, &c);
    assert_null(c.r.vendor_ref);
    rowcopy_free(&c);

    assert_int_equal(gp_journal_set_vendor_ref(j, 777, "x"), -1);
    assert_non_null(strstr(gp_journal_error(j), "no command 777"));
    assert_int_equal(gp_journal_set_attempts(j, 777, 1), -1);
    assert_int_equal(gp_journal_set_result(j, 777, 1, NULL), -1);
    gp_journal_close(j);
}

/* ---- transitions ----------------------------------------------------------------------- */

typedef struct hist {
    gp_jstate st[16];
    int64_t at[16];
    char note[16][64];
    int n;
} hist;

static int hist_cb(void *ud, gp_jstate st, int64_t at_ms, const char *note)
{
    hist *h = ud;
    if (h->n >= 16) return 1;
    h->st[h->n] = st;
    h->at[h->n] = at_ms;
    snprintf(h->note[h->n], sizeof h->note[0], "%s", note ? note : "(null)");
    h->n++;
    return 0;
}

static void test_transition_chain(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t id = add(j, "fusion/NE=1", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_SENT, 1010, "attempt 1"), 0);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_ACCEPTED, 1020, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_PENDING, 1030, "ref 77"), 0);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_DONE, 1040, "finished"), 0);

    hist h = {0};
    assert_int_equal(gp_journal_history(j, id, hist_cb, &h), 5);
    gp_jstate want[] = {GP_JS_QUEUED, GP_JS_SENT, GP_JS_ACCEPTED, GP_JS_PENDING, GP_JS_DONE};
    const char *notes[] = {"(null)", "attempt 1", "(null)", "ref 77", "finished"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(h.st[i], want[i]);
        assert_int_equal(h.at[i], 1000 + 10 * i);
        assert_string_equal(h.note[i], notes[i]);
    }
    rowcopy c;
    get_row(j, id, &c);
    assert_int_equal(c.r.state, GP_JS_DONE);
    assert_int_equal(c.r.created_ms, 1000);
    assert_int_equal(c.r.updated_ms, 1040);
    assert_null(c.r.error); /* done is not an error, even with a note */
    rowcopy_free(&c);

    /* A walk can stop early and reports how many it visited. */
    hist one = {0};
    one.n = 15;
    assert_int_equal(gp_journal_history(j, id, hist_cb, &one), 2);
    assert_int_equal(gp_journal_history(j, 9999, hist_cb, &h), 0);
    gp_journal_close(j);
}

static void test_terminal_refused(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t id = add(j, "a/1", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_DONE, 1100, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id, GP_JS_SENT, 1200, "retry"), -1);
    assert_non_null(strstr(gp_journal_error(j), "already done"));
    assert_non_null(strstr(gp_journal_error(j), "journal.db"));
    assert_int_equal(gp_journal_transition(j, id, GP_JS_FAILED, 1200, "late"), -1);

    rowcopy c;
    get_row(j, id, &c);
    assert_int_equal(c.r.state, GP_JS_DONE);
    assert_int_equal(c.r.updated_ms, 1100);
    assert_null(c.r.error);
    rowcopy_free(&c);
    hist h = {0};
    assert_int_equal(gp_journal_history(j, id, hist_cb, &h), 2);

    uint64_t dry = add(j, "a/1", GP_JS_DRY_RUN, 1000);
    assert_int_equal(gp_journal_transition(j, dry, GP_JS_SENT, 1200, NULL), -1);
    assert_non_null(strstr(gp_journal_error(j), "already dry_run"));
    gp_journal_close(j);
}

static void test_error_recorded(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t a = add(j, "a/1", GP_JS_QUEUED, 1000);
    uint64_t b = add(j, "a/2", GP_JS_QUEUED, 1000);
    uint64_t c = add(j, "a/3", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(j, a, GP_JS_SENT, 1001, "try"), 0);
    assert_int_equal(gp_journal_transition(j, a, GP_JS_FAILED, 1002, "20010: quota"), 0);
    assert_int_equal(gp_journal_transition(j, b, GP_JS_TIMEOUT, 1002, "no answer in 30s"), 0);
    assert_int_equal(gp_journal_transition(j, c, GP_JS_CANCELLED, 1002, "superseded"), 0);
    const struct {
        uint64_t id;
        gp_jstate st;
        const char *err;
    } want[] = {{a, GP_JS_FAILED, "20010: quota"},
                {b, GP_JS_TIMEOUT, "no answer in 30s"},
                {c, GP_JS_CANCELLED, "superseded"}};
    for (int i = 0; i < 3; i++) {
        rowcopy r;
        get_row(j, want[i].id, &r);
        assert_int_equal(r.r.state, want[i].st);
        assert_string_equal(r.r.error, want[i].err);
        rowcopy_free(&r);
    }
    gp_journal_close(j);
}

static void test_transition_unknown_id(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    add(j, "a/1", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(j, 999, GP_JS_SENT, 1001, NULL), -1);
    assert_non_null(strstr(gp_journal_error(j), "no command 999"));
    assert_int_equal(gp_journal_transition(j, 1, GP_JS_COUNT, 1001, NULL), -1);
    uint64_t counts[GP_JS_COUNT];
    assert_int_equal(gp_journal_count(j, counts), 0);
    assert_int_equal(counts[GP_JS_QUEUED], 1);
    assert_int_equal(counts[GP_JS_SENT], 0);
    gp_journal_close(j);
}

/* ---- walks and counts ------------------------------------------------------------------ */

static void test_each_active_oldest_first(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t id[8];
    for (int i = 0; i < 8; i++)
        id[i] = add(j, "d/1", GP_JS_QUEUED, 1000 + i);
    /* id0 queued, id1 sent, id2 accepted, id3 pending, the rest terminal. */
    assert_int_equal(gp_journal_transition(j, id[1], GP_JS_SENT, 2000, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id[2], GP_JS_ACCEPTED, 2000, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id[3], GP_JS_PENDING, 2000, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id[4], GP_JS_DONE, 2000, NULL), 0);
    assert_int_equal(gp_journal_transition(j, id[5], GP_JS_FAILED, 2000, "x"), 0);
    assert_int_equal(gp_journal_transition(j, id[6], GP_JS_TIMEOUT, 2000, "x"), 0);
    assert_int_equal(gp_journal_transition(j, id[7], GP_JS_CANCELLED, 2000, "x"), 0);
    uint64_t dry = add(j, "d/1", GP_JS_DRY_RUN, 3000);
    (void)dry;
    uint64_t late = add(j, "d/2", GP_JS_QUEUED, 3000);

    ids l = {0};
    assert_int_equal(gp_journal_each_active(j, ids_cb, &l), 5);
    uint64_t want[] = {id[0], id[1], id[2], id[3], late};
    assert_int_equal(l.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(l.v[i], want[i]);

    ids stop = {0};
    stop.stop_after = 2;
    assert_int_equal(gp_journal_each_active(j, ids_cb, &stop), 2);
    gp_journal_close(j);
}

typedef struct mover {
    gp_journal *j;
    int seen;
    int nested_ok;
} mover;

static int finish_cb(void *ud, const gp_jrow *row)
{
    mover *m = ud;
    m->seen++;
    if (gp_journal_transition(m->j, row->id, GP_JS_DONE, 5000, NULL) != 0)
        fail_msg("transition in walk: %s", gp_journal_error(m->j));
    /* Reads may nest too (the CLI looks rows up while listing). */
    if (m->seen == 1) m->nested_ok = gp_journal_each(m->j, GP_JS_DONE, NULL, NULL) == 1;
    return 0;
}

/* The daemon's restart path walks the active rows and moves them: more rows than one read
 * chunk, each visited exactly once even though its state changes under the walk. */
static void test_each_active_callback_writes(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    const int n = 700;
    assert_int_equal(gp_journal_begin(j), 0);
    for (int i = 0; i < n; i++)
        add(j, "d/1", i % 2 ? GP_JS_QUEUED : GP_JS_DRY_RUN, 1000 + i);
    assert_int_equal(gp_journal_commit(j), 0);
    mover m = {j, 0, 0};
    assert_int_equal(gp_journal_each_active(j, finish_cb, &m), n / 2);
    assert_int_equal(m.seen, n / 2);
    assert_true(m.nested_ok);
    assert_int_equal(gp_journal_each_active(j, NULL, NULL), 0);
    uint64_t counts[GP_JS_COUNT];
    assert_int_equal(gp_journal_count(j, counts), 0);
    assert_int_equal(counts[GP_JS_DONE], n / 2);
    assert_int_equal(counts[GP_JS_DRY_RUN], n / 2);
    gp_journal_close(j);
}

static void test_each_filter_and_count(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t a = add(j, "d/1", GP_JS_QUEUED, 1);
    uint64_t b = add(j, "d/2", GP_JS_QUEUED, 2);
    uint64_t c = add(j, "d/3", GP_JS_QUEUED, 3);
    add(j, "d/4", GP_JS_DRY_RUN, 4);
    assert_int_equal(gp_journal_transition(j, a, GP_JS_FAILED, 10, "x"), 0);
    assert_int_equal(gp_journal_transition(j, c, GP_JS_FAILED, 11, "y"), 0);
    assert_int_equal(gp_journal_transition(j, b, GP_JS_SENT, 12, NULL), 0);

    ids l = {0};
    assert_int_equal(gp_journal_each(j, GP_JS_FAILED, ids_cb, &l), 2);
    assert_int_equal(l.v[0], a);
    assert_int_equal(l.v[1], c);
    ids all = {0};
    assert_int_equal(gp_journal_each(j, -1, ids_cb, &all), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(all.v[i], (uint64_t)i + 1);
    assert_int_equal(gp_journal_each(j, GP_JS_PENDING, ids_cb, &l), 0);
    assert_int_equal(gp_journal_each(j, GP_JS_COUNT, ids_cb, &l), -1);

    uint64_t counts[GP_JS_COUNT];
    assert_int_equal(gp_journal_count(j, counts), 0);
    uint64_t want[GP_JS_COUNT] = {0};
    want[GP_JS_FAILED] = 2;
    want[GP_JS_SENT] = 1;
    want[GP_JS_DRY_RUN] = 1;
    for (int i = 0; i < GP_JS_COUNT; i++)
        assert_int_equal(counts[i], want[i]);
    gp_journal_close(j);
}

/* ---- sequences ------------------------------------------------------------------------- */

static void test_seq_across_reopen(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    uint64_t last = 0;
    for (int i = 0; i < 300; i++) { /* several reserved blocks */
        uint64_t v = gp_journal_seq_next(j, "huawei");
        assert_true(v > last);
        if (i == 0) assert_int_equal(v, 1);
        last = v;
    }
    assert_int_equal(gp_journal_seq_next(j, "other"), 1); /* sequences are independent */
    gp_journal_close(j);

    for (int round = 0; round < 3; round++) {
        j = open_rw(f);
        for (int i = 0; i < 100; i++) {
            uint64_t v = gp_journal_seq_next(j, "huawei");
            assert_true(v > last);
            last = v;
        }
        gp_journal_close(j);
    }
    j = open_rw(f);
    assert_true(gp_journal_seq_next(j, "other") > 1);
    assert_int_equal(gp_journal_seq_next(j, ""), 0);
    assert_int_equal(gp_journal_seq_next(j, NULL), 0);
    gp_journal_close(j);
}

/* A floor lifts a sequence (a fresh state_dir starts above the wall clock), never lowers it,
 * and what it lifts to survives a reopen. */
static void test_seq_floor(void **state)
{
    fx *f = *state;
    const uint64_t t1 = 1795000000000ull, t0 = 1794000000000ull;
    gp_journal *j = open_rw(f);
    gp_journal_seq_floor(j, "request_id", t1);
    uint64_t a = gp_journal_seq_next(j, "request_id");
    assert_true(a > t1 && a < t1 + 1000);
    assert_int_equal(gp_journal_seq_next(j, "request_id"), a + 1);
    gp_journal_seq_floor(j, "request_id", t0); /* lower: no effect */
    assert_int_equal(gp_journal_seq_next(j, "request_id"), a + 2);
    gp_journal_close(j);

    /* A restart whose clock went backwards still continues above what was handed out. */
    j = open_rw(f);
    gp_journal_seq_floor(j, "request_id", t0);
    assert_true(gp_journal_seq_next(j, "request_id") > a + 2);
    /* Other sequences keep their own numbering. */
    assert_int_equal(gp_journal_seq_next(j, "other"), 1);
    gp_journal_close(j);
}

/* The process is killed (SIGKILL from outside: no close, no exit handlers) right after taking
 * ids. */
static void test_seq_after_crash(void **state)
{
    fx *f = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        gp_journal *j = gp_journal_open(f->state, 0, f->err, sizeof f->err);
        uint64_t v[70] = {0};
        for (int i = 0; j && i < 70; i++)
            v[i] = gp_journal_seq_next(j, "huawei");
        if (write(p[1], v, sizeof v) != (ssize_t)sizeof v) _exit(3);
        for (;;)
            pause(); /* until the parent kills it */
    }
    close(p[1]);
    uint64_t v[70];
    size_t got = 0;
    while (got < sizeof v) {
        ssize_t r = read(p[0], (char *)v + got, sizeof v - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(p[0]);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(got, sizeof v);
    uint64_t max = 0;
    for (int i = 0; i < 70; i++) {
        assert_true(v[i] > max);
        max = v[i];
    }
    gp_journal *j = open_rw(f);
    assert_true(gp_journal_seq_next(j, "huawei") > max);
    gp_journal_close(j);
}

/* Ids taken inside a batch that never commits (closed mid-batch) are still never reused. */
static void test_seq_in_rolled_back_batch(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    assert_int_equal(gp_journal_begin(j), 0);
    uint64_t a = gp_journal_seq_next(j, "s");
    uint64_t b = gp_journal_seq_next(j, "s");
    assert_true(b > a);
    add(j, "d/1", GP_JS_QUEUED, 1);
    gp_journal_close(j); /* discards the batch */
    j = open_rw(f);
    assert_true(gp_journal_seq_next(j, "s") > b);
    assert_int_equal(gp_journal_each(j, -1, NULL, NULL), 0); /* the row went with the batch */
    gp_journal_close(j);
}

/* ---- kv -------------------------------------------------------------------------------- */

static void test_kv(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    size_t len = 99;
    assert_null(gp_journal_kv_get(j, "fusion", "token", &len));
    assert_int_equal(len, 0);
    assert_string_equal(gp_journal_error(j), ""); /* absent, not an error */

    assert_int_equal(gp_journal_kv_set(j, "fusion", "token", "abc", 3), 0);
    assert_int_equal(gp_journal_kv_set(j, "sigen", "token", "xyz!", 4), 0);
    char *v = gp_journal_kv_get(j, "fusion", "token", &len);
    assert_non_null(v);
    assert_int_equal(len, 3);
    assert_string_equal(v, "abc");
    free(v);
    v = gp_journal_kv_get(j, "sigen", "token", &len);
    assert_int_equal(len, 4);
    assert_string_equal(v, "xyz!");
    free(v);

    assert_int_equal(gp_journal_kv_set(j, "fusion", "token", "longer value", 12), 0);
    v = gp_journal_kv_get(j, "fusion", "token", NULL);
    assert_string_equal(v, "longer value");
    free(v);

    const unsigned char bin[] = {0, 1, 2, 0xff, 0, 'x'};
    assert_int_equal(gp_journal_kv_set(j, "fusion", "blob", bin, sizeof bin), 0);
    unsigned char *bv = gp_journal_kv_get(j, "fusion", "blob", &len);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(bv, bin, sizeof bin);
    assert_int_equal(bv[len], 0);
    free(bv);

    assert_int_equal(gp_journal_kv_set(j, "fusion", "empty", "", 0), 0);
    v = gp_journal_kv_get(j, "fusion", "empty", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_string_equal(v, "");
    free(v);

    assert_int_equal(gp_journal_kv_set(j, "fusion", "token", NULL, 0), 0);
    assert_null(gp_journal_kv_get(j, "fusion", "token", &len));
    v = gp_journal_kv_get(j, "sigen", "token", &len); /* the other scope is untouched */
    assert_string_equal(v, "xyz!");
    free(v);
    assert_int_equal(gp_journal_kv_set(j, "fusion", "never", NULL, 0), 0);
    assert_int_equal(gp_journal_kv_set(j, NULL, "k", "v", 1), -1);
    gp_journal_close(j);

    j = open_rw(f); /* and it outlives the process */
    v = gp_journal_kv_get(j, "sigen", "token", &len);
    assert_string_equal(v, "xyz!");
    free(v);
    gp_journal_close(j);
}

/* ---- opening --------------------------------------------------------------------------- */

static void test_creates_state_dir(void **state)
{
    fx *f = *state;
    snprintf(f->state, sizeof f->state, "%s/a/b/c/", f->dir);
    gp_journal *j = open_rw(f);
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c/journal.db", f->dir);
    assert_string_equal(gp_journal_path(j), path);
    gp_journal_close(j);
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mode_t um = umask(0);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0750 & ~um);
    snprintf(path, sizeof path, "%s/a/b/c/journal.db", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0007, 0); /* not world-readable */

    /* A file where the directory should be is a clear error. */
    snprintf(path, sizeof path, "%s/file", f->dir);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    snprintf(f->state, sizeof f->state, "%s/file/sub", f->dir);
    assert_null(gp_journal_open(f->state, 0, f->err, sizeof f->err));
    assert_non_null(strstr(f->err, "file/sub"));
}

static void test_readonly_missing(void **state)
{
    fx *f = *state;
    assert_null(gp_journal_open(f->state, 1, f->err, sizeof f->err));
    assert_non_null(strstr(f->err, "no journal yet"));
    assert_non_null(strstr(f->err, "var/journal.db"));
    struct stat st;
    assert_int_equal(stat(f->state, &st), -1); /* a reader creates nothing */
}

static void test_readonly_sees_writer(void **state)
{
    fx *f = *state;
    gp_journal *w = open_rw(f);
    uint64_t a = add(w, "d/1", GP_JS_QUEUED, 1);
    gp_journal *r = gp_journal_open(f->state, 1, f->err, sizeof f->err);
    if (!r) fail_msg("readonly open: %s", f->err);
    ids l = {0};
    assert_int_equal(gp_journal_each(r, -1, ids_cb, &l), 1);
    assert_int_equal(l.v[0], a);
    uint64_t b = add(w, "d/2", GP_JS_QUEUED, 2);
    assert_int_equal(gp_journal_transition(w, a, GP_JS_SENT, 3, NULL), 0);
    rowcopy c;
    get_row(r, b, &c);
    assert_string_equal(c.r.device, "d/2");
    rowcopy_free(&c);
    get_row(r, a, &c);
    assert_int_equal(c.r.state, GP_JS_SENT);
    rowcopy_free(&c);

    /* The reader cannot write. */
    gp_jrow row = sample("d/3", GP_JS_QUEUED);
    assert_int_equal(gp_journal_add(r, &row, 4), 0);
    assert_non_null(strstr(gp_journal_error(r), "read-only"));
    assert_int_equal(gp_journal_transition(r, a, GP_JS_DONE, 4, NULL), -1);
    assert_int_equal(gp_journal_seq_next(r, "s"), 0);
    gp_journal_close(r);
    gp_journal_close(w);

    /* With no writer running (no -wal / -shm left behind) it still opens and reads. */
    r = gp_journal_open(f->state, 1, f->err, sizeof f->err);
    if (!r) fail_msg("readonly open after close: %s", f->err);
    uint64_t counts[GP_JS_COUNT];
    assert_int_equal(gp_journal_count(r, counts), 0);
    assert_int_equal(counts[GP_JS_QUEUED] + counts[GP_JS_SENT], 2);
    gp_journal_close(r);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_garbage_file(void **state)
{
    fx *f = *state;
    assert_int_equal(mkdir(f->state, 0750), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/journal.db", f->state);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_file(path, junk, sizeof junk);
    for (int ro = 0; ro <= 1; ro++) {
        f->err[0] = '\0';
        assert_null(gp_journal_open(f->state, ro, f->err, sizeof f->err));
        assert_non_null(strstr(f->err, "var/journal.db: "));
        assert_non_null(strstr(f->err, "not a database"));
        assert_null(strchr(f->err, '\n'));
    }
}

static void test_foreign_or_newer_schema(void **state)
{
    fx *f = *state;
    gp_journal *j = open_rw(f);
    gp_journal_close(j);
    char path[256];
    snprintf(path, sizeof path, "%s/journal.db", f->state);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    for (int ro = 0; ro <= 1; ro++) {
        assert_null(gp_journal_open(f->state, ro, f->err, sizeof f->err));
        assert_non_null(strstr(f->err, "journal.db: journal schema version 2 is newer"));
    }

    /* Some other application's SQLite file. */
    remove(path);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(gp_journal_open(f->state, 0, f->err, sizeof f->err));
    assert_non_null(strstr(f->err, "not a gridpilot journal"));
}

/* ---- batches --------------------------------------------------------------------------- */

/* A simulation's journal: no transition history, and final commands pruned by age. */
static void test_volatile_and_prune(void **state)
{
    fx *f = *state;
    gp_journal *w = open_rw(f);
    assert_int_equal(gp_journal_set_volatile(w), 0);
    uint64_t old_done = add(w, "d/1", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(w, old_done, GP_JS_DONE, 2000, NULL), 0);
    uint64_t old_open = add(w, "d/2", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(w, old_open, GP_JS_ACCEPTED, 2000, NULL), 0);
    uint64_t new_done = add(w, "d/3", GP_JS_QUEUED, 1000);
    assert_int_equal(gp_journal_transition(w, new_done, GP_JS_DONE, 9000, NULL), 0);
    /* Only the final command older than the limit goes; open ones stay whatever their age. */
    assert_int_equal(gp_journal_prune(w, 5000), 1);
    assert_int_equal(gp_journal_each(w, -1, NULL, NULL), 2);
    rowcopy c;
    get_row(w, old_open, &c);
    assert_int_equal(c.r.state, GP_JS_ACCEPTED);
    rowcopy_free(&c);
    hist h = {0};
    assert_int_equal(gp_journal_history(w, old_open, hist_cb, &h), 0); /* no history kept */
    /* Ids are never reused after a prune. */
    uint64_t next = add(w, "d/4", GP_JS_QUEUED, 9500);
    assert_true(next > new_done);
    gp_journal_close(w);
}

static void test_begin_commit_nesting(void **state)
{
    fx *f = *state;
    gp_journal *w = open_rw(f);
    gp_journal *r = gp_journal_open(f->state, 1, f->err, sizeof f->err);
    if (!r) fail_msg("readonly open: %s", f->err);

    assert_int_equal(gp_journal_commit(w), -1); /* nothing to commit */
    assert_non_null(strstr(gp_journal_error(w), "commit without begin"));

    assert_int_equal(gp_journal_begin(w), 0);
    uint64_t a = add(w, "d/1", GP_JS_QUEUED, 1);
    assert_int_equal(gp_journal_begin(w), 0);
    uint64_t b = add(w, "d/2", GP_JS_QUEUED, 2);
    assert_int_equal(gp_journal_transition(w, a, GP_JS_SENT, 3, NULL), 0);
    /* A refused call inside the batch leaves the rest of it intact. */
    assert_int_equal(gp_journal_transition(w, 4242, GP_JS_SENT, 3, NULL), -1);
    assert_int_equal(gp_journal_commit(w), 0); /* inner: nothing written yet */
    assert_int_equal(gp_journal_each(r, -1, NULL, NULL), 0);
    assert_int_equal(gp_journal_each(w, -1, NULL, NULL), 2); /* the writer sees its batch */
    assert_int_equal(gp_journal_commit(w), 0);               /* outer: written */
    ids l = {0};
    assert_int_equal(gp_journal_each(r, -1, ids_cb, &l), 2);
    assert_int_equal(l.v[0], a);
    assert_int_equal(l.v[1], b);
    rowcopy c;
    get_row(r, a, &c);
    assert_int_equal(c.r.state, GP_JS_SENT);
    rowcopy_free(&c);
    assert_int_equal(gp_journal_commit(w), -1);

    /* After the batch, each call is on its own again. */
    add(w, "d/3", GP_JS_QUEUED, 4);
    assert_int_equal(gp_journal_each(r, -1, NULL, NULL), 3);
    gp_journal_close(r);
    gp_journal_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names_round_trip),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_add_row_fields),
        T(test_setters),
        T(test_transition_chain),
        T(test_terminal_refused),
        T(test_error_recorded),
        T(test_transition_unknown_id),
        T(test_each_active_oldest_first),
        T(test_each_active_callback_writes),
        T(test_each_filter_and_count),
        T(test_seq_across_reopen),
        T(test_seq_after_crash),
        T(test_seq_floor),
        T(test_seq_in_rolled_back_batch),
        T(test_kv),
        T(test_creates_state_dir),
        T(test_readonly_missing),
        T(test_readonly_sees_writer),
        T(test_garbage_file),
        T(test_foreign_or_newer_schema),
        T(test_volatile_and_prune),
        T(test_begin_commit_nesting),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
