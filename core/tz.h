/* Time zones: the UTC offset of an IANA zone at any instant, and local wall-clock time back to
 * an instant (for time-of-use tariff periods, which repeat daily in local time). */
#ifndef GP_TZ_H
#define GP_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct gp_tz gp_tz;

/* Load a zone: "UTC" or an IANA name with a file under /usr/share/zoneinfo ("Europe/London").
 * Returns NULL with a reason in err for an unknown name or an unreadable file. Owned by the
 * caller (gp_tz_free). */
gp_tz *gp_tz_load(const char *name, char *err, size_t errlen);
void gp_tz_free(gp_tz *tz);
const char *gp_tz_name(const gp_tz *tz);

/* Seconds east of UTC in force at the instant utc_s (local = utc + offset). */
int32_t gp_tz_offset(const gp_tz *tz, int64_t utc_s);

/* The first instant strictly after utc_s at which the offset may change; INT64_MAX when it
 * never does again. */
int64_t gp_tz_next_change(const gp_tz *tz, int64_t utc_s);

/* The instant (Unix s) of a local wall-clock time, given as seconds since 1970-01-01T00:00
 * local. A local time skipped by a forward change (spring forward) maps to the first instant
 * after the gap, i.e. the change itself; a local time that occurs twice (fall back) maps to
 * its first occurrence. Non-decreasing in local_s. */
int64_t gp_tz_to_utc(const gp_tz *tz, int64_t local_s);

#endif
