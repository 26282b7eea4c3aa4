/* The request log: a ring of entries, printed as JSON on demand. */
#include "emu_log.h"

#include <stdlib.h>
#include <string.h>

void emu_log_init(emu_log *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    l->cap = max ? max : 1;
    l->ring = gp_xcalloc(l->cap, sizeof(emu_log_entry));
    l->next_seq = 1;
}

static void entry_free(emu_log_entry *e)
{
    free(e->method);
    free(e->path);
    free(e->api);
    free(e->headers);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

uint64_t emu_log_add(emu_log *l, emu_log_entry *e)
{
    e->seq = l->next_seq++;
    if (l->n == l->cap) {
        entry_free(&l->ring[l->head]);
        l->head = (l->head + 1) % l->cap;
        l->n--;
    }
    l->ring[(l->head + l->n) % l->cap] = *e;
    l->n++;
    return e->seq;
}

static void entry_json(const emu_log_entry *e, gp_str *out)
{
    gp_str_printf(out, "{\"seq\":%llu,\"t_ms\":%lld,\"method\":", (unsigned long long)e->seq,
                  (long long)e->t_ms);
    gp_str_json(out, e->method);
    gp_str_puts(out, ",\"path\":");
    gp_str_json(out, e->path);
    gp_str_puts(out, ",\"api\":");
    gp_str_json(out, e->api);
    gp_str_puts(out, ",\"headers\":");
    gp_str_puts(out, e->headers ? e->headers : "{}");
    gp_str_puts(out, ",\"body\":");
    gp_str_json(out, e->body);
    if (e->status)
        gp_str_printf(out, ",\"status\":%d", e->status);
    else
        gp_str_puts(out, ",\"status\":null");
    if (e->has_code)
        gp_str_printf(out, ",\"failCode\":%d", e->code);
    else
        gp_str_puts(out, ",\"failCode\":null");
    gp_str_puts(out, ",\"fault\":");
    gp_str_json(out, e->fault);
    gp_str_puts(out, "}");
}

void emu_log_json(const emu_log *l, uint64_t since, size_t limit, gp_str *out)
{
    gp_str_puts(out, "[");
    size_t shown = 0;
    for (size_t k = 0; k < l->n && (limit == 0 || shown < limit); k++) {
        const emu_log_entry *e = &l->ring[(l->head + k) % l->cap];
        if (e->seq <= since) continue;
        if (shown++) gp_str_puts(out, ",");
        entry_json(e, out);
    }
    gp_str_puts(out, "]");
}

size_t emu_log_clear(emu_log *l)
{
    size_t n = l->n;
    for (size_t k = 0; k < l->n; k++)
        entry_free(&l->ring[(l->head + k) % l->cap]);
    l->head = l->n = 0;
    return n;
}

void emu_log_free(emu_log *l)
{
    emu_log_clear(l);
    free(l->ring);
    memset(l, 0, sizeof(*l));
}
