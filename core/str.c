/* gp_str and the aborting allocators. */
#include "str.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* Nothing sensible can continue without memory; say so on one line and stop. */
    fprintf(stderr, "gridpilot: out of memory allocating %zu bytes\n", n);
    abort();
}

void *gp_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *gp_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *gp_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *gp_xstrdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = gp_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

gp_str *gp_str_new(void)
{
    return gp_xcalloc(1, sizeof(gp_str));
}

void gp_str_clear(gp_str *s)
{
    free(s->data);
    s->data = NULL;
    s->len = s->cap = 0;
}

void gp_str_free(gp_str *s)
{
    if (!s) return;
    gp_str_clear(s);
    free(s);
}

void gp_str_reset(gp_str *s)
{
    s->len = 0;
    if (s->data) s->data[0] = '\0';
}

static void reserve(gp_str *s, size_t extra)
{
    size_t need = s->len + extra + 1;
    if (need <= s->cap) return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    s->data = gp_xrealloc(s->data, cap);
    s->cap = cap;
}

void gp_str_append(gp_str *s, const char *text, size_t len)
{
    reserve(s, len);
    memcpy(s->data + s->len, text, len);
    s->len += len;
    s->data[s->len] = '\0';
}

void gp_str_puts(gp_str *s, const char *text)
{
    gp_str_append(s, text, strlen(text));
}

void gp_str_vprintf(gp_str *s, const char *fmt, va_list ap)
{
    /* The explicit check also keeps GCC's -Wformat-truncation quiet under UBSan, which
     * otherwise imagines a NULL format here. */
    if (!fmt) return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return;
    reserve(s, (size_t)n);
    vsnprintf(s->data + s->len, (size_t)n + 1, fmt, ap);
    s->len += (size_t)n;
}

void gp_str_printf(gp_str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gp_str_vprintf(s, fmt, ap);
    va_end(ap);
}

void gp_str_json(gp_str *s, const char *text)
{
    if (!text) {
        gp_str_puts(s, "null");
        return;
    }
    gp_str_append(s, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"':
            gp_str_append(s, "\\\"", 2);
            break;
        case '\\':
            gp_str_append(s, "\\\\", 2);
            break;
        case '\n':
            gp_str_append(s, "\\n", 2);
            break;
        case '\r':
            gp_str_append(s, "\\r", 2);
            break;
        case '\t':
            gp_str_append(s, "\\t", 2);
            break;
        default:
            if (*p < 0x20)
                gp_str_printf(s, "\\u%04x", *p);
            else
                gp_str_append(s, (const char *)p, 1);
        }
    }
    gp_str_append(s, "\"", 1);
}

void gp_str_json_num(gp_str *s, double v)
{
    if (!isfinite(v))
        gp_str_puts(s, "null");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        gp_str_printf(s, "%lld", (long long)v);
    else
        gp_str_printf(s, "%.17g", v);
}

const char *gp_str_cstr(const gp_str *s)
{
    return s->data ? s->data : "";
}
