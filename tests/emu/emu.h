/*
 * gp-emu: HTTP emulators of the vendor APIs gridpilot talks to, for tests over loopback.
 *
 * This header is the line between the framework (HTTP server, emulated clock, faults,
 * request log, statistics, control API) and a vendor. A vendor is a table of routes plus its
 * own state: the framework parses the request, applies faults, calls the route's handler with
 * the state lock held, logs and counts the answer. Handlers never block and never sleep.
 *
 * Threads: MHD runs one thread per connection; every call into a vendor (create and destroy
 * aside) is made with the framework's one mutex held, so vendors need no locking of their own.
 */
#ifndef GP_EMU_H
#define GP_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

struct MHD_Connection;

/* Options common to every vendor, from the command line. Strings are borrowed from argv and
 * outlive the vendor. */
typedef struct emu_opts {
    size_t plants;          /* sites to emulate (default 10) */
    size_t batteries_every; /* K >= 2: every K-th site has no battery; 0 or 1: all have one */
    uint64_t seed;          /* everything generated derives from it */
    int64_t start_ms;       /* emulated time when the process started */
    const char *user, *password;
    const char *const *sets; /* NULL-terminated "key=value" vendor options (--set) */
} emu_opts;

/* A request as a handler sees it; borrowed for the call. */
typedef struct emu_req {
    const char *method;
    const char *path; /* without the query string */
    const char *body; /* NUL-terminated (the body may hold NULs of its own) */
    size_t body_len;
    int64_t now_ms; /* emulated time of the request */
    struct MHD_Connection *conn;
} emu_req;

/* A request header (case-insensitive name) or query argument; NULL when absent. Borrowed,
 * valid for the call. */
const char *emu_req_header(const emu_req *r, const char *name);
const char *emu_req_query(const emu_req *r, const char *name);

#define EMU_MAX_HEADERS 8

/* The answer a handler fills. The framework frees it. */
typedef struct emu_resp {
    int status;  /* HTTP status; 200 unless set */
    gp_str body; /* owned */
    const char *content_type;
    size_t n_headers;
    char *hname[EMU_MAX_HEADERS], *hvalue[EMU_MAX_HEADERS]; /* owned */
    int has_code;  /* the vendor's own answer code is known (for the log and stats) */
    int code;      /* e.g. Huawei's failCode */
    int quota_hit; /* the answer refuses the call for its rate limit */
} emu_resp;

/* Add a response header (both strings copied; beyond EMU_MAX_HEADERS it is dropped). */
void emu_resp_header(emu_resp *r, const char *name, const char *value);
/* Set the vendor's answer code (logged as failCode / counted as a failure when not 0). */
void emu_resp_code(emu_resp *r, int code);

typedef void (*emu_handler_fn)(void *vendor, const emu_req *req, emu_resp *resp);

typedef struct emu_route {
    const char *method; /* "POST" */
    const char *path;   /* the whole path: "/rest/openapi/pvms/v1/login" */
    const char *api;    /* short name for stats and quotas: "login" */
    emu_handler_fn fn;
} emu_route;

typedef struct emu_vendor {
    const char *name; /* --vendor NAME */
    const emu_route *routes;
    size_t n_routes;
    /* Build the state from the options, or NULL with one line in err. Owned by the caller,
     * freed with destroy. */
    void *(*create)(const emu_opts *o, char *err, size_t errlen);
    void (*destroy)(void *vendor);
    /* GET /_emu/state: a JSON object (appended to out) describing every site at now. `plant`
     * (may be NULL) limits it to one site by its vendor id. */
    void (*state)(void *vendor, int64_t now_ms, const char *plant, gp_str *out);
    /* POST /_emu/tokens/expire: end every session; returns how many there were. */
    size_t (*expire_sessions)(void *vendor);
    /* Fault answers in the vendor's own language: an application error with this code, and
     * "your session has expired" (which also ends the session the request presented). */
    void (*fail)(void *vendor, const emu_req *req, int code, emu_resp *resp);
    void (*auth_expired)(void *vendor, const emu_req *req, emu_resp *resp);
} emu_vendor;

extern const emu_vendor emu_huawei;

#endif
