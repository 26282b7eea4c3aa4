/* Tariffs. A tariff is a sorted list of price slots (a price file), or a set of daily periods
 * in a time zone, plus a default price for the times neither covers. Loading files and
 * checking configurations is tariff_load.c's job. */
#include "tariff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "tz.h"

struct gp_tariff {
    gp_price_slot *slots; /* sorted by start, non-overlapping */
    size_t n;
    int is_file;                           /* extent is [slots[0].start, slots[n-1].stop) */
    double default_import, default_export; /* NAN when none */
    gp_tz *tz;                             /* periods tariff when set */
    gp_tariff_period *periods;             /* sorted by from_min */
    size_t n_periods;
};

gp_tariff *gp_tariff_fixed(double import, double export_)
{
    gp_tariff *t = gp_xcalloc(1, sizeof *t);
    t->default_import = import;
    t->default_export = export_;
    return t;
}

gp_tariff *gp_tariff_from_slots(gp_price_slot *slots, size_t n, double default_import,
                                double default_export)
{
    gp_tariff *t = gp_tariff_fixed(default_import, default_export);
    t->slots = slots;
    t->n = n;
    t->is_file = 1;
    return t;
}

static int by_from(const void *a, const void *b)
{
    const gp_tariff_period *x = a, *y = b;
    return (x->from_min > y->from_min) - (x->from_min < y->from_min);
}

gp_tariff *gp_tariff_from_periods(const gp_tariff_period *periods, size_t n, gp_tz *tz,
                                  double default_import, double default_export)
{
    gp_tariff *t = gp_tariff_fixed(default_import, default_export);
    t->tz = tz;
    t->periods = gp_xmalloc((n ? n : 1) * sizeof *t->periods);
    if (n) memcpy(t->periods, periods, n * sizeof *periods);
    t->n_periods = n;
    qsort(t->periods, n, sizeof *t->periods, by_from);
    return t;
}

void gp_tariff_free(gp_tariff *t)
{
    if (!t) return;
    free(t->slots);
    free(t->periods);
    gp_tz_free(t->tz);
    free(t);
}

int gp_tariff_extent(const gp_tariff *t, int64_t *from_ms, int64_t *to_ms)
{
    if (!t || !t->is_file || t->n == 0) return -1;
    *from_ms = t->slots[0].start_ms;
    *to_ms = t->slots[t->n - 1].stop_ms;
    return 0;
}

/* ---- pieces of [from, to), collected in order --------------------------------------------- */

typedef struct sink {
    int64_t from, to;
    gp_price_slot *out; /* NULL: keep only the first piece, in `one` */
    size_t len, cap;
    gp_price_slot one;
} sink;

/* Add [a, b) clipped to the range; returns 1 when no more pieces are wanted. */
static int put(sink *k, int64_t a, int64_t b, double import, double export_)
{
    if (a < k->from) a = k->from;
    if (b > k->to) b = k->to;
    if (a >= b) return 0;
    gp_price_slot s = {a, b, import, export_};
    if (!k->out) {
        k->one = s;
        k->len = 1;
        return 1;
    }
    if (k->len == k->cap) k->out = gp_xrealloc(k->out, (k->cap *= 2) * sizeof *k->out);
    k->out[k->len++] = s;
    return k->len >= GP_TARIFF_MAX_SLOTS;
}

/* A stretch of the default price; left out when there is no default price. */
static int put_default(const gp_tariff *t, sink *k, int64_t a, int64_t b)
{
    if (isnan(t->default_import) && isnan(t->default_export)) return 0;
    return put(k, a, b, t->default_import, t->default_export);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The local day (days since 1970-01-01 local) of the instant ms. */
static int64_t local_day(const gp_tz *tz, int64_t ms)
{
    int64_t s = floor_div(ms, 1000);
    return floor_div(s + gp_tz_offset(tz, s), 86400);
}

static int64_t local_min_to_ms(const gp_tz *tz, int64_t day, int64_t min)
{
    return gp_tz_to_utc(tz, day * 86400 + min * 60) * 1000;
}

/* Periods: every occurrence of a period on the local days around the range, in order, with
 * the default price between them. Local times map to instants without ever going backwards
 * (gp_tz_to_utc), so occurrences stay in order and never overlap; one that a clock change
 * swallows whole (a period inside the skipped hour) has no length and is left out. */
static void period_pieces(const gp_tariff *t, sink *k)
{
    /* Only within about 300,000 years of 1970, so that local times cannot overflow. */
    const int64_t lim = 10000000000000000LL;
    if (k->from < -lim) k->from = -lim;
    if (k->to > lim) k->to = lim;
    if (k->from >= k->to) return;
    /* Day D's occurrences end by local midnight D+2 (a period wraps at most once), and the
     * first instant at which local time reaches a given value is never after an instant
     * showing a later local time: so nothing before day D(from) - 1 reaches `from`. And
     * occurrences of day D(to - 1) + 2 start after `to` (no clock goes back 24 hours). */
    int64_t first = local_day(t->tz, k->from) - 1, last = local_day(t->tz, k->to - 1) + 1;
    int64_t prev = INT64_MIN; /* where the current default stretch began */
    for (int64_t day = first; day <= last; day++) {
        for (size_t i = 0; i < t->n_periods; i++) {
            const gp_tariff_period *p = &t->periods[i];
            int64_t to = p->to_min > p->from_min ? p->to_min : p->to_min + 1440;
            int64_t a = local_min_to_ms(t->tz, day, p->from_min);
            int64_t b = local_min_to_ms(t->tz, day, to);
            if (b <= a) continue;
            if (a > prev && put_default(t, k, prev, a)) return;
            if (put(k, a, b, p->import, p->export_)) return;
            prev = b;
            if (b >= k->to) return;
        }
    }
    put_default(t, k, prev, INT64_MAX);
}

/* Index of the first slot whose stop is after `at` (t->n when none). */
static size_t first_stopping_after(const gp_tariff *t, int64_t at)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->slots[mid].stop_ms <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Slots (file) or one piece (fixed): the slots, with the default price in between. */
static void slot_pieces(const gp_tariff *t, sink *k)
{
    int64_t at = k->from;
    for (size_t i = first_stopping_after(t, at); at < k->to; i++) {
        if (i >= t->n) {
            put_default(t, k, at, INT64_MAX);
            return;
        }
        const gp_price_slot *s = &t->slots[i];
        if (s->start_ms > at && put_default(t, k, at, s->start_ms)) return;
        if (put(k, s->start_ms, s->stop_ms, s->import, s->export_)) return;
        at = s->stop_ms;
    }
}

static void pieces(const gp_tariff *t, sink *k)
{
    if (t->tz)
        period_pieces(t, k);
    else
        slot_pieces(t, k);
}

static const gp_price_slot *at_instant(const gp_tariff *t, int64_t at, sink *k)
{
    *k = (sink){.from = at, .to = at + 1};
    if (at == INT64_MAX) return NULL;
    pieces(t, k);
    return k->len ? &k->one : NULL;
}

double gp_tariff_import(const gp_tariff *t, int64_t at_ms)
{
    if (!t) return NAN;
    sink k;
    const gp_price_slot *s = at_instant(t, at_ms, &k);
    return s ? s->import : NAN;
}

double gp_tariff_export(const gp_tariff *t, int64_t at_ms)
{
    if (!t) return NAN;
    sink k;
    const gp_price_slot *s = at_instant(t, at_ms, &k);
    return s ? s->export_ : NAN;
}

gp_price_slot *gp_tariff_slots(const gp_tariff *t, int64_t from_ms, int64_t to_ms, size_t *n)
{
    *n = 0;
    if (!t || to_ms <= from_ms) return NULL;
    sink k = {.from = from_ms, .to = to_ms, .cap = 16};
    k.out = gp_xmalloc(k.cap * sizeof *k.out);
    pieces(t, &k);
    if (k.len == 0) {
        free(k.out);
        return NULL;
    }
    *n = k.len;
    return k.out;
}
