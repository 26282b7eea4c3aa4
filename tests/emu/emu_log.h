/*
 * The request log behind GET /_emu/requests: every vendor request received (not the control
 * API's), with its emulated time, headers, body and how it was answered. Bounded: past `max`
 * entries the oldest are dropped; sequence numbers keep counting. Not locked: the framework
 * holds its mutex.
 */
#ifndef GP_EMU_LOG_H
#define GP_EMU_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

typedef struct emu_log_entry {
    uint64_t seq;
    int64_t t_ms;              /* emulated */
    char *method, *path, *api; /* owned */
    char *headers;             /* owned; a JSON object text */
    char *body;                /* owned; the body as received (UTF-8 checked), NUL-terminated */
    int status;                /* HTTP status answered; 0 when none (reset, stall) */
    int has_code, code;        /* the vendor's answer code, when it answered */
    const char *fault;         /* static: the fault kind applied, or NULL */
} emu_log_entry;

typedef struct emu_log {
    emu_log_entry *ring; /* owned; cap entries */
    size_t cap, head, n; /* oldest at head */
    uint64_t next_seq;
} emu_log;

void emu_log_init(emu_log *l, size_t max);
/* Take ownership of e's strings; assigns e->seq. Returns the seq. */
uint64_t emu_log_add(emu_log *l, emu_log_entry *e);
/* Append a JSON array of the entries with seq > since, oldest first, at most limit (0: all).
 * The last one's seq is what to pass as `since` next time. */
void emu_log_json(const emu_log *l, uint64_t since, size_t limit, gp_str *out);
/* Forget every entry (sequence numbers continue); returns how many. */
size_t emu_log_clear(emu_log *l);
void emu_log_free(emu_log *l);

#endif
