/* Prices over time (ctx.tariff): a fixed price, a price file's slots, or daily time-of-use
 * periods in a time zone, each with a default price for the times nothing else covers. */
#ifndef GP_TARIFF_H
#define GP_TARIFF_H

#include <stddef.h>
#include <stdint.h>

struct gp_tz;

typedef struct gp_price_slot {
    int64_t start_ms, stop_ms;
    double import, export_; /* currency per kWh; may be negative; NAN when unknown */
} gp_price_slot;

typedef struct gp_tariff gp_tariff;

/* A daily time-of-use period in minutes after local midnight. to_min <= from_min wraps past
 * midnight (22:00-06:00); to_min 1440 is the midnight that ends the day. */
typedef struct gp_tariff_period {
    int from_min, to_min;   /* from 0..1439, to 0..1440, to != from */
    double import, export_; /* NAN when unknown */
} gp_tariff_period;

/* At most this many slots come back from one gp_tariff_slots() call on a periods tariff
 * (about 390 years of three periods a day); the rest of the range is left out. */
#define GP_TARIFF_MAX_SLOTS 1000000

/* Prices in force at t (NAN when the tariff has no price there). A NULL tariff has none. */
double gp_tariff_import(const gp_tariff *t, int64_t at_ms);
double gp_tariff_export(const gp_tariff *t, int64_t at_ms);
/* The slots overlapping [from_ms, to_ms), clipped to it, in order. Returns a malloc'd array
 * the caller frees and its length in *n (NULL with *n == 0 when there is none).
 * File: its slots, plus one slot of the default price for each stretch the file does not
 * cover. Periods: one slot per occurrence of a period and one per default stretch between
 * two occurrences (which may cross midnight). Fixed: one slot. Stretches of the default
 * price are left out when the tariff has no default price. */
gp_price_slot *gp_tariff_slots(const gp_tariff *t, int64_t from_ms, int64_t to_ms, size_t *n);
/* The time range a file tariff covers, [*from_ms, *to_ms) (to is INT64_MAX for an open-ended
 * last slot): returns 0. Returns -1 for a tariff that prices all time the same way (fixed,
 * periods) or a NULL one. */
int gp_tariff_extent(const gp_tariff *t, int64_t *from_ms, int64_t *to_ms);

/* A tariff with one import and one export price at all times (owned by the caller). */
gp_tariff *gp_tariff_fixed(double import, double export_);
/* A tariff of price slots (sorted by start, not overlapping, gaps allowed); takes ownership
 * of the malloc'd `slots`. Times no slot covers have the default prices (NAN for none). */
gp_tariff *gp_tariff_from_slots(gp_price_slot *slots, size_t n, double default_import,
                                double default_export);
/* Periods repeating every day in local time of `tz` (ownership taken). They must not
 * overlap (gp_tariff_load checks that). The default prices cover the rest of each day.
 * Period boundaries are local times converted with gp_tz_to_utc(): one that a spring-forward
 * change skips falls on the first instant after the gap, one that a fall-back change repeats
 * on its first occurrence. */
gp_tariff *gp_tariff_from_periods(const gp_tariff_period *periods, size_t n, struct gp_tz *tz,
                                  double default_import, double default_export);
void gp_tariff_free(gp_tariff *t);

#endif
