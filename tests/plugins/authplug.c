/*
 * A test plugin whose session starts expired: reads and commands fail with GP_E_AUTH until
 * login() runs. Config: {"devices": N, "login": "ok" | "hang" | "refuse"}. "hang" never
 * answers the login; "refuse" answers it with a failure. Counts logins in kv "logins".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gridpilot/plugin.h"

static const gp_host *H;

typedef struct inst {
    gp_hctx *h;
    int devices;
    const char *mode;
    int session;
    int logins;
} inst;

static void *a_create(gp_hctx *h, const gp_json *cfg)
{
    static const char *const keys[] = {"devices", "login", NULL};
    if (H->config_check_keys(h, cfg, "", keys)) return NULL;
    inst *p = calloc(1, sizeof *p);
    p->h = h;
    double n = H->json_num(H->json_get(cfg, "devices"));
    p->devices = isfinite(n) ? (int)n : 2;
    const char *mode = H->json_str(H->json_get(cfg, "login"));
    p->mode = mode ? mode : "ok";
    return p;
}

static void a_destroy(void *ip)
{
    free(ip);
}

static void a_discover(void *ip)
{
    inst *p = ip;
    for (int i = 0; i < p->devices; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%d", i + 1);
        gp_device_info d = {.size = sizeof d,
                            .vendor_id = id,
                            .local = (uint32_t)i,
                            .caps = GP_CAP_READ | GP_CAP_SETPOINT,
                            .capacity_wh = 10000,
                            .max_charge_w = 5000,
                            .max_discharge_w = 5000,
                            .soc_min_pct = NAN,
                            .soc_max_pct = NAN};
        H->device_add(p->h, &d);
    }
    H->discovered(p->h, 1, NULL);
}

static gp_result result(gp_status st, int code, const char *msg)
{
    return (gp_result){
        .size = sizeof(gp_result), .status = st, .code = code, .message = msg, .energy_wh = NAN};
}

static void a_read(void *ip, uint64_t op, const gp_target *t, size_t n)
{
    inst *p = ip;
    if (!p->session) {
        gp_result r = result(GP_FAILED, GP_E_AUTH, "authplug: session expired");
        H->read_done(p->h, op, &r);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        gp_reading rd = {.size = sizeof rd,
                         .online = 1,
                         .soc_pct = 50,
                         .battery_w = 0,
                         .pv_w = 0,
                         .load_w = 300,
                         .grid_w = 300,
                         .capacity_wh = NAN,
                         .max_charge_w = NAN,
                         .max_discharge_w = NAN,
                         .soc_min_pct = NAN,
                         .soc_max_pct = NAN};
        H->reading(p->h, t[i].device, &rd);
    }
    gp_result r = result(GP_DONE, 0, NULL);
    H->read_done(p->h, op, &r);
}

static void a_command(void *ip, const gp_cmd *c, size_t n)
{
    inst *p = ip;
    for (size_t i = 0; i < n; i++) {
        gp_result r = p->session ? result(GP_DONE, 0, NULL)
                                 : result(GP_FAILED, GP_E_AUTH, "authplug: session expired");
        H->command_result(p->h, c[i].id, &r);
    }
}

static void a_login(void *ip)
{
    inst *p = ip;
    p->logins++;
    char text[16];
    int len = snprintf(text, sizeof text, "%d", p->logins);
    H->kv_set(p->h, "logins", text, (size_t)len);
    if (strcmp(p->mode, "hang") == 0) return; /* never answers */
    int ok = strcmp(p->mode, "ok") == 0;
    p->session = ok;
    gp_result r = ok ? result(GP_DONE, 0, NULL) : result(GP_FAILED, 401, "authplug: bad password");
    H->login_done(p->h, &r);
}

static const gp_plugin_desc desc = {
    .magic = GP_PLUGIN_MAGIC,
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .size = sizeof(gp_plugin_desc),
    .name = "authplug",
    .version = "0.0.1",
    .description = "test plugin that needs a login",
    .caps = GP_CAP_READ | GP_CAP_SETPOINT,
    .create = a_create,
    .destroy = a_destroy,
    .discover = a_discover,
    .read = a_read,
    .command = a_command,
    .login = a_login,
};

GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host);
GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host)
{
    H = host;
    return &desc;
}
