/*
 * Per-API counters behind GET /_emu/stats: calls, answers refusing the call for its rate
 * limit, and other failures (a vendor error code, an HTTP error, or a fault that kept the
 * answer from arriving). Not locked: the framework holds its mutex.
 */
#ifndef GP_EMU_STATS_H
#define GP_EMU_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

typedef struct emu_stat {
    const char *api; /* borrowed (the route table, or "unknown") */
    uint64_t calls, quota, failures;
} emu_stat;

typedef struct emu_stats {
    emu_stat *s; /* owned */
    size_t n;
} emu_stats;

/* One counter per name (names borrowed; duplicates share the first). */
void emu_stats_init(emu_stats *st, const char *const *apis, size_t n);
/* Count one call to api (an unknown name counts under the last one). */
void emu_stats_count(emu_stats *st, const char *api, int quota_hit, int failed);
/* Append {"apis":{"login":{"calls":..,"limited":..,"failures":..},...}}. */
void emu_stats_json(const emu_stats *st, gp_str *out);
void emu_stats_free(emu_stats *st);

#endif
