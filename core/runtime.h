/*
 * The running daemon's shared state (internal). One gp_rt per `run`/`simulate`; one
 * gp_hctx per configured adapter: the host's handle that plugins see as opaque.
 */
#ifndef GP_RUNTIME_H
#define GP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "deferred.h"
#include "diag.h"
#include "dispatch.h"
#include "fleet.h"
#include "http.h"
#include "idmap.h"
#include "journal.h"
#include "loader.h"
#include "strategy.h"
#include "tariff.h"

struct gp_rt;

enum gp_adapter_state {
    GP_AD_NEW = 0,
    GP_AD_DISCOVERING,
    GP_AD_READY,
    GP_AD_FAILED, /* discovery failed; retried later (never in --once) */
    GP_AD_CLOSING,
};

/* One read call in flight: a slice of the adapter's device list. */
typedef struct gp_read_op {
    uint64_t op;
    size_t first, count; /* into gp_hctx.devs */
    int64_t started_ms;
    int replayed; /* already re-run once after a login */
} gp_read_op;

struct gp_hctx {
    struct gp_rt *rt;          /* NULL in `check`: only create/destroy run */
    unsigned index;            /* adapter index (same in config, fleet and dispatch) */
    const gp_adapter_cfg *cfg; /* borrowed from the config */
    const char *config_dir;    /* borrowed: the config file's folder (relative paths) */
    gp_plugin plugin;          /* owned */
    void *inst;                /* the plugin's instance */
    gp_diag *diag;             /* where config_error goes during create; NULL after */
    char prefix[48];           /* "adapters[2].config" */
    char **owned;              /* strings handed to the plugin (secrets, paths); owned */
    size_t n_owned;
    gp_http_opts http;
    struct gp_quota_queue *quotas; /* quota-scheduled HTTP (NULL in `check`); owned */
    int state;                     /* gp_adapter_state */
    int64_t discover_backoff_ms;
    gp_timer *retry_timer, *poll_timer, *start_timer, *settle_timer;
    int discovered_once;
    gp_idmap seen;  /* devices announced in the current discovery (re-announcements) */
    uint32_t *devs; /* fleet indices of this adapter's devices, in discovery order */
    size_t n_devs, cap_devs;
    gp_read_op *reads; /* reads in flight */
    size_t n_reads, cap_reads;
    uint64_t next_op;
    int first_read_done;
    int logging_in;
    gp_timer *login_timer; /* the login's next step (start, deadline, settle) */
    int login_answered, login_ok;
    char *login_msg; /* the login's outcome message until it settles; owned */
    void **timers;   /* the plugin's timers (host.c), stopped when the adapter closes */
    size_t n_timers, cap_timers;
    int read_error_logged;    /* avoid one warning per poll while a vendor is down */
    int64_t last_activity_ms; /* last request sent or result reported (startup deadline) */
};

/* adapter.c */
/* Load the plugin and create the instance (config problems go to d). Returns NULL on error
 * (reported in d). rt may be NULL (`check`). */
struct gp_hctx *gp_adapter_open(struct gp_rt *rt, unsigned index, const gp_adapter_cfg *cfg,
                                const char *config_dir, char *const *plugin_path, gp_diag *d);
void gp_adapter_close(struct gp_hctx *h);           /* cancels HTTP, destroys the instance, frees */
void gp_adapter_start(struct gp_hctx *h);           /* discovery (from the loop) */
void gp_adapter_retry_discovery(struct gp_hctx *h); /* after a failure, with backoff */
void gp_adapter_begin_polling(struct gp_hctx *h);   /* read now, then every `poll` */
void gp_adapter_stop_polling(struct gp_hctx *h);
void gp_adapter_read_all(struct gp_hctx *h);
void gp_adapter_send(struct gp_hctx *h, const gp_cmd *cmds, size_t n);
void gp_adapter_poll_tasks(struct gp_hctx *h, const gp_task *tasks, size_t n);
int gp_adapter_login(struct gp_hctx *h);
/* Completions the host table forwards. */
void gp_adapter_read_done(struct gp_hctx *h, uint64_t op, const gp_result *r);
void gp_adapter_login_done(struct gp_hctx *h, const gp_result *r);
int64_t gp_adapter_task_poll_ms(const struct gp_hctx *h);
/* Has the adapter sent nothing and heard nothing for limit_ms (and waits for no quota)? */
int gp_adapter_stalled(const struct gp_hctx *h, int64_t now, int64_t limit_ms);
/* Does it have requests waiting for quota or for an answer? */
int gp_adapter_waiting_on_vendor(const struct gp_hctx *h);

/* host.c: the services table handed to every plugin. */
const gp_host *gp_host_table(void);
/* Stop and forget every timer the adapter's plugin started. */
void gp_host_stop_timers(struct gp_hctx *h);
/* Copy a plugin-filled struct of possibly older/newer size into the current layout, with
 * unknown numbers NAN. */
void gp_host_norm_result(const gp_result *in, gp_result *out);

/* daemon.c hooks the adapter layer calls. */
void gp_rt_adapter_discovered(struct gp_rt *rt, struct gp_hctx *h, int ok);
void gp_rt_adapter_read(struct gp_rt *rt, struct gp_hctx *h);
gp_dispatch *gp_rt_dispatch(struct gp_rt *rt);
gp_deferred *gp_rt_deferred(struct gp_rt *rt);
gp_fleet *gp_rt_fleet(struct gp_rt *rt);
gp_journal *gp_rt_journal(struct gp_rt *rt);
gp_http *gp_rt_http(struct gp_rt *rt);
int gp_rt_dry_run(const struct gp_rt *rt);

#endif
