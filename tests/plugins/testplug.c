/*
 * Deliberately broken plugins for the loader's refusal tests. One source, built several
 * times with a VARIANT define; each variant breaks exactly one rule of the ABI.
 */
#include <math.h>
#include <stddef.h>

#include "gridpilot/plugin.h"

static const gp_host *host;

static void *t_create(gp_hctx *h, const gp_json *config)
{
    (void)config;
    return h; /* any non-NULL instance will do */
}
static void t_destroy(void *inst)
{
    (void)inst;
}
static void t_discover(void *inst)
{
    host->discovered(inst, 1, NULL);
}
static void t_read(void *inst, uint64_t op, const gp_target *t, size_t n)
{
    (void)t;
    (void)n;
    gp_result r = {.size = sizeof r, .status = GP_DONE, .energy_wh = NAN};
    host->read_done(inst, op, &r);
}
static void t_command(void *inst, const gp_cmd *c, size_t n)
{
    gp_result r = {.size = sizeof r, .status = GP_DONE, .energy_wh = NAN};
    for (size_t i = 0; i < n; i++)
        host->command_result(inst, c[i].id, &r);
}
static void t_task_poll(void *inst, const gp_task *t, size_t n)
{
    gp_result r = {.size = sizeof r, .status = GP_DONE, .energy_wh = NAN};
    for (size_t i = 0; i < n; i++)
        host->task_result(inst, t[i].cmd_id, &r);
}

static gp_plugin_desc desc = {
    .magic = GP_PLUGIN_MAGIC,
    .abi_major = GP_ABI_MAJOR,
    .abi_minor = GP_ABI_MINOR,
    .size = sizeof(gp_plugin_desc),
    .name = PLUGIN_NAME,
    .version = "0.0.1",
    .description = "loader test plugin",
    .caps = GP_CAP_READ | GP_CAP_SETPOINT,
    .flags = GP_PF_TASKS,
    .task_poll_s = 1,
    .create = t_create,
    .destroy = t_destroy,
    .discover = t_discover,
    .read = t_read,
    .command = t_command,
    .task_poll = t_task_poll,
};

#if VARIANT == 1 /* no entry symbol at all */
GP_EXPORT int gp_not_an_entry(void);
GP_EXPORT int gp_not_an_entry(void)
{
    return (int)desc.magic;
}
#else
GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *h);
GP_EXPORT const gp_plugin_desc *GP_PLUGIN_ENTRY(const gp_host *h)
{
    host = h;
#if VARIANT == 2   /* wrong magic */
    desc.magic = 0xdeadbeef;
#elif VARIANT == 3 /* a future major ABI */
    desc.abi_major = GP_ABI_MAJOR + 1;
#elif VARIANT == 4 /* a mandatory function missing */
    desc.discover = NULL;
#elif VARIANT == 5 /* a capability claimed without its function */
    desc.command = NULL;
#elif VARIANT == 6 /* asynchronous tasks without task_poll */
    desc.task_poll = NULL;
#elif VARIANT == 7 /* entry returns nothing */
    return NULL;
#endif
    return &desc;
}
#endif
