/*
 * The durable command journal (SQLite, WAL, in state_dir/journal.db).
 *
 * Every command the core sends is written here before it leaves, and every state change
 * after. It also holds the monotonic request-id sequence and the adapters' key-value state.
 * Kept behind this one small interface so that a shared store (PostgreSQL) can replace it.
 *
 * Every call is its own transaction unless made between gp_journal_begin and
 * gp_journal_commit (the dispatcher batches one tick's commands into one transaction).
 * Times are Unix ms. Strings passed in are borrowed (copied into the database).
 */
#ifndef GP_JOURNAL_H
#define GP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gridpilot/plugin.h"

typedef enum gp_jstate {
    GP_JS_QUEUED = 0, /* decided, waiting (behind a running task, or for its batch) */
    GP_JS_SENT,       /* handed to the plugin; no answer yet */
    GP_JS_ACCEPTED,   /* the vendor took it and it is in force */
    GP_JS_PENDING,    /* the vendor runs it asynchronously; vendor_ref is polled */
    GP_JS_DONE,       /* finished (task complete, setting applied, setpoint superseded) */
    GP_JS_FAILED,     /* refused or errored; see error */
    GP_JS_TIMEOUT,    /* no answer in time, or the vendor timed the task out */
    GP_JS_DRY_RUN,    /* would have been sent (run --dry-run) */
    GP_JS_CANCELLED,  /* superseded before it was sent, or stopped by a release */
    GP_JS_COUNT
} gp_jstate;

const char *gp_jstate_name(gp_jstate s); /* "queued", ...; static string */
int gp_jstate_parse(const char *name);   /* gp_jstate, or -1 */
int gp_jstate_terminal(gp_jstate s);     /* done, failed, timeout, dry_run, cancelled */

const char *gp_cmd_kind_name(gp_cmd_kind k); /* "setpoint", "dod", "on", "release" */
int gp_cmd_kind_parse(const char *name);     /* gp_cmd_kind, or -1 */

typedef struct gp_jrow {
    uint64_t id;         /* assigned by gp_journal_add */
    const char *device;  /* full device id ("fusion/NE=123") */
    const char *adapter; /* adapter id */
    gp_cmd_kind kind;
    double value;        /* W, %, 1/0; NAN for release */
    double soc_target;   /* NAN when none */
    uint32_t duration_s; /* 0 when none */
    gp_jstate state;
    const char *vendor_ref; /* NULL when none */
    int64_t created_ms, updated_ms;
    uint32_t attempts;
    const char *error;  /* last error, NULL when none */
    double energy_wh;   /* energy the vendor reported for the task, NAN when unknown */
    const char *origin; /* "strategy", "api", "on_exit", "expiry" */
    const char *detail; /* vendor details as JSON object text, NULL when none */
} gp_jrow;

typedef struct gp_journal gp_journal;

/* Open (creating state_dir and the schema when needed unless readonly). Returns NULL with a
 * one-line reason naming the file. Owned by the caller; gp_journal_close frees it. A
 * readonly open of a journal that does not exist yet fails with errno-style reason
 * "no journal yet". */
gp_journal *gp_journal_open(const char *state_dir, int readonly, char *err, size_t errlen);
void gp_journal_close(gp_journal *j);
/* A journal nobody resumes from (a simulation's): commits stop waiting for the disk
 * (synchronous=OFF) and transitions are not kept as history (each row still has its state,
 * times, attempts and last error). 0, or -1. */
int gp_journal_set_volatile(gp_journal *j);
/* Delete the commands that reached a final state before before_ms, with their transitions
 * (a simulation's journal would otherwise grow by a row per command for a whole year; a
 * daemon's is never pruned). Returns how many, or -1. */
int gp_journal_prune(gp_journal *j, int64_t before_ms);
const char *gp_journal_path(const gp_journal *j); /* borrowed */

/* Group the following writes in one transaction (nestable; the outermost commit writes). */
int gp_journal_begin(gp_journal *j);
int gp_journal_commit(gp_journal *j);

/* Insert a command in row->state (queued or dry_run) at now_ms; returns its id, 0 on error.
 * row->id, created_ms and updated_ms are ignored. */
uint64_t gp_journal_add(gp_journal *j, const gp_jrow *row, int64_t now_ms);

/* Move a command to `to` at now_ms, recording a transition with `note` (borrowed, may be
 * NULL); for failed, timeout, cancelled and queued (a retry) the note also becomes the row's
 * last error. A terminal command never changes state again (-1). */
int gp_journal_transition(gp_journal *j, uint64_t id, gp_jstate to, int64_t now_ms,
                          const char *note);
int gp_journal_set_vendor_ref(gp_journal *j, uint64_t id, const char *vendor_ref);
int gp_journal_set_attempts(gp_journal *j, uint64_t id, uint32_t attempts);
/* Record task energy and/or details (NAN / NULL leave the stored value). */
int gp_journal_set_result(gp_journal *j, uint64_t id, double energy_wh, const char *detail);

/* Call cb for every row (state < 0) or rows in one state, oldest first. The row and its
 * strings are borrowed for the callback. A non-zero return from cb stops the walk. Returns
 * the number of rows visited, or -1 on error. */
typedef int (*gp_jrow_cb)(void *ud, const gp_jrow *row);
int gp_journal_each(gp_journal *j, int state, gp_jrow_cb cb, void *ud);
/* Rows not in a terminal state (queued, sent, accepted, pending), oldest first. */
int gp_journal_each_active(gp_journal *j, gp_jrow_cb cb, void *ud);
/* One row; returns 1 found, 0 not found, -1 error. */
int gp_journal_get(gp_journal *j, uint64_t id, gp_jrow_cb cb, void *ud);

/* Transitions of one command, oldest first. */
typedef int (*gp_jtrans_cb)(void *ud, gp_jstate state, int64_t at_ms, const char *note);
int gp_journal_history(gp_journal *j, uint64_t id, gp_jtrans_cb cb, void *ud);

/* Number of rows per state (counts has GP_JS_COUNT entries). */
int gp_journal_count(gp_journal *j, uint64_t counts[GP_JS_COUNT]);

/* The durable, strictly increasing sequence `name` (> every value ever returned, even across
 * crashes). Returns 0 on error. */
uint64_t gp_journal_seq_next(gp_journal *j, const char *name);
/* Make the next value of sequence `name` greater than floor (no effect when it already is).
 * Nothing is written until the next gp_journal_seq_next. */
void gp_journal_seq_floor(gp_journal *j, const char *name, uint64_t floor);

/* Adapter key-value state. kv_get returns a malloc'd NUL-terminated copy (caller frees) or
 * NULL. kv_set with val == NULL deletes. */
int gp_journal_kv_set(gp_journal *j, const char *scope, const char *key, const void *val,
                      size_t len);
void *gp_journal_kv_get(gp_journal *j, const char *scope, const char *key, size_t *len);

/* The last error message (borrowed, valid until the next call). */
const char *gp_journal_error(const gp_journal *j);

#endif
