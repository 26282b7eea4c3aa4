/* `gridpilot run`. */
#ifndef GP_DAEMON_H
#define GP_DAEMON_H

#include <stdint.h>

typedef struct gp_run_opts {
    const char *config; /* path of the config file; borrowed */
    int dry_run;        /* journal and print commands, never send them */
    int once;           /* one tick, wait for answers, exit (no on_exit) */
    int64_t for_ms;     /* > 0: stop after this long, as on SIGTERM */
} gp_run_opts;

/* Run until stopped; returns the process exit status (0, 1 runtime failure, 2 config). */
int gp_daemon_run(const gp_run_opts *o);

#endif
