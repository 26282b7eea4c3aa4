/*
 * The HTTP(S) server: libmicrohttpd with one thread per connection (so a latency or stall
 * fault holds only its own connection), routing /_emu/ to the control API and everything
 * else to the vendor, with faults, logging and statistics around each vendor request.
 */
#ifndef GP_EMU_HTTP_H
#define GP_EMU_HTTP_H

#include <stdint.h>

#include "emu_ctx.h"

typedef struct emu_server emu_server;

typedef struct emu_server_opts {
    const char *bind;     /* IPv4 address to listen on ("127.0.0.1") */
    uint16_t port;        /* 0: an ephemeral port */
    const char *tls_cert; /* PEM file paths; both or neither */
    const char *tls_key;
} emu_server_opts;

/* Start serving ctx (borrowed; must outlive the server). NULL with one line in err. */
emu_server *emu_server_start(const emu_server_opts *o, emu_ctx *ctx, char *err, size_t errlen);
uint16_t emu_server_port(const emu_server *s);
/* Stop accepting, close every connection, join the threads, free. */
void emu_server_stop(emu_server *s);

#endif
