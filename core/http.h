/*
 * HTTP client: libcurl multi driven by the libev loop (socket and timer callbacks).
 *
 * Results and stream chunks are delivered from loop callbacks, never from inside a curl
 * callback and never from inside gp_http_request. Connections are kept alive and reused per
 * host. TLS verification is on unless an owner's options turn it off.
 */
#ifndef GP_HTTP_H
#define GP_HTTP_H

#include <stddef.h>

#include "gridpilot/plugin.h"

struct ev_loop;

typedef struct gp_http gp_http;

/* Options of one requester (an adapter instance); borrowed for the call. */
typedef struct gp_http_opts {
    int tls_verify;           /* verify peer and host name (default 1) */
    const char *ca_file;      /* extra CA bundle (PEM), or NULL for the system store */
    double default_timeout_s; /* used when req->timeout_s is 0 */
    size_t max_body;          /* buffered bodies over this fail with GP_HTTP_TOO_LARGE */
    const char *who;          /* name for debug logs (adapter id); borrowed */
} gp_http_opts;

/* Owned by the caller; free with gp_http_free (which aborts transfers without callbacks). */
gp_http *gp_http_new(struct ev_loop *loop);
void gp_http_free(gp_http *h);

/* Start a request. `owner` groups requests for gp_http_cancel_owner. Returns 0 when started
 * (cb will be called exactly once, later), -1 when the request is malformed (cb is never
 * called). The request and its strings are copied. */
int gp_http_request(gp_http *h, const gp_http_opts *o, void *owner, const gp_http_req *req,
                    gp_http_cb cb, void *ud);

/* Abort every request of `owner`; each callback runs now with GP_HTTP_ABORTED. */
void gp_http_cancel_owner(gp_http *h, void *owner);

/* Requests in flight. */
size_t gp_http_active(const gp_http *h);

/* Connections opened since gp_http_new (to check keep-alive reuse). */
long gp_http_connects(const gp_http *h);

/* Case-insensitive header lookup in a response (the gp_host.http_header service). */
const char *gp_http_header(const gp_http_resp *r, const char *name, unsigned idx);

#endif
