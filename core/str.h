/* A growable NUL-terminated string; also the gp_str handed to plugins. */
#ifndef GP_STR_H
#define GP_STR_H

#include <stdarg.h>
#include <stddef.h>

#include "gridpilot/plugin.h"

struct gp_str {
    char *data; /* owned; always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
};

/* Heap-allocated string, owned by the caller, freed with gp_str_free. Never NULL (aborts on
 * out-of-memory, like every allocation in the core). */
gp_str *gp_str_new(void);
void gp_str_free(gp_str *s);
/* For a gp_str embedded in another struct: release its buffer, leave it empty. */
void gp_str_clear(gp_str *s);
void gp_str_reset(gp_str *s); /* len = 0, keeps the buffer */
void gp_str_append(gp_str *s, const char *text, size_t len);
void gp_str_puts(gp_str *s, const char *text);
void gp_str_printf(gp_str *s, const char *fmt, ...) GP_PRINTF(2, 3);
void gp_str_vprintf(gp_str *s, const char *fmt, va_list ap);
/* Append text as a quoted JSON string with escapes ("null" for NULL). */
void gp_str_json(gp_str *s, const char *text);
/* Append a number as JSON: NAN/inf become null; integers print without a fraction. */
void gp_str_json_num(gp_str *s, double v);
const char *gp_str_cstr(const gp_str *s); /* "" when empty; borrowed */

/* Allocation helpers that abort with a message on out-of-memory. */
void *gp_xmalloc(size_t n);
void *gp_xcalloc(size_t n, size_t size);
void *gp_xrealloc(void *p, size_t n);
char *gp_xstrdup(const char *s); /* NULL in, NULL out */

#endif
