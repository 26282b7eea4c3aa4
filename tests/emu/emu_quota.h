/*
 * A strict sliding-window rate limit for a vendor API: at most `limit` calls in any window of
 * `window_ms` emulated milliseconds. With count_refused (Huawei's default: the document limits
 * "access times per minute", and a refused call is an access) refused calls are recorded too,
 * so a client that keeps calling while refused stays refused. Cost: `limit` timestamps.
 */
#ifndef GP_EMU_QUOTA_H
#define GP_EMU_QUOTA_H

#include <stddef.h>
#include <stdint.h>

typedef struct emu_quota {
    int64_t *t; /* owned ring of the last `limit` call times */
    size_t limit, head, n;
    int64_t window_ms;
    int count_refused;
} emu_quota;

void emu_quota_init(emu_quota *q, size_t limit, int64_t window_ms, int count_refused);
/* Record a call at now; 1 if it exceeds the limit (limit calls already inside the window
 * (now - window_ms, now]). Times must not go back. */
int emu_quota_hit(emu_quota *q, int64_t now);
void emu_quota_free(emu_quota *q);

#endif
