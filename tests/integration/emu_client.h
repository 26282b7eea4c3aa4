/*
 * Drive a vendor emulator (tests/emu/gp-emu) from integration tests: start it, read its
 * address, and use its /_emu control API (faults, clock, request log, state).
 */
#ifndef GP_IT_EMU_CLIENT_H
#define GP_IT_EMU_CLIENT_H

#include <cjson/cJSON.h>
#include <sys/types.h>

typedef struct it_emu {
    pid_t pid;
    char url[128]; /* "https://127.0.0.1:PORT" */
    char log[160]; /* its stderr */
    void *out;     /* its stdout (FILE *), kept open so it never writes to a closed pipe */
} it_emu;

/* Start gp-emu with the given arguments (NULL-terminated, after the program name); fails the
 * test if it does not print its address within a few seconds. */
void it_emu_start(it_emu *e, const char *dir, ...);
void it_emu_stop(it_emu *e);

/* A control call: method "GET"/"POST"/"DELETE" on /_emu/<path> with an optional JSON body.
 * Returns the parsed answer (cJSON_Delete it), or fails the test. */
cJSON *it_emu_call(it_emu *e, const char *method, const char *path, const char *body);
/* Requests the emulator received whose path ends with `suffix` (NULL: all). */
int it_emu_count(it_emu *e, const char *suffix);

#endif
