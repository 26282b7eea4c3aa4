/*
 * gridpilot's huawei plugin: Huawei SmartPVMS (FusionSolar) northbound interface V500R007C00,
 * V7 API (`/rest/openapi/pvms/v1/`). One gridpilot device per plant. This file holds the
 * descriptor, the quotas and the operation table; each concern lives in its own hw_*.c.
 */
#include <stddef.h>

#include "huawei.h"

#define H hw_host

const gp_host *hw_host;

/*
 * Per NBI account and minute, from the seed document (line numbers in
 * shared/seeds/003_57423e1996dc2e93.txt): login 3518, logout 3620, plants 3692 (5.2.1),
 * devices 3821, plantRealtimeKpi 4328, chargeAndDischarge 4609, chargeAndDischargeStatus
 * 4782, dod 4911, devOnOff 5033. Exceeding one is answered with failCode 407.
 */
static const gp_quota hw_quotas[] = {
    {"login", 1, 60},
    {"logout", 1, 60},
    {"plants", 1, 60},
    {"devices", 10, 60},
    {"plantRealtimeKpi", 10, 60},
    {"chargeAndDischarge", 100, 60},
    {"chargeAndDischargeStatus", 100, 60},
    {"dod", 10, 60},
    {"devOnOff", 10, 60},
};

static void *op_create(gp_hctx *h, const gp_json *config)
{
    return hw_config_build(h, config);
}

static void op_destroy(void *inst)
{
    hw_free(inst);
}

static void op_discover(void *inst)
{
    hw_discover(inst);
}

static void op_read(void *inst, uint64_t op, const gp_target *targets, size_t n)
{
    hw_read(inst, op, targets, n);
}

static void op_command(void *inst, const gp_cmd *cmds, size_t n)
{
    hw_command(inst, cmds, n);
}

static void op_task_poll(void *inst, const gp_task *tasks, size_t n)
{
    hw_task_poll(inst, tasks, n);
}

static void op_login(void *inst)
{
    hw_login(inst, 1, 0);
}

static const gp_plugin_desc hw_desc = {
    .magic = GP_PLUGIN_MAGIC,
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .size = sizeof(gp_plugin_desc),
    .name = "huawei",
    .version = "1.0.0",
    .description = "Huawei SmartPVMS (FusionSolar) northbound V7 API: plants, VPP KPIs, "
                   "charge/discharge tasks, DoD, inverter on/off",
    .caps = GP_CAP_READ | GP_CAP_SETPOINT | GP_CAP_SOC_TARGET | GP_CAP_DOD | GP_CAP_ONOFF,
    .flags = GP_PF_TASKS | GP_PF_NATIVE_DURATION,
    .task_poll_s = 180, /* the vendor refreshes task states every 3 minutes (seed 5.3.7) */
    .max_batch = HW_MAX_CODES,
    .quotas = hw_quotas,
    .n_quotas = sizeof(hw_quotas) / sizeof(hw_quotas[0]),
    .create = op_create,
    .destroy = op_destroy,
    .discover = op_discover,
    .read = op_read,
    .command = op_command,
    .task_poll = op_task_poll,
    .login = op_login,
};

GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host);
GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *host)
{
    /* Everything but rate_limited is ABI 1.0; rate_limited is used only when the host's
     * table reaches it (hw_api.c checks). */
    if (!host || host->abi_major != GP_ABI_MAJOR ||
        host->size < offsetof(gp_host, parse_duration_ms) + sizeof(host->parse_duration_ms))
        return NULL;
    hw_host = host;
    return &hw_desc;
}
