/*
 * Requests to the northbound API and the checks every answer goes through: transport, HTTP
 * status, JSON, and Huawei's {success, failCode, message} envelope.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

/* One request in flight; linked into hw.calls so destroy can free what it holds. */
struct hw_call {
    hw_call *prev, *next;
    hw *s;
    hw_done_fn done;
    hw_drop_fn drop;
    void *ud;
    uint64_t gen; /* token_gen when sent */
};

static void unlink_call(hw_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->s->calls = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_http(void *ud, const gp_http_resp *r)
{
    hw_call *c = ud;
    unlink_call(c);
    c->s->answer_gen = c->gen;
    c->done(c->ud, r);
    free(c);
}

void hw_err_set(hw_err *err, int code, int retryable, const char *fmt, ...)
{
    char tmp[HW_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    err->code = code;
    err->retryable = retryable;
    err->unknown = 0;
    err->session_changed = 0;
    hw_oneline(err->msg, sizeof err->msg, tmp);
}

gp_result hw_result(gp_status st, int code, int retry, const char *msg, const char *ref)
{
    gp_result r = {
        .size = sizeof(gp_result),
        .status = st,
        .code = st == GP_FAILED ? code : 0,
        .retryable = st == GP_FAILED ? retry : 0,
        .message = msg,
        .vendor_ref = ref,
        .energy_wh = NAN,
    };
    return r;
}

gp_result hw_err_result(const hw_err *err)
{
    return err->code ? hw_result(GP_FAILED, err->code, err->retryable, err->msg, NULL)
                     : hw_result(GP_DONE, 0, 0, NULL, NULL);
}

int hw_post(hw *s, const char *api, const char *quota, const char *body, int prio, int with_token,
            hw_done_fn done, hw_drop_fn drop, void *ud, hw_err *err)
{
    gp_str *url = H->str_new(), *xsrf = H->str_new();
    H->str_printf(url, "%s%s%s", s->base_url, HW_API_PREFIX, api);
    if (with_token && s->token) H->str_printf(xsrf, "XSRF-TOKEN: %s", s->token);
    const char *headers[] = {"Content-Type: application/json", "Accept: application/json",
                             with_token && s->token ? H->str_data(xsrf, NULL) : NULL, NULL};
    hw_call *c = hw_xcalloc(1, sizeof(*c));
    c->s = s;
    c->done = done;
    c->drop = drop;
    c->ud = ud;
    c->gen = s->token_gen;
    gp_http_req req = {
        .size = sizeof(gp_http_req),
        .method = "POST",
        .url = H->str_data(url, NULL),
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .timeout_s = 0,
        .endpoint = quota,
        .priority = prio,
    };
    /* Linked first: the host never answers from inside http(), but keep the list right
     * even if it did. */
    c->next = s->calls;
    if (s->calls) s->calls->prev = c;
    s->calls = c;
    int rc = H->http(s->h, &req, on_http, c);
    if (rc != 0) {
        unlink_call(c);
        free(c);
        hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: the host refused the request to %s", api,
                   H->str_data(url, NULL));
    }
    H->str_free(url);
    H->str_free(xsrf);
    return rc;
}

void hw_calls_drop_all(hw *s)
{
    while (s->calls) {
        hw_call *c = s->calls;
        unlink_call(c);
        if (c->drop) c->drop(c->ud);
        free(c);
    }
}

/* " (vendor: <message>)" when the answer carries a non-empty message. */
static void vendor_note(const gp_json *doc, char *out, size_t n)
{
    const char *m = hw_jstr(doc, "message");
    out[0] = '\0';
    if (!m || !*m) return;
    char line[120];
    hw_oneline(line, sizeof line, m);
    snprintf(out, n, " (vendor: %s)", line);
}

/* Tell the host the vendor said "too many requests" for this quota (ABI 1.1 hosts). */
static void limited(hw *s, const char *quota)
{
    if (H->size >= offsetof(gp_host, rate_limited) + sizeof(H->rate_limited) && H->rate_limited)
        H->rate_limited(s->h, quota, 0);
}

static void fail_code(hw *s, const char *api, const char *quota, int code, const gp_json *doc,
                      hw_err *err)
{
    char note[140];
    vendor_note(doc, note, sizeof note);
    const char *text = hw_fail_text(code);
    if (code == 305 || code == 30029) {
        /* 30029 "Authentication failed" is read like 305: the session's token was not
         * accepted; a new login is the one thing that can help. */
        if (s->answer_gen != s->token_gen) {
            /* Sent with a token a newer login has replaced: that session is fine, and the
             * vendor did nothing with this request. Send it again, do not log in again. */
            hw_err_set(err, GP_E_TRANSPORT, 1,
                       "huawei: %s: failCode %d for a request sent with an older token: the "
                       "session changed since (a new login); send it again",
                       api, code);
            err->session_changed = 1;
            return;
        }
        hw_session_drop(s);
        hw_err_set(err, GP_E_AUTH, 0, "huawei: %s: failCode %d: %s%s", api, code, text, note);
    } else if (code == 407) {
        limited(s, quota);
        hw_err_set(err, GP_E_RATE_LIMIT, 1, "huawei: %s: failCode 407: %s%s", api, text, note);
    } else {
        /* 20004 "server abnormal" and 30008 "internal interface failed" are the server's
         * trouble, not the request's: sending again may succeed. */
        int retry = code == 20004 || code == 30008;
        hw_err_set(err, code, retry, "huawei: %s: failCode %d: %s%s", api, code,
                   text ? text : "unknown error code", note);
        /* ...and may have left part of the work done. */
        err->unknown = retry;
    }
}

gp_json *hw_answer(hw *s, const char *api, const char *quota, const gp_http_resp *r, hw_err *err)
{
    err->code = 0;
    err->retryable = 0;
    err->msg[0] = '\0';
    err->unknown = 0;
    err->session_changed = 0;
    if (r->error != GP_HTTP_OK) {
        if (r->error == GP_HTTP_TOO_LARGE)
            hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: answer over the host's size limit", api);
        else
            hw_err_set(err, GP_E_TRANSPORT, 1, "huawei: %s: %s", api,
                       r->error_msg ? r->error_msg : "transport error");
        /* Only a failed TLS handshake proves the request never left: a timeout, a reset
         * (which looks like a refused connection) or a cut answer may follow a request the
         * vendor received and acted on. */
        err->unknown = r->error != GP_HTTP_TLS;
        return NULL;
    }
    if (r->status >= 500) {
        hw_err_set(err, GP_E_TRANSPORT, 1, "huawei: %s: HTTP %ld from the server", api, r->status);
        err->unknown = 1;
        return NULL;
    }
    int http_ok = r->status >= 200 && r->status < 300;
    char perr[160];
    gp_json *doc = r->body ? H->json_parse(r->body, r->body_len, perr, sizeof perr) : NULL;
    if (!doc && !r->body) snprintf(perr, sizeof perr, "no body");
    if (!doc || H->json_type(doc) != GP_JSON_OBJECT) {
        if (r->status == 429) {
            limited(s, quota);
            hw_err_set(err, GP_E_RATE_LIMIT, 1, "huawei: %s: HTTP 429 (too many requests)", api);
        } else if (!http_ok) {
            hw_err_set(err, (int)r->status, 0, "huawei: %s: HTTP %ld", api, r->status);
        } else if (!doc) {
            hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: malformed JSON answer (%s)", api, perr);
            err->unknown = 1;
        } else {
            hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: the answer is not a JSON object", api);
            err->unknown = 1;
        }
        H->json_free(doc);
        return NULL;
    }
    const gp_json *fc = H->json_get(doc, "failCode");
    double code = H->json_num(fc);
    int fc_type = H->json_type(fc);
    if (fc_type != GP_JSON_MISSING && fc_type != GP_JSON_NULL &&
        (isnan(code) || code != floor(code) || fabs(code) > 1e9)) {
        hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: failCode is not an integer", api);
        err->unknown = 1;
    } else if (!isnan(code) && code != 0) {
        fail_code(s, api, quota, (int)code, doc, err);
    } else if (!H->json_bool(H->json_get(doc, "success"), 1)) {
        char note[140];
        vendor_note(doc, note, sizeof note);
        hw_err_set(err, GP_E_PROTOCOL, 0, "huawei: %s: success is false without a failCode%s", api,
                   note);
        err->unknown = 1;
    } else if (r->status == 429) {
        limited(s, quota);
        hw_err_set(err, GP_E_RATE_LIMIT, 1, "huawei: %s: HTTP 429 (too many requests)", api);
    } else if (!http_ok) {
        hw_err_set(err, (int)r->status, 0, "huawei: %s: HTTP %ld", api, r->status);
    } else {
        return doc;
    }
    H->json_free(doc);
    return NULL;
}
