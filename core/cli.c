/* The command line (CONTRACT.md, "Command line"). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "gp_config.h"
#include "journal.h"
#include "log.h"
#include "path.h"
#include "runtime.h"
#include "simulate.h"
#include "str.h"
#include "strategy.h"
#include "timeutil.h"

static const char usage_text[] =
    "usage:\n"
    "  gridpilot run      -c FILE [--dry-run] [--once] [--for DURATION] [--log-format text|json] "
    "[-v]\n"
    "  gridpilot simulate -c FILE [--from TIME] [--to TIME] [--step DURATION] [--out DIR] "
    "[--plot]\n"
    "                     [--series devices|site|none]\n"
    "  gridpilot check    -c FILE\n"
    "  gridpilot plugins  [-c FILE]\n"
    "  gridpilot tasks    -c FILE [--state STATE] [--json]\n"
    "  gridpilot version\n"
    "\n"
    "DURATION: 500ms, 30s, 5m, 1h, 1d. TIME: 2026-01-01T00:00:00Z or 2026-01-01. Exit status: 0 "
    "ok, 1 runtime failure, 2 usage or "
    "configuration error.\n";

/* One line, as every error: what is wrong, and where to read more. */
static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "gridpilot: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see gridpilot --help)\n");
    return 2;
}

/* Options shared by the subcommands; each accepts only its own (checked below). */
typedef struct opts {
    const char *config, *state, *log_format, *for_text;
    const char *from, *to, *step, *out, *series; /* simulate */
    int dry_run, once, json, verbose, plot;
} opts;

/* The long options, and where each one's value goes in opts: a string (has_arg) or a flag
 * set to 1. `key` is its name in a subcommand's list of allowed options. */
typedef struct optdef {
    const char *name, *key;
    int has_arg;
    size_t off;
} optdef;

static const optdef optdefs[] = {
    {"config", "c", required_argument, offsetof(opts, config)},
    {"dry-run", "dry-run", no_argument, offsetof(opts, dry_run)},
    {"once", "once", no_argument, offsetof(opts, once)},
    {"for", "for", required_argument, offsetof(opts, for_text)},
    {"log-format", "log-format", required_argument, offsetof(opts, log_format)},
    {"state", "state", required_argument, offsetof(opts, state)},
    {"json", "json", no_argument, offsetof(opts, json)},
    {"from", "from", required_argument, offsetof(opts, from)},
    {"to", "to", required_argument, offsetof(opts, to)},
    {"step", "step", required_argument, offsetof(opts, step)},
    {"out", "out", required_argument, offsetof(opts, out)},
    {"plot", "plot", no_argument, offsetof(opts, plot)},
    {"series", "series", required_argument, offsetof(opts, series)},
    {"verbose", "v", no_argument, offsetof(opts, verbose)},
};
#define N_OPTDEFS (sizeof optdefs / sizeof *optdefs)
#define OPT_BASE  256 /* getopt's value for optdefs[i] is OPT_BASE + i */

static int parse_opts(int argc, char **argv, const char *cmd, const char *allowed, opts *o)
{
    struct option longs[N_OPTDEFS + 2];
    for (size_t i = 0; i < N_OPTDEFS; i++)
        longs[i] = (struct option){optdefs[i].name, optdefs[i].has_arg, NULL, OPT_BASE + (int)i};
    longs[N_OPTDEFS] = (struct option){"help", no_argument, NULL, 'h'};
    longs[N_OPTDEFS + 1] = (struct option){NULL, 0, NULL, 0};
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:vh", longs, NULL)) != -1) {
        if (c == 'h') {
            printf("%s", usage_text);
            exit(0);
        }
        if (c == ':') return usage_error("option '%s' needs a value", argv[optind - 1]);
        size_t i = c == 'c' ? 0 : c == 'v' ? N_OPTDEFS - 1 : (size_t)(c - OPT_BASE);
        if (c != 'c' && c != 'v' && (c < OPT_BASE || i >= N_OPTDEFS))
            return usage_error("unknown option '%s'", argv[optind - 1]);
        const optdef *d = &optdefs[i];
        if (d->has_arg)
            *(const char **)((char *)o + d->off) = optarg;
        else
            *(int *)((char *)o + d->off) = 1;
        /* Each subcommand lists the options it takes, separated by commas. */
        char key[32];
        snprintf(key, sizeof key, ",%s,", d->key);
        if (!strstr(allowed, key)) {
            fprintf(stderr, "gridpilot %s: option '%s' does not apply (see gridpilot --help)\n",
                    cmd, argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    return 0;
}

static int need_config(const opts *o, const char *cmd)
{
    if (o->config) return 0;
    fprintf(stderr, "gridpilot %s: -c FILE is required (see gridpilot --help)\n", cmd);
    return 2;
}

/* ---- run ------------------------------------------------------------------------------ */

static int cmd_run(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "run", ",c,dry-run,once,for,log-format,v,", &o);
    if (rc || (rc = need_config(&o, "run"))) return rc;
    gp_log_format fmt = GP_LOGFMT_TEXT;
    if (o.log_format && strcmp(o.log_format, "json") == 0)
        fmt = GP_LOGFMT_JSON;
    else if (o.log_format && strcmp(o.log_format, "text") != 0)
        return usage_error("--log-format must be text or json, not '%s'", o.log_format);
    gp_log_setup(fmt, o.verbose ? GP_LOG_DEBUG : GP_LOG_INFO);
    gp_run_opts ro = {.config = o.config, .dry_run = o.dry_run, .once = o.once};
    if (o.for_text) {
        char err[200];
        if (gp_parse_duration_ms(o.for_text, &ro.for_ms, err, sizeof err) != 0)
            return usage_error("--for: %s", err);
        if (ro.for_ms <= 0) return usage_error("--for: %s must be longer than 0", o.for_text);
    }
    if (o.once && o.for_text) return usage_error("%s", "--once and --for do not go together");
    return gp_daemon_run(&ro);
}

/* ---- simulate ------------------------------------------------------------------------- */

static int cmd_simulate(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "simulate", ",c,from,to,step,out,plot,series,v,", &o);
    if (rc || (rc = need_config(&o, "simulate"))) return rc;
    gp_log_setup(GP_LOGFMT_TEXT, o.verbose ? GP_LOG_DEBUG : GP_LOG_INFO);
    gp_sim_opts so = {.config = o.config,
                      .from = o.from,
                      .to = o.to,
                      .step = o.step,
                      .out = o.out,
                      .plot = o.plot,
                      .series = GP_SERIES_DEVICES};
    if (o.series && strcmp(o.series, "site") == 0)
        so.series = GP_SERIES_SITE;
    else if (o.series && strcmp(o.series, "none") == 0)
        so.series = GP_SERIES_NONE;
    else if (o.series && strcmp(o.series, "devices") != 0)
        return usage_error("--series must be devices, site or none, not '%s'", o.series);
    return gp_simulate(&so);
}

/* ---- check ---------------------------------------------------------------------------- */

static int cmd_check(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "check", ",c,v,", &o);
    if (rc || (rc = need_config(&o, "check"))) return rc;
    gp_log_setup(GP_LOGFMT_TEXT, o.verbose ? GP_LOG_DEBUG : GP_LOG_WARN);
    gp_diag d = {0};
    gp_config *cfg = gp_config_load(o.config, 1, &d);
    size_t plugins = 0;
    char why[600];
    if (cfg && !gp_path_dir_usable(cfg->state_dir, why, sizeof why))
        gp_diag_add(&d, "state_dir", "journal folder cannot be used: %s", why);
    if (cfg) {
        char **path = gp_loader_search_path(cfg->plugin_path, cfg->n_plugin_path);
        for (size_t i = 0; i < cfg->n_adapters; i++) {
            const gp_adapter_cfg *ac = &cfg->adapters[i];
            if (!ac->id || !ac->plugin) continue; /* already reported */
            if (ac->config_invalid) continue;     /* reported; asking the plugin adds noise */
            gp_hctx *h = gp_adapter_open(NULL, (unsigned)i, ac, cfg->dir, path, &d);
            if (h) {
                plugins++;
                gp_adapter_close(h);
            }
        }
        gp_loader_free_path(path);
        /* An unreadable file is already reported by the config. */
        if (cfg->has_strategy && cfg->strategy_file && gp_path_is_file(cfg->strategy_file)) {
            gp_strategy_opts so = {cfg->strategy_file, cfg->strategy_params,
                                   cfg->strategy_timeout_ms, cfg->strategy_memory};
            char err[4096];
            gp_strategy *s = gp_strategy_load(&so, err, sizeof err);
            if (!s) {
                char *nl = strchr(err, '\n');
                if (nl) *nl = '\0';
                gp_diag_add(&d, "strategy.file", "%s", err);
            }
            gp_strategy_free(s);
        }
    }
    size_t n = gp_diag_print(&d, o.config);
    gp_diag_clear(&d);
    if (!n)
        printf("%s: OK (%zu adapter(s), %zu plugin(s) loaded, %s)\n", o.config, cfg->n_adapters,
               plugins, cfg->has_strategy ? "strategy compiled" : "no strategy");
    else
        fprintf(stderr, "%s: %zu problem(s)\n", o.config, n);
    gp_config_free(cfg);
    return n ? 2 : 0;
}

/* ---- plugins -------------------------------------------------------------------------- */

typedef struct seen {
    char **names;
    size_t n;
    int found;
} seen;

static void list_one(void *ud, const char *file)
{
    seen *s = ud;
    gp_plugin p;
    char err[512];
    if (gp_loader_open(file, gp_host_table(), &p, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    s->found++;
    char caps[80];
    int shadowed = 0;
    for (size_t i = 0; i < s->n; i++)
        shadowed |= strcmp(s->names[i], p.desc.name) == 0;
    printf("%-10s %-8s abi %u.%u  %-32s %s%s\n", p.desc.name, p.desc.version, p.desc.abi_major,
           p.desc.abi_minor, gp_caps_string(p.desc.caps, caps, sizeof caps), file,
           shadowed ? "  (shadowed by an earlier one)" : "");
    s->names = gp_xrealloc(s->names, (s->n + 1) * sizeof(char *));
    s->names[s->n++] = gp_xstrdup(p.desc.name);
    gp_loader_close(&p);
}

static int cmd_plugins(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "plugins", ",c,v,", &o);
    if (rc) return rc;
    gp_config *cfg = NULL;
    if (o.config) {
        gp_diag d = {0};
        cfg = gp_config_load(o.config, 0, &d);
        if (!cfg) {
            gp_diag_print(&d, o.config);
            gp_diag_clear(&d);
            return 2;
        }
    }
    char **path =
        gp_loader_search_path(cfg ? cfg->plugin_path : NULL, cfg ? cfg->n_plugin_path : 0);
    seen s = {0};
    gp_loader_scan(path, list_one, &s);
    if (!s.found) {
        fprintf(stderr, "no plugins found in:");
        for (char **p = path; *p; p++)
            fprintf(stderr, " %s", *p);
        fprintf(stderr, "\n");
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.names[i]);
    free(s.names);
    gp_loader_free_path(path);
    gp_config_free(cfg);
    return 0;
}

/* ---- tasks ---------------------------------------------------------------------------- */

typedef struct tasks_out {
    int json;
    size_t n;
} tasks_out;

static void json_value(gp_str *s, const gp_jrow *r)
{
    if (r->kind == GP_CMD_ONOFF)
        gp_str_puts(s, r->value != 0 ? "true" : "false");
    else if (r->kind == GP_CMD_RELEASE)
        gp_str_puts(s, "null");
    else
        gp_str_json_num(s, r->value);
}

static int print_row(void *ud, const gp_jrow *r)
{
    tasks_out *t = ud;
    gp_str s = {0};
    if (t->json) {
        gp_str_puts(&s, t->n ? ",\n  {" : "\n  {");
        gp_str_printf(&s, "\"id\": %llu, \"device\": ", (unsigned long long)r->id);
        gp_str_json(&s, r->device);
        gp_str_puts(&s, ", \"kind\": ");
        gp_str_json(&s, gp_cmd_kind_name(r->kind));
        gp_str_puts(&s, ", \"value\": ");
        json_value(&s, r);
        gp_str_puts(&s, ", \"state\": ");
        gp_str_json(&s, gp_jstate_name(r->state));
        gp_str_puts(&s, ", \"vendor_ref\": ");
        gp_str_json(&s, r->vendor_ref);
        gp_str_printf(&s, ", \"created\": %lld, \"updated\": %lld, \"attempts\": %u",
                      (long long)(r->created_ms / 1000), (long long)(r->updated_ms / 1000),
                      r->attempts);
        gp_str_puts(&s, ", \"error\": ");
        gp_str_json(&s, r->error);
        gp_str_puts(&s, ", \"adapter\": ");
        gp_str_json(&s, r->adapter);
        gp_str_puts(&s, ", \"soc_target\": ");
        gp_str_json_num(&s, r->soc_target);
        gp_str_puts(&s, ", \"duration_s\": ");
        if (r->duration_s)
            gp_str_printf(&s, "%u", r->duration_s);
        else
            gp_str_puts(&s, "null");
        gp_str_puts(&s, ", \"energy_wh\": ");
        gp_str_json_num(&s, r->energy_wh);
        gp_str_puts(&s, ", \"origin\": ");
        gp_str_json(&s, r->origin);
        gp_str_puts(&s, "}");
    } else {
        if (!t->n)
            gp_str_printf(&s, "%-6s %-24s %-8s %9s %-9s %-14s %-24s %3s  %s\n", "ID", "DEVICE",
                          "KIND", "VALUE", "STATE", "VENDOR_REF", "UPDATED", "ATT", "ERROR");
        char val[32], upd[40];
        if (r->kind == GP_CMD_ONOFF)
            snprintf(val, sizeof val, "%s", r->value != 0 ? "on" : "off");
        else if (r->kind == GP_CMD_RELEASE || !isfinite(r->value))
            snprintf(val, sizeof val, "-");
        else
            snprintf(val, sizeof val, "%.0f", r->value);
        gp_format_time(r->updated_ms, upd, sizeof upd);
        gp_str_printf(&s, "%-6llu %-24s %-8s %9s %-9s %-14s %-24s %3u  %s\n",
                      (unsigned long long)r->id, r->device, gp_cmd_kind_name(r->kind), val,
                      gp_jstate_name(r->state), r->vendor_ref ? r->vendor_ref : "-", upd,
                      r->attempts, r->error ? r->error : "");
    }
    fputs(gp_str_cstr(&s), stdout);
    gp_str_clear(&s);
    t->n++;
    return 0;
}

static int cmd_tasks(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "tasks", ",c,state,json,v,", &o);
    if (rc || (rc = need_config(&o, "tasks"))) return rc;
    int state = -1;
    if (o.state && (state = gp_jstate_parse(o.state)) < 0) {
        gp_str names = {0};
        for (int i = 0; i < GP_JS_COUNT; i++)
            gp_str_printf(&names, "%s%s", i ? ", " : "", gp_jstate_name((gp_jstate)i));
        fprintf(stderr, "gridpilot tasks: --state: unknown state '%s' (one of: %s)\n", o.state,
                gp_str_cstr(&names));
        gp_str_clear(&names);
        return 2;
    }
    /* Reading the journal needs only state_dir: a config with other problems (a missing
     * strategy file, an unset secret) must not hide what the daemon did. */
    gp_diag d = {0};
    gp_config *cfg = gp_config_load(o.config, 1, &d);
    int bad = !cfg;
    for (size_t i = 0; cfg && i < d.n; i++)
        bad |= strncmp(d.lines[i], "state_dir", 9) == 0;
    if (bad) {
        gp_diag_print(&d, o.config);
        gp_diag_clear(&d);
        gp_config_free(cfg);
        return 2;
    }
    gp_diag_clear(&d);
    char err[512];
    if (access(cfg->state_dir, F_OK) == 0 && !gp_path_is_dir(cfg->state_dir)) {
        fprintf(stderr, "%s: state_dir: %s is not a folder\n", o.config, cfg->state_dir);
        gp_config_free(cfg);
        return 2;
    }
    gp_journal *j = gp_journal_open(cfg->state_dir, 1, err, sizeof err);
    tasks_out t = {o.json, 0};
    rc = 0;
    if (!j && strstr(err, "no journal yet")) {
        /* Nothing has run yet: an empty journal, not an error. */
        if (o.json)
            printf("[]\n");
        else
            printf("no commands journaled yet (%s)\n", cfg->state_dir);
    } else if (!j) {
        fprintf(stderr, "gridpilot tasks: %s\n", err);
        rc = 1;
    } else {
        if (o.json) printf("[");
        if (gp_journal_each(j, state, print_row, &t) < 0) {
            fprintf(stderr, "gridpilot tasks: %s\n", gp_journal_error(j));
            rc = 1;
        }
        if (o.json) printf(t.n ? "\n]\n" : "]\n");
        if (!o.json && !t.n && !rc)
            printf("no commands%s%s\n", o.state ? " in state " : "", o.state ? o.state : "");
        gp_journal_close(j);
    }
    gp_config_free(cfg);
    return rc;
}

/* ---- main ----------------------------------------------------------------------------- */

int gp_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2) return usage_error("unexpected argument '%s'", argv[2]);
        printf("gridpilot %s (plugin ABI %d.%d)\n", GP_VERSION, GP_ABI_MAJOR, GP_ABI_MINOR);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        printf("%s", usage_text);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"run", cmd_run},
                {"simulate", cmd_simulate},
                {"check", cmd_check},
                {"plugins", cmd_plugins},
                {"tasks", cmd_tasks}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
