/* Prices over time (ctx.tariff). */
#ifndef GP_TARIFF_H
#define GP_TARIFF_H

#include <stddef.h>
#include <stdint.h>

typedef struct gp_price_slot {
    int64_t start_ms, stop_ms;
    double import, export_; /* currency per kWh; may be negative; NAN when unknown */
} gp_price_slot;

typedef struct gp_tariff gp_tariff;

/* Prices in force at t (NAN when the tariff has no price there). A NULL tariff has none. */
double gp_tariff_import(const gp_tariff *t, int64_t at_ms);
double gp_tariff_export(const gp_tariff *t, int64_t at_ms);
/* The slots overlapping [from_ms, to_ms), clipped to it, in order. Returns a malloc'd array
 * the caller frees and its length in *n (NULL with *n == 0 when there is none). */
gp_price_slot *gp_tariff_slots(const gp_tariff *t, int64_t from_ms, int64_t to_ms, size_t *n);
/* A tariff with one import and one export price at all times (owned by the caller). */
gp_tariff *gp_tariff_fixed(double import, double export_);
void gp_tariff_free(gp_tariff *t);

#endif
