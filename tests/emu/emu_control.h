/*
 * The control API under /_emu/ (JSON in, JSON out, no auth): request log, vendor state,
 * faults, clock, session expiry, statistics. See README.md for every endpoint.
 */
#ifndef GP_EMU_CONTROL_H
#define GP_EMU_CONTROL_H

#include "emu_ctx.h"

/* Answer one control request; called with ctx's mutex held. */
void emu_control_handle(emu_ctx *c, const emu_req *req, emu_resp *resp);

#endif
