/*
 * Fault rules set through POST /_emu/faults: each matches vendor requests by path suffix (or
 * "*") and applies to the next `count` of them (0: until cleared). The first matching rule
 * in the order they were added wins. Not locked: the framework holds its mutex.
 */
#ifndef GP_EMU_FAULTS_H
#define GP_EMU_FAULTS_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

struct cJSON;

typedef enum emu_fault_kind {
    EMU_F_LATENCY,       /* wait `ms`, then answer normally */
    EMU_F_HTTP_STATUS,   /* answer `status` with a non-JSON body, the vendor never sees it */
    EMU_F_FAILCODE,      /* the vendor's error envelope with `code`, the vendor never sees it */
    EMU_F_RESET,         /* close the connection (RST) without an answer */
    EMU_F_MALFORMED,     /* the vendor handles it; its body is replaced by broken JSON */
    EMU_F_TRUNCATED,     /* the vendor handles it; the connection closes mid-body */
    EMU_F_STALL,         /* say nothing for `ms`, then close without an answer */
    EMU_F_TOKEN_EXPIRED, /* the vendor's "session expired" answer; that session ends */
    EMU_F_NKINDS
} emu_fault_kind;

typedef struct emu_fault {
    uint64_t id;
    char path[128]; /* suffix to match, or "*" */
    emu_fault_kind kind;
    int64_t count; /* answers left; 0: until cleared */
    int64_t ms;    /* latency / stall time */
    int status;    /* http_status */
    int code;      /* failcode */
    uint64_t hits;
} emu_fault;

typedef struct emu_faults {
    emu_fault *rules; /* owned */
    size_t n, cap;
    uint64_t next_id;
} emu_faults;

const char *emu_fault_kind_name(emu_fault_kind k);

/* Add a rule from its JSON object. Returns its id (> 0), or 0 with one line in err. */
uint64_t emu_faults_add(emu_faults *f, const struct cJSON *rule, char *err, size_t errlen);
/* The rule that applies to a request for `path`, copied to *out and consumed (a rule whose
 * count runs out is removed). Returns 1 if one applies. */
int emu_faults_take(emu_faults *f, const char *path, emu_fault *out);
/* Remove every rule; returns how many there were. */
size_t emu_faults_clear(emu_faults *f);
/* Append the rules as a JSON array. */
void emu_faults_json(const emu_faults *f, gp_str *out);
void emu_faults_free(emu_faults *f);

#endif
