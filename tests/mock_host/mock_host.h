/*
 * A gp_host for plugin unit tests (collectd-style mock): a virtual clock with timers fired by
 * mock_host_advance(), scripted HTTP answers, an in-memory kv store, and every result a
 * plugin reports recorded in arrays the test inspects. It also checks the ABI's calling rules
 * (one command_result per command, no unknown timer handles, ...) and records each breach as
 * a "violation" a test can assert to be absent.
 *
 * Ownership: everything a getter returns is owned by the mock and stays valid until
 * mock_host_clear() (recorded results), mock_host_free(), or the next call that changes the
 * same list (kv values). Strings passed in are copied.
 *
 * One mock_host serves one adapter instance at a time; its kv map, request-id counter and
 * clock survive mock_host_destroy() so a test can simulate a restart by creating a new
 * instance on the same mock.
 */
#ifndef GP_MOCK_HOST_H
#define GP_MOCK_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "gridpilot/plugin.h"

typedef struct mock_host mock_host;

/* A result handed to read_done, command_result, task_result or login_done (copied). */
typedef struct mock_result {
    uint64_t id; /* op (read_done), cmd_id (command/task results), 0 for login_done */
    gp_status status;
    int code;
    int retryable;
    double energy_wh;
    char *message;    /* NULL when the plugin gave none */
    char *vendor_ref; /* NULL when the plugin gave none */
    char *detail;     /* NULL when the plugin gave none */
    int64_t at_ms;    /* the virtual time it was reported */
} mock_result;

/* A reading handed to host->reading. r.extra points to the mock's own copy (or NULL). */
typedef struct mock_reading {
    uint32_t device;
    gp_reading r;
    int64_t at_ms;
} mock_reading;

/* A device announced with device_add; the info's strings point to the mock's copies. */
typedef struct mock_device {
    uint32_t handle; /* what device_add returned: the index in the device list */
    gp_device_info info;
} mock_device;

/* An HTTP request the plugin made (copied). */
typedef struct mock_http_request {
    char *method, *url, *endpoint, *user, *password;
    char *body; /* NUL-terminated copy of body_len bytes */
    size_t body_len;
    char **headers; /* NULL-terminated */
    double timeout_s;
    int priority;
    int streaming; /* on_chunk was set */
    int64_t at_ms;
} mock_http_request;

/* A scripted HTTP answer. Strings are borrowed by mock_host_http_push (which copies them). */
typedef struct mock_http_response {
    int error;                  /* gp_http_error */
    const char *error_msg;      /* for error != GP_HTTP_OK */
    long status;                /* HTTP status */
    const char *body;           /* NULL means "" */
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    int64_t delay_ms;           /* virtual time between the request and the answer */
} mock_http_response;

/* Computes the answer to a request when no scripted answer is queued. Fill *resp; its
 * strings must stay valid until the handler returns (the mock copies them). */
typedef void (*mock_http_handler)(void *ud, const mock_http_request *req, mock_http_response *resp);

/* ---- lifetime ------------------------------------------------------------------------- */

/* A new mock for an adapter named adapter_id (copied). The clock starts at
 * 2026-01-01T00:00:00Z. Never NULL. Log lines are printed to stderr when the environment
 * variable MOCK_HOST_LOG is set. */
mock_host *mock_host_new(const char *adapter_id);
/* Destroys the instance if any, unloads the plugin, frees everything. NULL is fine. */
void mock_host_free(mock_host *m);
/* The host table (static, shared by every mock: a plugin keeps the first table it is given,
 * and every call that concerns one instance names its mock through the gp_hctx) and the
 * handle given to create(). */
const gp_host *mock_host_table(mock_host *m);
gp_hctx *mock_host_hctx(mock_host *m);
void mock_host_set_verbose(mock_host *m, int on);

/* ---- clock, timers and the loop ------------------------------------------------------- */

void mock_host_set_time(mock_host *m, int64_t unix_ms);
int64_t mock_host_now(const mock_host *m);
/* Move the clock forward by ms, firing every timer and delivering every HTTP answer that
 * falls due on the way, in due order (ties in start order); events started by a callback
 * fire too when they fall due inside the window. Returns the number of events fired. */
size_t mock_host_advance(mock_host *m, int64_t ms);
/* Fire what is due now: mock_host_advance(m, 0). */
size_t mock_host_run(mock_host *m);
size_t mock_host_n_timers(const mock_host *m); /* armed timers */

/* ---- plugin lifecycle ----------------------------------------------------------------- */

/* dlopen a plugin file and call its entry with the table. Returns the descriptor, or NULL
 * with the reason in mock_host_load_error(). */
const gp_plugin_desc *mock_host_load(mock_host *m, const char *so_path);
/* The same with an entry function linked into the test. */
const gp_plugin_desc *mock_host_load_entry(mock_host *m, gp_plugin_entry_fn entry);
const char *mock_host_load_error(const mock_host *m);
const gp_plugin_desc *mock_host_desc(const mock_host *m);
/* Parse config_json and call create(); the parsed config is freed right after create returns
 * (the ABI lends it for the call only). Returns the instance, or NULL (bad JSON is recorded
 * as a config error at path ""). Destroys a previous instance first. */
void *mock_host_create(mock_host *m, const char *config_json);
void *mock_host_instance(const mock_host *m);
/* Stop timers, drop in-flight HTTP, call destroy(). Devices are forgotten; kv, the clock and
 * the request-id counter stay. */
void mock_host_destroy(mock_host *m);

/* ---- operations (through the descriptor, with bookkeeping for the calling rules) ------- */

/* discover(); returns the number of devices announced during the call. */
size_t mock_host_discover(mock_host *m);
/* read() of the given device handles (NULL, 0: every known device). */
void mock_host_read(mock_host *m, uint64_t op, const uint32_t *devices, size_t n);
/* A command for device handle `device` with the target filled in; soc_target NAN,
 * duration_s 0, attempt 1. */
gp_cmd mock_host_cmd(const mock_host *m, uint64_t id, uint32_t device, gp_cmd_kind kind,
                     double value);
void mock_host_command(mock_host *m, const gp_cmd *cmds, size_t n);
/* task_poll() of one task: cmd_id on device handle `device` under vendor_ref. */
void mock_host_task_poll(mock_host *m, uint64_t cmd_id, uint32_t device, const char *vendor_ref,
                         gp_cmd_kind kind, double value);
/* task_poll() of several tasks at once (as the core does for the tasks of one vendor_ref);
 * the tasks are borrowed for the call. */
void mock_host_task_poll_tasks(mock_host *m, const gp_task *tasks, size_t n);
/* login() if the plugin has one; returns -1 when it has none. */
int mock_host_login(mock_host *m);

/* ---- recorded results ----------------------------------------------------------------- */

/* Forget recorded readings, results, log lines, config errors, violations, rate_limited calls
 * and HTTP requests (not devices, kv, timers or the clock). */
void mock_host_clear(mock_host *m);

size_t mock_host_n_devices(const mock_host *m);
const mock_device *mock_host_device(const mock_host *m, size_t i);
/* The handle of the device with this vendor_id, or -1. */
int64_t mock_host_find_device(const mock_host *m, const char *vendor_id);

/* discovered(): how often it was called, and the last ok/message (message may be NULL). */
size_t mock_host_n_discovered(const mock_host *m);
int mock_host_discovered_ok(const mock_host *m);
const char *mock_host_discovered_message(const mock_host *m);

size_t mock_host_n_readings(const mock_host *m);
const mock_reading *mock_host_reading(const mock_host *m, size_t i);
/* The latest reading of a device handle, or NULL. */
const mock_reading *mock_host_last_reading(const mock_host *m, uint32_t device);
/* A number from the latest reading's extra object (NAN when absent or not a number), and a
 * string (NULL when absent or not a string). */
double mock_host_extra_num(const mock_reading *r, const char *key);
const char *mock_host_extra_str(const mock_reading *r, const char *key);

size_t mock_host_n_read_done(const mock_host *m);
const mock_result *mock_host_read_done(const mock_host *m, size_t i);
size_t mock_host_n_command_results(const mock_host *m);
const mock_result *mock_host_command_result_at(const mock_host *m, size_t i);
/* The last command_result for cmd_id (NULL if none); *count (may be NULL) gets how many
 * results that id received. */
const mock_result *mock_host_command_result(const mock_host *m, uint64_t cmd_id, size_t *count);
size_t mock_host_n_task_results(const mock_host *m);
const mock_result *mock_host_task_result_at(const mock_host *m, size_t i);
const mock_result *mock_host_task_result(const mock_host *m, uint64_t cmd_id, size_t *count);
size_t mock_host_n_login_done(const mock_host *m);
const mock_result *mock_host_login_done(const mock_host *m, size_t i);
/* host->rate_limited calls (ABI 1.1): how many, and the i-th one's endpoint ("" when the
 * plugin passed none, which is also a violation) and retry_after_s (the pointer may be NULL). */
size_t mock_host_n_rate_limited(const mock_host *m);
const char *mock_host_rate_limited_at(const mock_host *m, size_t i, double *retry_after_s);
/* Commands handed to command() (through mock_host_command) still without a result. */
size_t mock_host_commands_outstanding(const mock_host *m);

/* config_error lines, "path: message" (path "" gives just the message). */
size_t mock_host_n_config_errors(const mock_host *m);
const char *mock_host_config_error(const mock_host *m, size_t i);
/* 1 if some config error contains `needle`. */
int mock_host_has_config_error(const mock_host *m, const char *needle);

/* Log lines as formatted by the plugin, and their levels. */
size_t mock_host_n_logs(const mock_host *m);
const char *mock_host_log_line(const mock_host *m, size_t i, int *level);
int mock_host_log_contains(const mock_host *m, const char *needle);

/* Breaches of the ABI's calling rules seen so far (each one line). */
size_t mock_host_n_violations(const mock_host *m);
const char *mock_host_violation(const mock_host *m, size_t i);

/* ---- configuration services ----------------------------------------------------------- */

/* resolve_path() makes relative paths absolute against this folder (default: the current
 * directory). */
void mock_host_set_base_dir(mock_host *m, const char *dir);
/* The next value next_request_id() hands out (default 1). */
void mock_host_set_next_request_id(mock_host *m, uint64_t next);

/* ---- kv ------------------------------------------------------------------------------- */

/* The stored value (borrowed, NUL-terminated) or NULL; *len may be NULL. */
const char *mock_host_kv_value(const mock_host *m, const char *key, size_t *len);
size_t mock_host_kv_count(const mock_host *m);
/* Replace dst's kv map with a copy of src's: a process killed without destroy() and started
 * again sees what src had stored. */
void mock_host_kv_copy(mock_host *dst, const mock_host *src);
/* Counts of kv_set calls that stored and that deleted, since the mock was made. */
size_t mock_host_kv_writes(const mock_host *m);
size_t mock_host_kv_deletes(const mock_host *m);

/* ---- HTTP ----------------------------------------------------------------------------- */

/* Queue an answer for the next request (FIFO). */
void mock_host_http_push(mock_host *m, const mock_http_response *resp);
/* Shorthand: status + body, no headers, no delay. */
void mock_host_http_push_text(mock_host *m, long status, const char *body);
/* Answer requests the queue does not cover. Without a handler or a queued answer, a request
 * fails with GP_HTTP_CONNECT "mock_host: no scripted response". */
void mock_host_http_set_handler(mock_host *m, mock_http_handler fn, void *ud);
size_t mock_host_n_http_requests(const mock_host *m);
const mock_http_request *mock_host_http_request(const mock_host *m, size_t i);
size_t mock_host_http_in_flight(const mock_host *m);

#endif
