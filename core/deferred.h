/*
 * Completions and key-value writes from plugins, applied once per loop iteration.
 *
 * Plugins report command and task results one at a time (a Huawei batch answer carries a
 * hundred) and write their kv state as they go. Applied one by one, each would be its own
 * SQLite commit, an fsync: 10,000 per tick at 10,000 devices. The host queues them instead
 * and applies everything queued in one dispatch batch right after the current loop
 * callback: one commit, and any command that follows from a result (a queued one) leaves
 * after that commit. As a consequence no plugin ever re-enters the dispatcher from inside
 * one of its own operations. kv reads see queued writes.
 */
#ifndef GP_DEFERRED_H
#define GP_DEFERRED_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "journal.h"

typedef struct gp_deferred gp_deferred;

/* dispatch and journal are borrowed and must outlive it. */
gp_deferred *gp_deferred_new(gp_dispatch *d, gp_journal *j);
/* Apply what is queued, then free. */
void gp_deferred_free(gp_deferred *q);

/* Queue a command result (task = 0) or a task result (task = 1) that adapter `adapter`
 * reported; r and its strings are copied. A result for another adapter's command is dropped
 * (with a warning) when applied. */
void gp_deferred_result(gp_deferred *q, unsigned adapter, int task, uint64_t cmd_id,
                        const gp_result *r);
/* Queue a kv write (val NULL: delete); copied. Returns 0. */
int gp_deferred_kv_set(gp_deferred *q, const char *scope, const char *key, const void *val,
                       size_t len);
/* A queued value, else the journal's: malloc'd NUL-terminated copy (caller frees) or NULL. */
void *gp_deferred_kv_get(gp_deferred *q, const char *scope, const char *key, size_t *len);

/* Apply everything queued now (also runs by itself after the current loop callback). */
void gp_deferred_apply(gp_deferred *q);

#endif
