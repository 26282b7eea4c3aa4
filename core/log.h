/* Logging to stderr: one line per event, text or JSON, with secret redaction. */
#ifndef GP_LOG_H
#define GP_LOG_H

#include <stdarg.h>

#include "gridpilot/plugin.h" /* gp_log_level, GP_PRINTF */

typedef enum gp_log_format { GP_LOGFMT_TEXT = 0, GP_LOGFMT_JSON = 1 } gp_log_format;

/* Set the format and the most verbose level printed (GP_LOG_INFO by default). */
void gp_log_setup(gp_log_format fmt, int max_level);
int gp_log_level(void);

/* Register a secret (copied): any occurrence in a later message is printed as "***". */
void gp_log_add_secret(const char *secret);
/* Forget every registered secret (frees the copies). */
void gp_log_reset(void);

/* Log one line. `who` is the component or adapter id ("core", "fusion"); borrowed. */
void gp_log(int level, const char *who, const char *fmt, ...) GP_PRINTF(3, 4);
void gp_logv(int level, const char *who, const char *fmt, va_list ap);

#define gp_err(who, ...)   gp_log(GP_LOG_ERROR, who, __VA_ARGS__)
#define gp_warn(who, ...)  gp_log(GP_LOG_WARN, who, __VA_ARGS__)
#define gp_info(who, ...)  gp_log(GP_LOG_INFO, who, __VA_ARGS__)
#define gp_debug(who, ...) gp_log(GP_LOG_DEBUG, who, __VA_ARGS__)

#endif
