/* A command as a strategy or the HTTP API states it, before validation (dispatch.c). */
#ifndef GP_INTENT_H
#define GP_INTENT_H

#include <stdint.h>

enum gp_intent_field {
    GP_IF_SETPOINT = 1u << 0,
    GP_IF_DURATION = 1u << 1,
    GP_IF_SOC_TARGET = 1u << 2,
    GP_IF_DOD = 1u << 3,
    GP_IF_ON = 1u << 4,
    GP_IF_RELEASE = 1u << 5,
};

typedef struct gp_intent {
    const char *device; /* borrowed from whoever built the list; NULL if missing */
    uint32_t fields;    /* gp_intent_field bits present */
    double setpoint_w, duration_s, soc_target, dod;
    int on;
    int release;
    const char *error; /* set by the parser when the table itself is malformed (unknown key,
                          wrong type); borrowed; the intent is then skipped */
} gp_intent;

#endif
