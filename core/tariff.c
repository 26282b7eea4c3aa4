/* Tariffs. A tariff is a sorted list of price slots plus a default price for times no slot
 * covers. */
#include "tariff.h"

#include <math.h>
#include <stdlib.h>

#include "str.h"

struct gp_tariff {
    gp_price_slot *slots; /* sorted by start, non-overlapping */
    size_t n;
    double default_import, default_export; /* NAN when none */
};

gp_tariff *gp_tariff_fixed(double import, double export_)
{
    gp_tariff *t = gp_xcalloc(1, sizeof *t);
    t->default_import = import;
    t->default_export = export_;
    return t;
}

void gp_tariff_free(gp_tariff *t)
{
    if (!t) return;
    free(t->slots);
    free(t);
}

static const gp_price_slot *find(const gp_tariff *t, int64_t at)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->slots[mid].stop_ms <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->n && t->slots[lo].start_ms <= at) return &t->slots[lo];
    return NULL;
}

double gp_tariff_import(const gp_tariff *t, int64_t at_ms)
{
    if (!t) return NAN;
    const gp_price_slot *s = find(t, at_ms);
    return s ? s->import : t->default_import;
}

double gp_tariff_export(const gp_tariff *t, int64_t at_ms)
{
    if (!t) return NAN;
    const gp_price_slot *s = find(t, at_ms);
    return s ? s->export_ : t->default_export;
}

gp_price_slot *gp_tariff_slots(const gp_tariff *t, int64_t from_ms, int64_t to_ms, size_t *n)
{
    *n = 0;
    if (!t || to_ms <= from_ms) return NULL;
    size_t cap = 16, len = 0;
    gp_price_slot *out = gp_xmalloc(cap * sizeof *out);
    int64_t at = from_ms;
    while (at < to_ms) {
        const gp_price_slot *s = find(t, at);
        gp_price_slot piece;
        if (s) {
            piece = *s;
            piece.start_ms = at;
        } else {
            /* A gap: the default price until the next slot starts. */
            int64_t next = to_ms;
            for (size_t i = 0; i < t->n; i++)
                if (t->slots[i].start_ms > at) {
                    next = t->slots[i].start_ms;
                    break;
                }
            piece = (gp_price_slot){at, next, t->default_import, t->default_export};
        }
        if (piece.stop_ms > to_ms) piece.stop_ms = to_ms;
        if (len == cap) out = gp_xrealloc(out, (cap *= 2) * sizeof *out);
        out[len++] = piece;
        at = piece.stop_ms;
    }
    *n = len;
    return out;
}
