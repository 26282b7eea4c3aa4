/* Durations ("500ms", "30s", "5m", "1h", "1d"), ISO-8601 times and the clock. */
#ifndef GP_TIMEUTIL_H
#define GP_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse a DURATION into milliseconds. Accepts an integer or decimal followed by ms, s, m, h
 * or d ("1.5h"). Returns 0 on success, -1 with a reason in err. */
int gp_parse_duration_ms(const char *text, int64_t *out_ms, char *err, size_t errlen);

/* Parse ISO-8601 ("2026-01-01T00:00:00Z", "...+01:00", "2026-01-01T00:00:00.250Z") or a
 * date ("2026-01-01", midnight UTC) into Unix ms. Returns 0 or -1 with a reason. */
int gp_parse_time_ms(const char *text, int64_t *out_ms, char *err, size_t errlen);

/* Format Unix ms as ISO-8601 UTC with milliseconds: "2026-01-01T00:00:00.000Z". buf >= 32. */
void gp_format_time(int64_t ms, char *buf, size_t len);
/* Format a duration for humans: "250ms", "30s", "5m", "1h30m". buf >= 32. */
void gp_format_duration(int64_t ms, char *buf, size_t len);

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
int64_t gp_days_from_civil(int64_t y, int m, int d);

/* Wall clock, Unix ms. */
int64_t gp_wall_ms(void);
/* Monotonic clock in seconds, for measuring. */
double gp_mono_s(void);

#endif
