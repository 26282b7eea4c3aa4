/*
 * Integration test harness: runs the real gridpilot binary in a temporary folder, reads the
 * journal through `gridpilot tasks --json` (what a user sees), waits on conditions with
 * deadlines. With GP_IT_VALGRIND=1 every gridpilot process runs under valgrind and a leak
 * or memory error fails the test.
 */
#ifndef GP_IT_HARNESS_H
#define GP_IT_HARNESS_H

#include <cjson/cJSON.h>
#include <sys/types.h>

typedef struct it_env {
    char dir[64];  /* the test's folder (removed at teardown) */
    char cfg[128]; /* dir/gridpilot.json */
} it_env;

typedef struct it_proc {
    pid_t pid;
    char out[160], err[160]; /* files holding its stdout and stderr */
    int status;              /* exit status once waited for; -1 killed by a signal */
} it_proc;

/* cmocka setup/teardown: *state becomes an it_env. */
int it_setup(void **state);
int it_teardown(void **state);

/* Write dir/name (printf-style). Returns the full path (static buffer). */
const char *it_write(it_env *t, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Write the config: `adapters` and `extra` are JSON fragments placed in the document. */
void it_config(it_env *t, const char *extra, const char *adapters);

/* Start `gridpilot ARGS...` (NULL-terminated) in the test folder. */
void it_spawn(it_env *t, it_proc *p, ...);
/* Wait for exit; returns the exit status, or fails the test after timeout_s. */
int it_wait(it_proc *p, double timeout_s);
/* Run to completion and return the exit status; *out / *err (if not NULL) get the text
 * (free them). */
int it_run(it_env *t, double timeout_s, char **out, char **err, ...);
void it_signal(it_proc *p, int sig);

/* The journal as `gridpilot tasks --json [--state S]` prints it (cJSON_Delete it). */
cJSON *it_tasks(it_env *t, const char *state);
/* Wait until cond returns non-zero, checking every 50 ms; fails the test after timeout_s. */
void it_wait_for(it_env *t, double timeout_s, int (*cond)(it_env *t, void *ud), void *ud,
                 const char *what);
/* Number of journal rows (optionally in state S) whose `field` equals `value` (NULL: all). */
int it_count_tasks(it_env *t, const char *state, const char *field, const char *value);

char *it_read(const char *path); /* whole file, malloc'd; NULL when missing */
/* dir/name parsed as JSON; fails the test when missing or not JSON (cJSON_Delete it). */
cJSON *it_read_json(it_env *t, const char *name);
/* The number at o.a (or o.a.b when b is not NULL); fails the test when it is not one. */
double it_num(const cJSON *o, const char *a, const char *b);
int it_count_lines(const char *path, const char *needle); /* lines containing needle */
/* Does the file contain the text? */
int it_contains(const char *path, const char *needle);

/* Timeouts stretch under valgrind. */
double it_slow(void);

#endif
