/*
 * gridpilot plugin ABI, version 1.
 *
 * The only header a vendor plugin needs. A plugin is a shared object that exports one
 * function, GP_PLUGIN_ENTRY (gp_plugin_entry_v1), returning a constant descriptor: magic,
 * ABI version, struct size, identity, capabilities, quotas and the operation table.
 *
 * Rules every plugin follows (docs/plugin-abi.md explains them with a walk-through):
 *  - Everything runs on the host's single loop thread. A plugin never blocks, never opens
 *    sockets, never starts threads: HTTP, timers, clock, logging, JSON, configuration and
 *    persistence come from the gp_host table handed to the entry function.
 *  - A plugin links nothing the host provides (no libcurl, libev, cJSON, sqlite).
 *  - Operations are asynchronous: the plugin reports results through the gp_host callbacks
 *    (reading, read_done, command_result, task_result, ...), possibly from inside the
 *    operation itself, possibly much later from an HTTP or timer callback.
 *  - Structs only grow at their end. Every struct the host or the plugin fills carries its
 *    own size so either side can tell which fields the other one knows about.
 *
 * Ownership: "borrowed" means valid only for the duration of the call (copy what you keep);
 * "owned by X" says who frees it and with what.
 *
 * Units and signs are the contract's: W, Wh, percent, Unix time. battery_w and setpoint
 * values are + discharging (battery -> site), - charging; grid_w is + importing.
 */
#ifndef GRIDPILOT_PLUGIN_H
#define GRIDPILOT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- identity and versioning ---------------------------------------------------------- */

#define GP_PLUGIN_MAGIC 0x47505031u /* "GPP1" */
#define GP_ABI_MAJOR    1           /* incompatible changes; the loader refuses a mismatch */
#define GP_ABI_MINOR    1           /* compatible additions at the end of structs */

/* The one exported symbol. Its name carries the major version so that an old plugin is
 * refused by name rather than misread. */
#define GP_PLUGIN_ENTRY      gp_plugin_entry_v1
#define GP_PLUGIN_ENTRY_NAME "gp_plugin_entry_v1"

#if defined(__GNUC__)
#define GP_EXPORT       __attribute__((visibility("default")))
#define GP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GP_EXPORT
#define GP_PRINTF(f, a)
#endif

/* ---- capabilities (per device) -------------------------------------------------------- */

enum gp_cap {
    GP_CAP_READ = 1u << 0,       /* telemetry */
    GP_CAP_SETPOINT = 1u << 1,   /* active battery power (or PV output cap without battery) */
    GP_CAP_SOC_TARGET = 1u << 2, /* charge/discharge until a state of charge is reached */
    GP_CAP_DOD = 1u << 3,        /* depth of discharge setting */
    GP_CAP_ONOFF = 1u << 4,      /* inverter power on/off */
};
#define GP_CAP_WRITE_MASK (GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF)

/* Plugin-wide behaviour flags (gp_plugin_desc.flags). */
enum gp_plugin_flag {
    /* Commands may complete as GP_PENDING; task_poll is then mandatory. */
    GP_PF_TASKS = 1u << 0,
    /* The vendor ends a timed setpoint itself; otherwise the core sends a release when
     * duration_s runs out. */
    GP_PF_NATIVE_DURATION = 1u << 1,
    /* The plugin pushes telemetry on its own (a stream); the core does not schedule reads. */
    GP_PF_PUSH_TELEMETRY = 1u << 2,
};

/* ---- opaque host types ---------------------------------------------------------------- */

typedef struct gp_hctx gp_hctx;   /* the host's handle for one adapter instance */
typedef struct gp_json gp_json;   /* a JSON value; read through gp_host.json_* */
typedef struct gp_str gp_str;     /* a growable string owned by whoever created it */
typedef struct gp_timer gp_timer; /* a one-shot timer */

/* ---- results -------------------------------------------------------------------------- */

typedef enum gp_status {
    GP_DONE = 0,    /* the vendor confirmed: the command is in force / the read succeeded */
    GP_FAILED = 1,  /* the vendor or transport refused; see code and message */
    GP_PENDING = 2, /* the vendor runs it asynchronously under vendor_ref; poll it */
    GP_TIMEOUT = 3, /* task_poll only: the vendor gave up on the task */
} gp_status;

/* Codes for gp_result.code when status is GP_FAILED. Vendor codes are positive and passed
 * through (a Huawei failCode, an HTTP status); the core's own classes are negative. */
enum gp_error {
    GP_E_NONE = 0,
    GP_E_TRANSPORT = -1,  /* connection, DNS, TLS, timeout: retryable */
    GP_E_AUTH = -2,       /* credentials expired or missing: the core runs login, replays once */
    GP_E_RATE_LIMIT = -3, /* vendor quota answer: the core backs off, retries */
    GP_E_PROTOCOL = -4,   /* malformed or unexpected vendor answer */
    GP_E_REJECTED = -5,   /* the vendor refused this command; do not retry */
    GP_E_UNSUPPORTED = -6 /* the device cannot do this */
};

typedef struct gp_result {
    uint32_t size;          /* sizeof(gp_result) as compiled by the filler */
    gp_status status;       /* see gp_status */
    int code;               /* GP_FAILED: a gp_error or a vendor code; else 0 */
    int retryable;          /* GP_FAILED: non-zero if sending again may succeed */
    const char *message;    /* borrowed; human-readable, one line, no secrets; may be NULL */
    const char *vendor_ref; /* GP_PENDING: borrowed task reference (Huawei requestID) */
    double energy_wh;       /* task_result: energy moved so far (>= 0), NAN when unknown */
    const char *detail;     /* borrowed JSON object text of vendor details to journal, or NULL */
} gp_result;

/* ---- devices, telemetry, commands ----------------------------------------------------- */

/* Announced by the plugin during discovery. Unknown numbers are NAN. */
typedef struct gp_device_info {
    uint32_t size;         /* sizeof(gp_device_info) as compiled by the plugin */
    const char *vendor_id; /* borrowed; the vendor's id (plant code, serial); NULL or "" for
                              the single device of a one-device adapter */
    uint32_t local;        /* the plugin's own index for this device, handed back in targets */
    uint32_t caps;         /* GP_CAP_* bits this device supports */
    double capacity_wh;    /* usable battery capacity */
    double max_charge_w;   /* >= 0 */
    double max_discharge_w;
    double soc_min_pct; /* lowest SoC the battery is allowed to reach */
    double soc_max_pct;
    const char *model; /* borrowed; free text for humans, may be NULL */
} gp_device_info;

/* One device as the host hands it back in a batch. */
typedef struct gp_target {
    uint32_t device;       /* the host's handle (returned by device_add) */
    uint32_t local;        /* gp_device_info.local */
    const char *vendor_id; /* borrowed for the call; "" for a one-device adapter */
} gp_target;

/* One telemetry sample. Unknown numbers are NAN (never 0 for "unknown"). Limit fields, when
 * not NAN, update the device's limits (a DoD change moves soc_min_pct). */
typedef struct gp_reading {
    uint32_t size;    /* sizeof(gp_reading) as compiled by the plugin */
    int64_t ts_ms;    /* when the vendor measured it (Unix ms); 0 = now */
    int online;       /* 1 online, 0 offline/unreachable */
    double soc_pct;   /* 0..100 */
    double battery_w; /* + discharging, - charging */
    double pv_w;      /* >= 0 */
    double load_w;    /* >= 0 */
    double grid_w;    /* + importing, - exporting */
    double capacity_wh, max_charge_w, max_discharge_w, soc_min_pct, soc_max_pct;
    const gp_json *extra; /* borrowed; an object of vendor readings without a common field */
} gp_reading;

typedef enum gp_cmd_kind {
    GP_CMD_SETPOINT = 1, /* value = W (+ discharge, - charge); soc_target / duration_s */
    GP_CMD_DOD = 2,      /* value = depth of discharge in % */
    GP_CMD_ONOFF = 3,    /* value = 1 on, 0 off */
    GP_CMD_RELEASE = 4,  /* end forced dispatch; the device returns to its own mode */
} gp_cmd_kind;

typedef struct gp_cmd {
    uint64_t id;         /* journal id; echo it in command_result */
    gp_target target;    /* the device */
    gp_cmd_kind kind;    /* see gp_cmd_kind */
    double value;        /* see gp_cmd_kind; 0 for RELEASE */
    double soc_target;   /* SETPOINT with SoC control: target %; NAN otherwise */
    uint32_t duration_s; /* SETPOINT: hold this long; 0 = until replaced */
    uint32_t attempt;    /* 1 on the first send, 2.. on retries */
} gp_cmd;

/* A task being polled: one command under one vendor reference. */
typedef struct gp_task {
    uint64_t cmd_id;        /* echo it in task_result */
    gp_target target;       /* the device */
    const char *vendor_ref; /* borrowed; as given in the GP_PENDING result */
    gp_cmd_kind kind;       /* the command that started the task */
    double value;
} gp_task;

/* ---- quotas --------------------------------------------------------------------------- */

/* A vendor limit the core schedules inside: at most `limit` calls per `period_s` seconds per
 * adapter instance to `endpoint` (the same name the plugin puts in gp_http_req.endpoint). */
typedef struct gp_quota {
    const char *endpoint; /* static string */
    uint32_t limit;
    uint32_t period_s;
} gp_quota;

/* ---- HTTP (done by the host's curl multi) --------------------------------------------- */

enum gp_http_prio {
    GP_PRIO_TELEMETRY = 0, /* reads: wait for quota behind control traffic */
    GP_PRIO_CONTROL = 1,   /* commands, task polls, login: go first */
};

typedef struct gp_http_resp gp_http_resp;

/* Called once per request on the loop thread, never from inside a curl callback, never from
 * inside gp_host.http itself. resp is borrowed for the duration of the call. */
typedef void (*gp_http_cb)(void *ud, const gp_http_resp *resp);

/* Streaming (Server-Sent Events): called on the loop thread with each chunk of the body as
 * it arrives; the final gp_http_cb still follows when the stream ends. data is borrowed.
 * Return non-zero to abort the stream. */
typedef int (*gp_http_chunk_cb)(void *ud, const char *data, size_t len);

typedef struct gp_http_req {
    uint32_t size;              /* sizeof(gp_http_req) as compiled by the plugin */
    const char *method;         /* "GET", "POST", "PUT", "DELETE"; borrowed for the call */
    const char *url;            /* absolute URL; borrowed for the call */
    const char *const *headers; /* NULL-terminated "Name: value" list, borrowed; may be NULL */
    const char *body;           /* borrowed for the call (the host copies it) */
    size_t body_len;
    double timeout_s;          /* whole-transfer timeout; 0 = the adapter's default */
    const char *endpoint;      /* quota name (borrowed) from gp_plugin_desc.quotas, or NULL */
    int priority;              /* gp_http_prio */
    gp_http_chunk_cb on_chunk; /* non-NULL: stream the body instead of buffering it */
    const char *user;          /* HTTP basic auth user (borrowed), or NULL */
    const char *password;      /* basic auth password (borrowed), or NULL; never logged */
} gp_http_req;

enum gp_http_error {
    GP_HTTP_OK = 0,       /* a response arrived (any status) */
    GP_HTTP_TIMEOUT = 1,  /* no complete answer within the timeout */
    GP_HTTP_CONNECT = 2,  /* refused, reset, DNS */
    GP_HTTP_TLS = 3,      /* certificate verification or handshake failed */
    GP_HTTP_ABORTED = 4,  /* cancelled: shutdown, or on_chunk asked to stop */
    GP_HTTP_TOO_LARGE = 5 /* body over the host's limit */
};

struct gp_http_resp {
    uint32_t size;         /* sizeof(gp_http_resp) as compiled by the host */
    int error;             /* gp_http_error */
    const char *error_msg; /* borrowed; set when error != GP_HTTP_OK */
    long status;           /* HTTP status; 0 when no response */
    const char *body;      /* borrowed, NUL-terminated (buffered mode); "" when streaming */
    size_t body_len;
    double elapsed_s;
    const char *const *headers; /* borrowed NULL-terminated "Name: value" list */
};

/* ---- the host services table ---------------------------------------------------------- */

enum gp_log_level { GP_LOG_ERROR = 0, GP_LOG_WARN = 1, GP_LOG_INFO = 2, GP_LOG_DEBUG = 3 };

enum gp_json_type {
    GP_JSON_MISSING = 0, /* a NULL gp_json pointer */
    GP_JSON_NULL,
    GP_JSON_BOOL,
    GP_JSON_NUMBER,
    GP_JSON_STRING,
    GP_JSON_ARRAY,
    GP_JSON_OBJECT
};

typedef void (*gp_timer_cb)(void *ud);

/*
 * Services the host offers. The table only grows at its end; check `size` before using a
 * field added after ABI 1.0. All functions are called on the loop thread. Every gp_hctx
 * argument is the handle passed to create().
 */
typedef struct gp_host {
    uint32_t size; /* sizeof(gp_host) as compiled by the host */
    uint16_t abi_major, abi_minor;

    /* -- logging: one line, no secrets; the host prefixes the adapter id -- */
    void (*log)(gp_hctx *h, int level, const char *fmt, ...) GP_PRINTF(3, 4);

    /* -- clock and timers (virtual in `simulate`) -- */
    int64_t (*now_ms)(gp_hctx *h); /* Unix ms */
    /* One-shot timer; returns a handle owned by the host, valid until it fires or is
     * stopped. Never calls cb from inside timer_start. */
    gp_timer *(*timer_start)(gp_hctx *h, double after_s, gp_timer_cb cb, void *ud);
    /* Cancel a timer that has not fired yet (a fired timer's handle is already gone). */
    void (*timer_stop)(gp_hctx *h, gp_timer *t);

    /* -- HTTP -- returns 0 when queued (cb will be called exactly once), -1 on a bad request
     * (cb never called). The host applies the adapter's TLS settings and timeouts; endpoint
     * and priority are what its quota scheduling goes by. */
    int (*http)(gp_hctx *h, const gp_http_req *req, gp_http_cb cb, void *ud);
    /* The idx-th value (0-based) of a response header, case-insensitive name; borrowed; NULL
     * when absent. */
    const char *(*http_header)(const gp_http_resp *r, const char *name, unsigned idx);

    /* -- configuration (create() only) -- */
    const char *(*adapter_id)(gp_hctx *h); /* borrowed, lives as long as h */
    /* Report a configuration problem at `path` under the adapter's config object
     * ("base_url", "plants[3]"); the host prints adapters[i].config.<path>: <message>. */
    void (*config_error)(gp_hctx *h, const char *path, const char *fmt, ...) GP_PRINTF(3, 4);
    /* Report every key of `obj` not in the NULL-terminated `allowed` list. An entry ending
     * in '*' names a secret: "password*" allows "password", "password_env" and
     * "password_file". Returns the number of unknown keys. path is the object's path under
     * config ("" for the root). */
    int (*config_check_keys)(gp_hctx *h, const gp_json *obj, const char *path,
                             const char *const *allowed);
    /* Resolve a secret given as key, key_env or key_file in obj. Returns a string owned by
     * the host, valid as long as h, never logged; NULL when absent (and, if required,
     * reports a config_error). */
    const char *(*config_secret)(gp_hctx *h, const gp_json *obj, const char *key, int required);
    /* A path relative to the configuration file's folder made absolute; owned by the host,
     * valid as long as h. */
    const char *(*resolve_path)(gp_hctx *h, const char *path);

    /* -- JSON reading (the host's parser; plugins do not link one) -- */
    /* Parse text; the result is owned by the caller and freed with json_free. On error
     * returns NULL and writes a one-line reason to err. */
    gp_json *(*json_parse)(const char *text, size_t len, char *err, size_t errlen);
    void (*json_free)(gp_json *j);
    int (*json_type)(const gp_json *j);                              /* gp_json_type */
    const gp_json *(*json_get)(const gp_json *obj, const char *key); /* borrowed from obj */
    size_t (*json_len)(const gp_json *j);                            /* array/object size */
    const gp_json *(*json_at)(const gp_json *j, size_t i);           /* borrowed from j */
    const char *(*json_key)(const gp_json *member); /* its name; borrowed from member */
    double (*json_num)(const gp_json *j);           /* NAN unless a number (or a numeric string) */
    const char *(*json_str)(const gp_json *j);      /* borrowed; NULL unless a string */
    int (*json_bool)(const gp_json *j, int dflt);

    /* -- text building (request bodies): owned by the caller, freed with str_free -- */
    gp_str *(*str_new)(void);
    void (*str_free)(gp_str *s);
    void (*str_printf)(gp_str *s, const char *fmt, ...) GP_PRINTF(2, 3);
    void (*str_json)(gp_str *s, const char *text); /* append as a quoted, escaped JSON string */
    const char *(*str_data)(const gp_str *s, size_t *len); /* borrowed until the next change */

    /* -- results: any time after the operation started, possibly from inside it -- */
    /* Discovery: announce a device; returns the host handle, or -1 (logged) if refused. */
    int64_t (*device_add)(gp_hctx *h, const gp_device_info *info);
    /* Discovery finished (ok != 0) or failed; message is borrowed. */
    void (*discovered)(gp_hctx *h, int ok, const char *message);
    /* A telemetry sample for a device (during read, or pushed at any time). */
    void (*reading)(gp_hctx *h, uint32_t device, const gp_reading *r);
    /* The read operation `op` finished; a device it did not report is marked stale. */
    void (*read_done)(gp_hctx *h, uint64_t op, const gp_result *r);
    /* One command's outcome; exactly once per gp_cmd.id handed to command(). */
    void (*command_result)(gp_hctx *h, uint64_t cmd_id, const gp_result *r);
    /* One task's state after task_poll: DONE, FAILED, TIMEOUT, or PENDING (still running). */
    void (*task_result)(gp_hctx *h, uint64_t cmd_id, const gp_result *r);
    /* login() finished. */
    void (*login_done)(gp_hctx *h, const gp_result *r);

    /* -- persistence (SQLite in state_dir; survives restarts) -- */
    /* A fresh id from a durable, strictly increasing sequence shared by all adapters. */
    uint64_t (*next_request_id)(gp_hctx *h);
    /* Store (val != NULL) or delete (val == NULL) a value under key, scoped to this adapter.
     * Returns 0 on success. */
    int (*kv_set)(gp_hctx *h, const char *key, const void *val, size_t len);
    /* Returns a NUL-terminated copy owned by the caller (free with host->free), or NULL. */
    void *(*kv_get)(gp_hctx *h, const char *key, size_t *len);
    void (*free)(void *p);

    /* -- configuration values -- */
    /* Parse a duration ("500ms", "30s", "5m", "1h", "1d") the way the core does, so plugin
     * options read like the rest of the config. Returns 0, or -1 with a reason in err. */
    int (*parse_duration_ms)(const char *text, int64_t *out_ms, char *err, size_t errlen);

    /* -- ABI 1.1 (check size first) -- */
    /* The vendor answered "too many requests" (Huawei failCode 407) for quota `endpoint`:
     * the host sends nothing more to that endpoint for retry_after_s seconds (0: the rest
     * of the quota's period) and counts it. Report the operation itself as failed with
     * GP_E_RATE_LIMIT as usual; the core retries it. */
    void (*rate_limited)(gp_hctx *h, const char *endpoint, double retry_after_s);

    void *reserved[16];
} gp_host;

/* ---- the plugin descriptor ------------------------------------------------------------ */

/*
 * Operations. `inst` is what create() returned. Mandatory: create, destroy, discover; read
 * when any device may have GP_CAP_READ (unless GP_PF_PUSH_TELEMETRY); command when any write
 * capability is claimed; task_poll when GP_PF_TASKS is set. The loader refuses a plugin that
 * misses one, naming it.
 */
typedef struct gp_plugin_desc {
    uint32_t magic;                /* GP_PLUGIN_MAGIC */
    uint16_t abi_major, abi_minor; /* GP_ABI_MAJOR, GP_ABI_MINOR the plugin was built with */
    uint32_t size;                 /* sizeof(gp_plugin_desc) as compiled by the plugin */
    const char *name;              /* static; matches adapters[].plugin; [a-z0-9_-]+ */
    const char *version;           /* static; the plugin's own version */
    const char *description;       /* static; one line */
    uint32_t caps;                 /* union of the GP_CAP_* any device may have */
    uint32_t flags;                /* gp_plugin_flag */
    double task_poll_s;            /* default task poll interval (GP_PF_TASKS) */
    uint32_t max_batch;            /* most devices per read/command call; 0 = no limit */
    const gp_quota *quotas;        /* static array, or NULL */
    size_t n_quotas;

    /* Validate `config` (borrowed; report problems with config_error) and build an instance.
     * No I/O. Returns NULL on error (after reporting). The instance is owned by the plugin
     * and freed by destroy(). */
    void *(*create)(gp_hctx *h, const gp_json *config);
    /* Free the instance. The host has already cancelled its HTTP requests (their callbacks
     * ran with GP_HTTP_ABORTED) and stopped its timers (their handles are gone). */
    void (*destroy)(void *inst);
    /* Find the devices: device_add() for each, then discovered(). */
    void (*discover)(void *inst);
    /* Read `n` devices (targets borrowed for the call): reading() per device, then
     * read_done(op). */
    void (*read)(void *inst, uint64_t op, const gp_target *targets, size_t n);
    /* Send `n` commands (borrowed for the call): command_result() once per command. */
    void (*command)(void *inst, const gp_cmd *cmds, size_t n);
    /* Poll `n` tasks that share one vendor_ref (borrowed): task_result() once per task. */
    void (*task_poll)(void *inst, const gp_task *tasks, size_t n);
    /* Optional: (re-)authenticate, then login_done(). The core calls it when an operation
     * failed with GP_E_AUTH, then replays the operation once. */
    void (*login)(void *inst);

    void (*reserved[8])(void);
} gp_plugin_desc;

/* The entry symbol's type. `host` outlives every instance; keep the pointer. */
typedef const gp_plugin_desc *(*gp_plugin_entry_fn)(const gp_host *host);

#ifdef __cplusplus
}
#endif
#endif /* GRIDPILOT_PLUGIN_H */
