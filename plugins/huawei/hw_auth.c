/*
 * The session: POST login {username, password}; the XSRF-TOKEN comes back in the
 * `xsrf-token` response header (the seed's example spells it `xsrftoken`) or, from older
 * servers, as the XSRF-TOKEN cookie of a set-cookie header. It is sent back as the
 * `XSRF-TOKEN` request header, kept in memory only and never logged.
 *
 * One login at a time: callers that arrive while one is in flight share its outcome. Nothing
 * here logs in on its own: the host's login op and a discovery without a session are the
 * only callers, so a refused session can never turn into a loop of logins. The one repeat:
 * a login answered "too many requests" (407; the quota is 1 per minute) is sent again, up to
 * HW_LOGIN_TRIES answers in a row, after telling the host, whose quota queue then holds it
 * until the vendor's window reopens.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "huawei.h"

#define H hw_host

#define TOKEN_MAX 4096

/* A copy of the token in text[0..len) without surrounding blanks, or NULL if it is empty or
 * holds characters a header value cannot carry. Owned by the caller. */
static char *clean_token(const char *text, size_t len)
{
    while (len && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    if (!len || len > TOKEN_MAX) return NULL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x21 || (unsigned char)text[i] > 0x7e) return NULL;
    char *t = hw_xcalloc(len + 1, 1);
    memcpy(t, text, len);
    return t;
}

/* XSRF-TOKEN=<value> inside one set-cookie header value (which may join several cookies
 * with ", " as in the seed's example). The name in any case: the V500R007C00SPC110 notes say
 * the server's header names are lower case, and the cookie may follow. */
static char *token_from_cookie(const char *v)
{
    static const char name[] = "XSRF-TOKEN=";
    for (const char *p = v; *p; p++) {
        if (strncasecmp(p, name, sizeof(name) - 1) != 0) continue;
        if (p != v && !strchr(" \t;,", p[-1])) continue; /* part of another cookie's name */
        const char *val = p + sizeof(name) - 1;
        size_t len = strcspn(val, ";, \t\r\n");
        char *t = clean_token(val, len);
        if (t) return t;
    }
    return NULL;
}

static char *token_from(const gp_http_resp *r)
{
    static const char *const headers[] = {"xsrf-token", "xsrftoken"};
    for (size_t k = 0; k < 2; k++) {
        const char *v = H->http_header(r, headers[k], 0);
        char *t = v ? clean_token(v, strlen(v)) : NULL;
        if (t) return t;
    }
    const char *c;
    for (unsigned i = 0; (c = H->http_header(r, "set-cookie", i)) != NULL && i < 64; i++) {
        char *t = token_from_cookie(c);
        if (t) return t;
    }
    return NULL;
}

static void set_token(hw *s, char *token)
{
    if (s->token) {
        memset(s->token, 0, strlen(s->token));
        free(s->token);
    }
    s->token = token;
    if (token) s->token_gen++;
}

void hw_session_drop(hw *s)
{
    if (!s->token) return;
    set_token(s, NULL);
    H->log(s->h, GP_LOG_INFO, "huawei: the session expired (failCode 305); a new login is needed");
}

static void finish(hw *s, const hw_err *err)
{
    unsigned for_host = s->login_for_host;
    int for_disc = s->login_for_disc;
    s->login_busy = 0;
    s->login_for_host = 0;
    s->login_for_disc = 0;
    if (err->code)
        H->log(s->h, GP_LOG_WARN, "%s", err->msg);
    else
        H->log(s->h, GP_LOG_INFO, "huawei: logged in as %s", s->username);
    gp_result r = hw_err_result(err);
    for (unsigned i = 0; i < for_host; i++)
        H->login_done(s->h, &r);
    if (for_disc) hw_disc_login_done(s, err->code == 0, err);
}

static int send_login(hw *s, hw_err *err);

static void on_login(void *ud, const gp_http_resp *r)
{
    hw *s = ud;
    hw_err err;
    gp_json *doc = hw_answer(s, "login", "login", r, &err);
    if (!doc && err.code == GP_E_RATE_LIMIT) {
        /* hw_answer told the host (rate_limited "login"): the request sent now waits in its
         * quota queue until the vendor's minute is over. */
        if (++s->login_limited < HW_LOGIN_TRIES) {
            H->log(s->h, GP_LOG_INFO,
                   "huawei: login: too many requests (%u in a row); logging in again when the "
                   "login quota (1 per minute) allows",
                   s->login_limited);
            if (send_login(s, &err) == 0) return;
        } else {
            hw_err_set(&err, GP_E_AUTH, 0,
                       "huawei: login: refused %u times in a row as too many requests (failCode "
                       "407; the login quota is 1 per minute): giving up",
                       s->login_limited);
        }
    }
    s->login_limited = 0;
    if (doc) {
        char *token = token_from(r);
        if (token)
            set_token(s, token);
        else
            hw_err_set(&err, GP_E_AUTH, 0,
                       "huawei: login: the answer carried no XSRF-TOKEN (no xsrf-token header, "
                       "no XSRF-TOKEN cookie)");
        H->json_free(doc);
    } else if (err.code == GP_E_AUTH) {
        /* 305 to a login: the account cannot get a session; replaying would not help. */
        err.retryable = 0;
    }
    finish(s, &err);
}

/* POST login; 0 when queued, else -1 with err filled. */
static int send_login(hw *s, hw_err *err)
{
    gp_str *body = H->str_new();
    H->str_printf(body, "{\"username\":");
    H->str_json(body, s->username);
    H->str_printf(body, ",\"password\":");
    H->str_json(body, s->password);
    H->str_printf(body, "}");
    int rc = hw_post(s, "login", "login", H->str_data(body, NULL), GP_PRIO_CONTROL, 0, on_login,
                     NULL, s, err);
    /* The body holds the password: clear it before handing the buffer back. */
    size_t len = 0;
    char *text = (char *)H->str_data(body, &len);
    memset(text, 0, len);
    H->str_free(body);
    return rc;
}

void hw_login(hw *s, int for_host, int for_disc)
{
    s->login_for_host += for_host ? 1 : 0;
    s->login_for_disc |= for_disc;
    if (s->login_busy) return;
    s->login_busy = 1;
    s->login_limited = 0;
    hw_err err;
    if (send_login(s, &err) != 0) finish(s, &err);
}
