/*
 * gp-emu: the command line. Parses the options, builds the vendor, serves until SIGTERM or
 * SIGINT, then stops the server and frees everything. Prints exactly one line to stdout when
 * ready: "gp-emu <vendor> listening on http(s)://<bind>:<port>".
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_ctx.h"
#include "emu_http.h"
#include "timeutil.h"

static const emu_vendor *const vendors[] = {&emu_huawei};

static const char usage[] =
    "usage: gp-emu --vendor NAME [--port N] [--bind ADDR] [--plants N] [--batteries-every K]\n"
    "              [--seed S] [--speed X] [--anchor UNIX_MS|ISO-8601] [--user U --password P]\n"
    "              [--tls-cert PEM --tls-key PEM] [--log-max N] [--set KEY=VALUE]...\n"
    "vendors: huawei. See tests/emu/README.md.\n";

typedef struct cli {
    const char *vendor;
    emu_server_opts srv;
    emu_opts o;
    double speed;
    int64_t anchor_ms;
    int has_anchor;
    size_t log_max;
    const char **sets; /* owned array, strings borrowed from argv */
    size_t n_sets;
} cli;

static int fail_usage(const char *fmt, const char *arg)
{
    fputs("gp-emu: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    return -1;
}

/* An unsigned integer option within [lo, hi]. */
static int uint_arg(const char *name, const char *v, unsigned long long lo, unsigned long long hi,
                    unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-' || n < lo || n > hi) {
        fprintf(stderr, "gp-emu: %s %s: give an integer from %llu to %llu\n", name, v, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_anchor(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v && !*end && !errno) {
        *out = n;
        return 0;
    }
    char err[160];
    if (gp_parse_time_ms(v, out, err, sizeof err) == 0) return 0;
    fprintf(stderr, "gp-emu: --anchor %s: give Unix milliseconds or ISO-8601 (%s)\n", v, err);
    return -1;
}

static int parse(int argc, char **argv, cli *c)
{
    static const struct option opts[] = {
        {"vendor", required_argument, 0, 'v'},
        {"port", required_argument, 0, 'p'},
        {"bind", required_argument, 0, 'b'},
        {"plants", required_argument, 0, 'n'},
        {"batteries-every", required_argument, 0, 'k'},
        {"seed", required_argument, 0, 's'},
        {"speed", required_argument, 0, 'x'},
        {"anchor", required_argument, 0, 'a'},
        {"user", required_argument, 0, 'u'},
        {"password", required_argument, 0, 'w'},
        {"tls-cert", required_argument, 0, 'c'},
        {"tls-key", required_argument, 0, 'y'},
        {"log-max", required_argument, 0, 'l'},
        {"set", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    unsigned long long u;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'v':
            c->vendor = optarg;
            break;
        case 'p':
            if (uint_arg("--port", optarg, 0, 65535, &u)) return -1;
            c->srv.port = (uint16_t)u;
            break;
        case 'b':
            c->srv.bind = optarg;
            break;
        case 'n':
            if (uint_arg("--plants", optarg, 1, 10000000, &u)) return -1;
            c->o.plants = (size_t)u;
            break;
        case 'k':
            if (uint_arg("--batteries-every", optarg, 0, 10000000, &u)) return -1;
            c->o.batteries_every = (size_t)u;
            break;
        case 's':
            if (uint_arg("--seed", optarg, 0, UINT64_MAX, &u)) return -1;
            c->o.seed = u;
            break;
        case 'x': {
            char *end;
            c->speed = strtod(optarg, &end);
            if (!*optarg || *end || !isfinite(c->speed) || c->speed < 0 || c->speed > 1e6)
                return fail_usage("--speed %s: give a number from 0 to 1e6", optarg);
            break;
        }
        case 'a':
            if (parse_anchor(optarg, &c->anchor_ms)) return -1;
            c->has_anchor = 1;
            break;
        case 'u':
            c->o.user = optarg;
            break;
        case 'w':
            c->o.password = optarg;
            break;
        case 'c':
            c->srv.tls_cert = optarg;
            break;
        case 'y':
            c->srv.tls_key = optarg;
            break;
        case 'l':
            if (uint_arg("--log-max", optarg, 1, 100000000, &u)) return -1;
            c->log_max = (size_t)u;
            break;
        case 'S':
            if (!strchr(optarg, '=')) return fail_usage("--set %s: give KEY=VALUE", optarg);
            c->sets = gp_xrealloc(c->sets, (c->n_sets + 2) * sizeof(char *));
            c->sets[c->n_sets++] = optarg;
            c->sets[c->n_sets] = NULL;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            return fail_usage("%s: unknown option or missing value (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return fail_usage("unexpected argument \"%s\"", argv[optind]);
    if (!c->vendor) return fail_usage("%s", "--vendor is required (huawei)");
    if (!c->srv.tls_cert != !c->srv.tls_key)
        return fail_usage("%s", "--tls-cert and --tls-key go together");
    c->o.sets = c->sets;
    return 0;
}

int main(int argc, char **argv)
{
    cli c = {
        .srv = {.bind = "127.0.0.1"},
        .o = {.plants = 10,
              .batteries_every = 1,
              .seed = 1,
              .user = "vpp",
              .password = "vpp-secret"},
        .speed = 1,
        .log_max = 10000,
    };
    if (parse(argc, argv, &c) != 0) {
        free(c.sets);
        return 2;
    }
    const emu_vendor *v = NULL;
    for (size_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++)
        if (strcmp(vendors[i]->name, c.vendor) == 0) v = vendors[i];
    if (!v) {
        fprintf(stderr, "gp-emu: --vendor %s: unknown (known: huawei)\n", c.vendor);
        free(c.sets);
        return 2;
    }
    int64_t wall = gp_wall_ms();
    int64_t anchor = c.has_anchor ? c.anchor_ms : wall;
    c.o.start_ms = anchor + llround((double)(wall - anchor) * c.speed);

    char err[300];
    void *state = v->create(&c.o, err, sizeof err);
    if (!state) {
        fprintf(stderr, "gp-emu: %s\n", err);
        free(c.sets);
        return 2;
    }
    emu_ctx ctx;
    emu_ctx_init(&ctx, v, state, anchor, c.speed, c.log_max);

    /* Signals are taken by sigwait below; every thread started from here inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    emu_server *srv = emu_server_start(&c.srv, &ctx, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "gp-emu: %s\n", err);
        emu_ctx_free(&ctx);
        free(c.sets);
        return 1;
    }
    printf("gp-emu %s listening on %s://%s:%u\n", v->name, c.srv.tls_cert ? "https" : "http",
           c.srv.bind, (unsigned)emu_server_port(srv));
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    emu_ctx_stop(&ctx);
    emu_server_stop(srv);
    emu_ctx_free(&ctx);
    free(c.sets);
    return 0;
}
