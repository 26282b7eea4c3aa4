/*
 * Dispatch: turns intents (from the strategy or the API) into journaled commands and follows
 * each one to a terminal state.
 *
 *  validate (known device, capability, value) -> clamp to device limits, then site limits
 *  (warning) -> drop if identical to the command in force (or already queued) -> if the
 *  device's previous command in that slot is still in flight (sent, or a vendor task
 *  pending), queue it: only the latest queued command is kept, older ones are cancelled;
 *  a release is the exception and stops a pending task at once -> journal (write-ahead, one
 *  transaction per submit) -> hand batches to the adapters.
 *
 * Results move commands through queued -> sent -> accepted -> pending -> done | failed |
 * timeout (docs/journal.md). Retryable failures are retried with backoff up to max_attempts;
 * GP_E_AUTH triggers one login and one replay. All calls happen on the loop thread.
 */
#ifndef GP_DISPATCH_H
#define GP_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "intent.h"
#include "journal.h"

/* How dispatch reaches the adapters (the daemon's adapter layer, or a test double). */
typedef struct gp_dispatch_io {
    void *ud;
    /* Hand n commands (borrowed for the call) to adapter a. Results come back through
     * gp_dispatch_command_result. */
    void (*send)(void *ud, unsigned adapter, const gp_cmd *cmds, size_t n);
    /* Poll n tasks sharing one vendor_ref; results via gp_dispatch_task_result. */
    void (*poll)(void *ud, unsigned adapter, const gp_task *tasks, size_t n);
    /* Start a login of adapter a; returns 0 if started (gp_dispatch_login_done follows), -1
     * if the adapter cannot log in. */
    int (*login)(void *ud, unsigned adapter);
    uint32_t (*flags)(void *ud, unsigned adapter);       /* gp_plugin_flag bits */
    int64_t (*task_poll_ms)(void *ud, unsigned adapter); /* poll interval for its tasks */
    /* The journal failed (disk full, I/O error): nothing more can be followed safely. May be
     * NULL. why is borrowed. */
    void (*fatal)(void *ud, const char *why);
    /* Does adapter a want a running vendor task stopped when a different command comes for
     * its device (adapter option busy = "replace")? May be NULL (never). */
    int (*replace_busy)(void *ud, unsigned adapter);
    /* Are adapter a's requests still waiting for the vendor's quota or answer? Its commands
     * do not time out meanwhile (a large batch can wait minutes for its quota). May be
     * NULL. */
    int (*waiting)(void *ud, unsigned adapter);
} gp_dispatch_io;

typedef struct gp_dispatch_opts {
    int dry_run;
    double site_import_w, site_export_w; /* INFINITY = unlimited */
    int max_attempts;                    /* >= 1 */
    int64_t command_timeout_ms;          /* a sent command with no answer after this times out */
    int64_t max_task_age_ms;             /* a vendor task not final after this ends timeout
                                            (0: 48 h) */
    int quiet;                           /* log per-command lines at debug only */
} gp_dispatch_opts;

typedef struct gp_dispatch gp_dispatch;

/* fleet and journal are borrowed and must outlive the dispatcher. */
gp_dispatch *gp_dispatch_new(gp_fleet *f, gp_journal *j, const gp_dispatch_opts *o,
                             const gp_dispatch_io *io);
void gp_dispatch_free(gp_dispatch *d);

enum gp_submit_outcome {
    GP_SUBMIT_SENT = 0,  /* journaled and handed to the adapter */
    GP_SUBMIT_QUEUED,    /* journaled; waits for the device's running command */
    GP_SUBMIT_UNCHANGED, /* identical to the command in force; dropped */
    GP_SUBMIT_INVALID,   /* refused; see message */
    GP_SUBMIT_DRY_RUN,   /* journaled as dry_run, not sent */
    GP_SUBMIT_FAILED,    /* the journal could not record it; not sent */
};

typedef struct gp_submit_result {
    uint64_t id;       /* journal id (0 when not journaled) */
    int outcome;       /* gp_submit_outcome */
    char message[200]; /* why invalid / what was clamped; "" otherwise */
} gp_submit_result;

typedef struct gp_submit_stats {
    size_t sent, queued, unchanged, invalid, dry_run, failed, clamped;
} gp_submit_stats;

/* Submit n intents (borrowed). `origin` ("strategy", "api") is journaled and prefixes
 * messages. res (n entries) and stats may be NULL. Returns the number journaled. */
size_t gp_dispatch_submit(gp_dispatch *d, const gp_intent *in, size_t n, const char *origin,
                          int64_t now_ms, gp_submit_result *res, gp_submit_stats *stats);

/* Group the calls in between into one journal transaction: commands that follow from them
 * leave after its commit. Nestable; every entry point below is such a batch by itself. */
void gp_dispatch_batch_begin(gp_dispatch *d);
void gp_dispatch_batch_end(gp_dispatch *d);

/* Plugin completions (unknown or finished ids are ignored with a debug line). */
void gp_dispatch_command_result(gp_dispatch *d, uint64_t id, const gp_result *r, int64_t now_ms);
void gp_dispatch_task_result(gp_dispatch *d, uint64_t id, const gp_result *r, int64_t now_ms);
void gp_dispatch_login_done(gp_dispatch *d, unsigned adapter, int ok, const char *message,
                            int64_t now_ms);

/* After adapter's discovery: bring back its non-terminal journal rows (pending tasks are
 * polled again, accepted commands are in force again, queued ones wait or go out, sent ones
 * whose answer was lost become timeout: never re-sent). */
void gp_dispatch_restore(gp_dispatch *d, unsigned adapter, int64_t now_ms);

/* Do what is due: retries, task polls, duration expiries, answer timeouts. */
void gp_dispatch_sweep(gp_dispatch *d, int64_t now_ms);

/* on_exit release: a release for every device with a dispatch command in force. Returns how
 * many were submitted. */
size_t gp_dispatch_release_all(gp_dispatch *d, int64_t now_ms);

/* Commands handed to an adapter and not answered yet, plus retries waiting. */
size_t gp_dispatch_unsettled(const gp_dispatch *d);
/* Vendor tasks being polled. */
size_t gp_dispatch_pending_tasks(const gp_dispatch *d);
/* The adapter of a command still being followed, or -1. */
int gp_dispatch_owner(const gp_dispatch *d, uint64_t id);
/* Commands that ended failed or timeout since the dispatcher was created. */
size_t gp_dispatch_failures(const gp_dispatch *d);

#endif
