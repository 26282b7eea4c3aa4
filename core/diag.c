/* Diagnostics collector. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "str.h"

void gp_diag_add(gp_diag *d, const char *path, const char *fmt, ...)
{
    gp_str s = {0};
    if (path && *path) gp_str_printf(&s, "%s: ", path);
    va_list ap;
    va_start(ap, fmt);
    gp_str_vprintf(&s, fmt, ap);
    va_end(ap);
    d->lines = gp_xrealloc(d->lines, (d->n + 1) * sizeof(char *));
    d->lines[d->n++] = gp_xstrdup(gp_str_cstr(&s));
    gp_str_clear(&s);
}

size_t gp_diag_print(const gp_diag *d, const char *file)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s: %s\n", file, d->lines[i]);
    return d->n;
}

void gp_diag_clear(gp_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->lines[i]);
    free(d->lines);
    d->lines = NULL;
    d->n = 0;
}
