/*
 * Quota-scheduled HTTP for one adapter instance. Every request that names an endpoint the
 * plugin declared a quota for goes out only when that quota allows; the rest wait here, in
 * order, control traffic (commands, task polls, login) before telemetry. A vendor's
 * "too many requests" closes the endpoint for a while. Requests for endpoints without a
 * quota go straight to the HTTP client.
 */
#ifndef GP_QUOTA_H
#define GP_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "gridpilot/plugin.h"

typedef struct gp_quota_queue gp_quota_queue;

/* How a request leaves (the adapter's HTTP client): 0 when accepted, -1 if malformed, like
 * gp_http_request. */
typedef int (*gp_quota_send_fn)(void *ctx, const gp_http_req *req, gp_http_cb cb, void *ud);

/* quotas (borrowed, static in the plugin) may be NULL. who (borrowed) names the adapter in
 * logs. Owned by the caller; gp_quotaq_free. */
gp_quota_queue *gp_quotaq_new(gp_quota_send_fn send, void *ctx, const gp_quota *quotas, size_t n,
                              const char *who);
/* Free; queued requests are dropped without callbacks (call gp_quotaq_abort first). */
void gp_quotaq_free(gp_quota_queue *q);

/* As gp_http_request: 0 when accepted (cb runs exactly once, later), -1 if malformed. */
int gp_quotaq_request(gp_quota_queue *q, const gp_http_req *req, gp_http_cb cb, void *ud);
/* Call every queued request's callback now with GP_HTTP_ABORTED. */
void gp_quotaq_abort(gp_quota_queue *q);
/* The vendor answered "too many requests" for endpoint: nothing more for retry_after_s
 * seconds (0: the quota's period). */
void gp_quotaq_limited(gp_quota_queue *q, const char *endpoint, double retry_after_s);

/* Per declared endpoint, for metrics and tests. */
typedef struct gp_quota_stats {
    const char *endpoint; /* borrowed from the plugin */
    uint32_t limit, period_s, left;
    uint64_t sent, delayed, limited;
    size_t waiting;
} gp_quota_stats;
size_t gp_quotaq_stats(const gp_quota_queue *q, gp_quota_stats *out, size_t cap);
size_t gp_quotaq_waiting(const gp_quota_queue *q);
/* Metered requests sent and not answered yet. */
size_t gp_quotaq_in_flight(const gp_quota_queue *q);

#endif
