/*
 * The huawei plugin's internal types, shared by its files: Huawei SmartPVMS (FusionSolar)
 * northbound interface V500R007C00, the V7 `/rest/openapi/pvms/v1/` API (login, plants,
 * devices, VPP realtime KPIs, charge/discharge tasks, DoD, inverter on/off).
 *
 * Nothing here is exported: the module is built with -fvisibility=hidden and only
 * gp_plugin_entry_v1 is visible. Everything runs on the host's loop thread.
 *
 * Memory: the instance owns its configuration copies, the session token (memory only, never
 * logged), the plant table of the last successful discovery, and every in-flight request
 * context (hw_call). Operation contexts own copies of what they need from the borrowed
 * targets/commands, so a discovery that rebuilds the plant table never pulls memory from
 * under a request in flight.
 */
#ifndef GP_HUAWEI_H
#define GP_HUAWEI_H

#include <stddef.h>
#include <stdint.h>

#include "gridpilot/plugin.h"

/* The host table handed to the entry; outlives every instance. */
extern const gp_host *hw_host;

#define HW_MAX_CODES     100   /* plant codes / dns per request (seed 5.2.2, 5.3.4, 5.3.6-9) */
#define HW_TYPE_BATTERY  20815 /* seed section 6, device type list */
#define HW_TYPE_INVERTER 20822
#define HW_MAX_MINUTES   1440 /* dispatchTime range [0,1440] (seed 5.3.6) */
#define HW_MSG_LEN       320
#define HW_API_PREFIX    "/rest/openapi/pvms/v1/"
#define HW_DOD_MIN       80 /* Huawei batteries: end-of-discharge SoC 0..20 % (seed 5.3.8) */
#define HW_DOD_MAX       100
#define HW_LOGIN_TRIES   3 /* login answers "too many requests" in a row before giving up */
/* A task not final this long after its request went out is given up (seed 5.3.7: Huawei
 * times tasks out after 24 h; one more hour for its 3-minute refresh and clock skew). */
#define HW_TASK_GIVE_UP_MS (25LL * 3600 * 1000)

/* ---- small utilities (hw_util.c): allocation that aborts on out-of-memory ----------------- */

void *hw_xcalloc(size_t n, size_t size); /* free with free() */
void *hw_xrealloc(void *p, size_t size);
char *hw_xstrdup(const char *s); /* NULL in, NULL out; free with free() */

/* A list of owned strings. */
typedef struct hw_strv {
    char **v;
    size_t n, cap;
} hw_strv;

void hw_strv_push(hw_strv *l, const char *s); /* copies s */
void hw_strv_free(hw_strv *l);                /* frees the strings and the array */
int hw_strv_has(const hw_strv *l, const char *s);

/* ---- the instance --------------------------------------------------------------------- */

/* One plant (one gridpilot device) as discovery found it. */
typedef struct hw_plant {
    char *code;         /* owned; the plant code, also the device's vendor id */
    char *model;        /* owned or NULL; battery model, else inverter model */
    hw_strv batteries;  /* owned; battery dns (devTypeId 20815) for vpp/dod */
    hw_strv inverters;  /* owned; inverter dns (devTypeId 20822) for vpp/devOnOff */
    double capacity_wh; /* summed ratedCapacity (or usableCapacity) of its batteries; NAN */
    double dod_pct;     /* a battery's dod from the device list; NAN when not given */
    uint32_t caps;      /* GP_CAP_* */
} hw_plant;

void hw_plant_free(hw_plant *p); /* the members, not p itself */

/* A chargeAndDischarge request that left tasks to poll: when it went out, and whether its
 * answer was lost (the vendor may never have received it). Kept 48 h, in memory and in the
 * host's kv store (hw_task.c), so a restart still knows. */
typedef struct hw_sent {
    uint64_t id;     /* the requestID */
    int64_t sent_ms; /* host clock when the request was handed to the host */
    int unconfirmed; /* 1: no answer confirmed it (transport error, broken answer) */
} hw_sent;

typedef struct hw_call hw_call; /* one HTTP request in flight (hw_api.c) */
typedef struct hw_disc hw_disc; /* a discovery in progress (hw_discover.c) */

typedef struct hw {
    gp_hctx *h;
    char *base_url;         /* owned; no trailing slash */
    char *username;         /* owned */
    const char *password;   /* owned by the host, lives as long as h; never logged */
    hw_strv only;           /* owned; config.plants (empty: every plant of the account) */
    uint32_t default_min;   /* dispatchTime for a setpoint without duration_s, minutes */
    uint32_t page_size;     /* pageSize for plants / devices */
    double battery_power_w; /* config battery_power_w: max charge/discharge W; NAN unknown */

    char *token; /* owned; the XSRF-TOKEN of the session, NULL without one; never logged */
    /* Which token a request was sent with: a 305 to a request that went out before the
     * current login must not drop the new session. */
    uint64_t token_gen;  /* bumped by every new token */
    uint64_t answer_gen; /* token_gen of the request whose answer is being handled */

    /* Login in flight: who waits for it (the host's login op, a discovery). */
    int login_busy;
    unsigned login_for_host; /* login ops to answer with login_done */
    int login_for_disc;
    unsigned login_limited; /* login answers "too many requests" in a row */

    hw_plant *plants; /* owned, sorted by code; from the last successful discovery */
    size_t n_plants;
    hw_disc *disc; /* owned; the discovery in progress, or NULL */

    hw_call *calls; /* owned; every request in flight (freed by destroy) */

    hw_sent *sent; /* owned; chargeAndDischarge requests of the last 48 h (hw_task.c) */
    size_t n_sent, cap_sent;
    int sent_loaded; /* the kv copy has been read */
} hw;

/* hw_config.c: validate the config (every problem via config_error) and build an instance,
 * or return NULL. Owned by the caller (hw_free). */
hw *hw_config_build(gp_hctx *h, const gp_json *config);
void hw_free(hw *s);

/* The plant with this code (vendor id), using `local` as a hint; NULL when unknown. */
hw_plant *hw_find_plant(hw *s, uint32_t local, const char *code);

/* ---- HTTP and answers (hw_api.c) ------------------------------------------------------ */

/* An error as every operation reports it: code is 0 (no error), a gp_error, or a failCode. */
typedef struct hw_err {
    int code;
    int retryable;
    /* The request may have taken effect although no usable answer came back (transport error
     * after sending, HTTP 5xx, a broken answer, server trouble): a command's outcome is
     * unknown, and only the vendor's task status can tell. */
    int unknown;
    /* A 305 to a request sent with a token older than the session's: no new login needed. */
    int session_changed;
    char msg[HW_MSG_LEN];
} hw_err;

/* Called exactly once with the answer (borrowed). */
typedef void (*hw_done_fn)(void *ud, const gp_http_resp *r);
/* Called instead of done when the instance is destroyed with the request in flight: free
 * what ud holds without reporting anything. */
typedef void (*hw_drop_fn)(void *ud);

/*
 * POST body (JSON text, borrowed) to HW_API_PREFIX + api with endpoint = quota (a static
 * string), priority prio and, when with_token, the session's XSRF-TOKEN header. Returns 0
 * when queued (done or drop will be called once), -1 when the host refused the request
 * (neither is called; err says why).
 */
int hw_post(hw *s, const char *api, const char *quota, const char *body, int prio, int with_token,
            hw_done_fn done, hw_drop_fn drop, void *ud, hw_err *err);
/* Free every request context still in flight (destroy). */
void hw_calls_drop_all(hw *s);

/*
 * Check an answer of `api` for quota `quota`: transport errors, HTTP status, JSON, and the
 * {success, failCode, message} envelope. Returns the parsed document (the caller frees it
 * with json_free) when the vendor answered failCode 0, else NULL with err filled: 305 or
 * 30029 → GP_E_AUTH (the session is dropped), or GP_E_TRANSPORT retryable with
 * session_changed when the request carried an older token than the session's; 407 →
 * GP_E_RATE_LIMIT (host->rate_limited called), transport / HTTP 5xx → GP_E_TRANSPORT
 * (retryable), malformed → GP_E_PROTOCOL, any other failCode → that code with the seed's
 * text. err->unknown tells whether the request may have taken effect anyway.
 */
gp_json *hw_answer(hw *s, const char *api, const char *quota, const gp_http_resp *r, hw_err *err);
/* Fill err (message formatted, one line; unknown and session_changed cleared). */
void hw_err_set(hw_err *err, int code, int retryable, const char *fmt, ...) GP_PRINTF(4, 5);
/* A gp_result (code and retryable only when FAILED; no energy; msg and ref borrowed). */
gp_result hw_result(gp_status st, int code, int retry, const char *msg, const char *ref);
/* A gp_result for err (borrows err->msg). */
gp_result hw_err_result(const hw_err *err);

/* ---- failCode texts (hw_errors.c) ----------------------------------------------------- */

/* The seed's description of a failCode, or NULL for an unknown code. Static text. */
const char *hw_fail_text(int code);

/* ---- JSON helpers (hw_json.c) --------------------------------------------------------- */

/* The entries of a list answer: `data` itself when it is an array, data.list when it is a
 * paged object (page info in *page, else NULL), NULL otherwise. Borrowed from data. */
const gp_json *hw_data_list(const gp_json *data, const gp_json **page);
/* obj[key] as a string, or NULL (missing, null, not a string). Borrowed. */
const char *hw_jstr(const gp_json *obj, const char *key);
/* obj[key] as a number (numeric strings too); NAN when missing, null or not a number. */
double hw_jnum(const gp_json *obj, const char *key);
/* 1 if obj[key] is present and neither null nor a number (a wrong type). */
int hw_jbad_num(const gp_json *obj, const char *key);
/* Append the strings joined with commas. */
void hw_join(gp_str *b, char *const *v, size_t n);
/* Copy src into dst (size n) as one line of printable text, truncated. */
void hw_oneline(char *dst, size_t n, const char *src);

/* ---- session (hw_auth.c) -------------------------------------------------------------- */

/* Start a login (or join the one in flight). for_host: answer with login_done; for_disc:
 * continue the discovery (hw_disc_login_done). */
void hw_login(hw *s, int for_host, int for_disc);
/* The session's token was refused (failCode 305): forget it. */
void hw_session_drop(hw *s);

/* ---- operations ----------------------------------------------------------------------- */

void hw_discover(hw *s);                                        /* hw_discover.c */
void hw_disc_login_done(hw *s, int ok, const hw_err *err);      /* hw_discover.c */
void hw_disc_free(hw_disc *d);                                  /* hw_discover.c */
void hw_read(hw *s, uint64_t op, const gp_target *t, size_t n); /* hw_read.c */
void hw_command(hw *s, const gp_cmd *c, size_t n);              /* hw_command.c */
void hw_task_poll(hw *s, const gp_task *t, size_t n);           /* hw_task.c */

/* hw_task.c: remember a chargeAndDischarge request that left tasks to poll (memory and host
 * kv); look one up (1 found, 0 unknown); free the memory copy (destroy). */
void hw_sent_note(hw *s, uint64_t request_id, int64_t sent_ms, int unconfirmed);
int hw_sent_find(hw *s, uint64_t request_id, hw_sent *out);
void hw_sent_free(hw *s);

#endif
