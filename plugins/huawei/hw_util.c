/* Allocation helpers and string lists for the huawei plugin (it links no core code). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

static void oom(void)
{
    /* Like the host's allocators: nothing sensible can go on without memory. */
    fputs("huawei: out of memory\n", stderr);
    abort();
}

void *hw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom();
    return p;
}

void *hw_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) oom();
    return q;
}

char *hw_xstrdup(const char *s)
{
    if (!s) return NULL;
    size_t len = strlen(s) + 1;
    return memcpy(hw_xcalloc(len, 1), s, len);
}

void hw_strv_push(hw_strv *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = hw_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = hw_xstrdup(s ? s : "");
}

void hw_strv_free(hw_strv *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

int hw_strv_has(const hw_strv *l, const char *s)
{
    for (size_t i = 0; s && i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return 1;
    return 0;
}

void hw_plant_free(hw_plant *p)
{
    free(p->code);
    free(p->model);
    hw_strv_free(&p->batteries);
    hw_strv_free(&p->inverters);
    memset(p, 0, sizeof(*p));
}
