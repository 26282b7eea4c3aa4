/* Logging: text ("2026-01-01T00:00:00.000Z INFO  fusion: message") or one JSON object per
 * line. Registered secrets are masked in every message, whoever formats them. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "timeutil.h"

static gp_log_format log_fmt = GP_LOGFMT_TEXT;
static int log_max = GP_LOG_INFO;
static char **secrets;
static size_t n_secrets;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void gp_log_setup(gp_log_format fmt, int max_level)
{
    log_fmt = fmt;
    log_max = max_level;
}

int gp_log_level(void)
{
    return log_max;
}

void gp_log_add_secret(const char *secret)
{
    /* Very short secrets would mask ordinary words; they are still never logged by us. */
    if (!secret || strlen(secret) < 4) return;
    for (size_t i = 0; i < n_secrets; i++)
        if (strcmp(secrets[i], secret) == 0) return;
    secrets = gp_xrealloc(secrets, (n_secrets + 1) * sizeof(*secrets));
    secrets[n_secrets++] = gp_xstrdup(secret);
}

void gp_log_reset(void)
{
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(secrets);
    secrets = NULL;
    n_secrets = 0;
}

static void mask_secrets(gp_str *msg)
{
    for (size_t i = 0; i < n_secrets; i++) {
        size_t sl = strlen(secrets[i]);
        char *hit;
        while ((hit = strstr(msg->data, secrets[i])) != NULL) {
            size_t at = (size_t)(hit - msg->data);
            gp_str tail = {0};
            gp_str_puts(&tail, hit + sl);
            msg->len = at;
            gp_str_puts(msg, "***");
            gp_str_append(msg, gp_str_cstr(&tail), tail.len);
            gp_str_clear(&tail);
        }
    }
}

void gp_logv(int level, const char *who, const char *fmt, va_list ap)
{
    if (level > log_max) return;
    if (level < GP_LOG_ERROR) level = GP_LOG_ERROR;
    if (level > GP_LOG_DEBUG) level = GP_LOG_DEBUG;
    gp_str msg = {0};
    gp_str_vprintf(&msg, fmt, ap);
    gp_str_puts(&msg, "");
    /* Trailing newlines are noise; a carriage return never helps a log line. */
    while (msg.len && msg.data[msg.len - 1] == '\n')
        msg.data[--msg.len] = '\0';
    for (size_t i = 0; i < msg.len; i++)
        if (msg.data[i] == '\r') msg.data[i] = ' ';
    mask_secrets(&msg);
    char ts[40];
    gp_format_time(gp_wall_ms(), ts, sizeof ts);
    gp_str line = {0};
    if (log_fmt == GP_LOGFMT_JSON) {
        gp_str_puts(&line, "{\"ts\":");
        gp_str_json(&line, ts);
        gp_str_puts(&line, ",\"level\":");
        gp_str_json(&line, level_names[level]);
        gp_str_puts(&line, ",\"who\":");
        gp_str_json(&line, who ? who : "core");
        gp_str_puts(&line, ",\"msg\":");
        gp_str_json(&line, gp_str_cstr(&msg));
        gp_str_puts(&line, "}\n");
    } else {
        /* One event, one JSON record; in text, a multi-line event (a traceback) prints each
         * of its lines with the full prefix, so grep and log shippers see whole lines. */
        const char *p = gp_str_cstr(&msg);
        do {
            const char *nl = strchr(p, '\n');
            int len = nl ? (int)(nl - p) : (int)strlen(p);
            gp_str_printf(&line, "%s %-5s %s: %.*s\n", ts, level_names[level], who ? who : "core",
                          len, p);
            p = nl ? nl + 1 : NULL;
        } while (p);
    }
    fputs(gp_str_cstr(&line), stderr);
    gp_str_clear(&line);
    gp_str_clear(&msg);
}

void gp_log(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_logv(level, who, fmt, ap);
    va_end(ap);
}
