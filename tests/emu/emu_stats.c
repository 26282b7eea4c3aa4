/* Per-API counters: a small array searched by name (a vendor has a dozen APIs). */
#include "emu_stats.h"

#include <stdlib.h>
#include <string.h>

void emu_stats_init(emu_stats *st, const char *const *apis, size_t n)
{
    st->s = gp_xcalloc(n ? n : 1, sizeof(emu_stat));
    st->n = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < st->n && strcmp(st->s[k].api, apis[i]) != 0)
            k++;
        if (k == st->n) st->s[st->n++].api = apis[i];
    }
}

void emu_stats_count(emu_stats *st, const char *api, int quota_hit, int failed)
{
    if (st->n == 0) return;
    size_t k = 0;
    while (k < st->n - 1 && strcmp(st->s[k].api, api) != 0)
        k++;
    st->s[k].calls++;
    if (quota_hit)
        st->s[k].quota++;
    else if (failed)
        st->s[k].failures++;
}

void emu_stats_json(const emu_stats *st, gp_str *out)
{
    gp_str_puts(out, "{\"apis\":{");
    for (size_t k = 0; k < st->n; k++) {
        const emu_stat *s = &st->s[k];
        if (k) gp_str_puts(out, ",");
        gp_str_json(out, s->api);
        gp_str_printf(out, ":{\"calls\":%llu,\"limited\":%llu,\"failures\":%llu}",
                      (unsigned long long)s->calls, (unsigned long long)s->quota,
                      (unsigned long long)s->failures);
    }
    gp_str_puts(out, "}}");
}

void emu_stats_free(emu_stats *st)
{
    free(st->s);
    memset(st, 0, sizeof(*st));
}
