/* Plugin discovery, loading and checking. */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gp_config.h"
#include "path.h"
#include "str.h"

static void push(char ***v, size_t *n, char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0) { /* listed already: the first place wins anyway */
            free(s);
            return;
        }
    *v = gp_xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

char **gp_loader_search_path(char *const *extra, size_t n_extra)
{
    char **v = NULL;
    size_t n = 0;
    const char *env = getenv("GRIDPILOT_PLUGIN_PATH");
    if (env && *env) {
        char *copy = gp_xstrdup(env);
        for (char *save = NULL, *t = strtok_r(copy, ":", &save); t;
             t = strtok_r(NULL, ":", &save)) {
            char cwd[PATH_MAX];
            push(&v, &n, gp_path_resolve(getcwd(cwd, sizeof cwd) ? cwd : ".", t));
        }
        free(copy);
    }
    for (size_t i = 0; i < n_extra; i++)
        push(&v, &n, gp_xstrdup(extra[i]));
    /* Running from a build tree (build/core/gridpilot): its plugins are in build/plugins. */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *dir = gp_path_dirname_abs(exe);
        char *tree = gp_path_resolve(dir, "../plugins");
        free(dir);
        if (gp_path_is_dir(tree))
            push(&v, &n, tree);
        else
            free(tree);
    }
    push(&v, &n, gp_xstrdup(GP_PLUGINDIR));
    return v;
}

void gp_loader_free_path(char **path)
{
    if (!path) return;
    for (char **p = path; *p; p++)
        free(*p);
    free(path);
}

char *gp_loader_find(char *const *path, const char *name)
{
    gp_str f = {0};
    for (char *const *p = path; p && *p; p++) {
        gp_str_reset(&f);
        gp_str_printf(&f, "%s/%s.so", *p, name);
        if (gp_path_is_file(gp_str_cstr(&f))) return f.data;
        gp_str_reset(&f);
        gp_str_printf(&f, "%s/%s/%s.so", *p, name, name);
        if (gp_path_is_file(gp_str_cstr(&f))) return f.data;
    }
    gp_str_clear(&f);
    return NULL;
}

static int valid_name(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* The descriptor size of ABI 1.0: everything up to and including the reserved slots. */
#define DESC_V1_0_SIZE sizeof(gp_plugin_desc)

static const char *check_desc(const gp_plugin_desc *d)
{
    static char why[200];
    if (!valid_name(d->name)) return "its name is missing or not [a-z0-9_-]+";
    if (!d->version || !*d->version) return "it has no version string";
    if (!d->create) return "it has no create function (mandatory)";
    if (!d->destroy) return "it has no destroy function (mandatory)";
    if (!d->discover) return "it has no discover function (mandatory)";
    if ((d->caps & GP_CAP_READ) && !(d->flags & GP_PF_PUSH_TELEMETRY) && !d->read)
        return "it claims the READ capability but has no read function";
    static const struct {
        uint32_t cap;
        const char *name;
    } writes[] = {{GP_CAP_SETPOINT, "SETPOINT"},
                  {GP_CAP_SOC_TARGET, "SOC_TARGET"},
                  {GP_CAP_DOD, "DOD"},
                  {GP_CAP_ONOFF, "ONOFF"}};
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        if ((d->caps & writes[i].cap) && !d->command) {
            snprintf(why, sizeof why, "it claims the %s capability but has no command function",
                     writes[i].name);
            return why;
        }
    if ((d->flags & GP_PF_TASKS) && !d->task_poll)
        return "it declares asynchronous tasks (GP_PF_TASKS) but has no task_poll function";
    if ((d->flags & GP_PF_TASKS) && !(d->task_poll_s > 0))
        return "it declares asynchronous tasks but no task_poll_s interval";
    if (d->caps & ~(uint32_t)(GP_CAP_READ | GP_CAP_WRITE_MASK))
        return "it claims capability bits this gridpilot does not know";
    for (size_t i = 0; i < d->n_quotas; i++)
        if (!d->quotas || !d->quotas[i].endpoint || !d->quotas[i].limit || !d->quotas[i].period_s)
            return "its quota table has an entry without endpoint, limit or period";
    return NULL;
}

int gp_loader_open(const char *file, const gp_host *host, gp_plugin *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    void *dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "%s: cannot load: %s", file, dlerror());
        return -1;
    }
    gp_plugin_entry_fn entry;
    /* POSIX: converting the void* from dlsym to a function pointer is the sanctioned way. */
    *(void **)(&entry) = dlsym(dl, GP_PLUGIN_ENTRY_NAME);
    const char *why = NULL;
    char buf[200];
    const gp_plugin_desc *d = NULL;
    if (!entry) {
        why = "not a gridpilot plugin (no " GP_PLUGIN_ENTRY_NAME " symbol)";
    } else if (!(d = entry(host))) {
        why = "its entry function returned no descriptor";
    } else if (d->magic != GP_PLUGIN_MAGIC) {
        snprintf(buf, sizeof buf, "wrong magic 0x%08x (expected 0x%08x): not a gridpilot plugin",
                 d->magic, GP_PLUGIN_MAGIC);
        why = buf;
    } else if (d->abi_major != GP_ABI_MAJOR) {
        snprintf(buf, sizeof buf,
                 "built for plugin ABI %u.%u; this gridpilot supports ABI %d.x (rebuild it "
                 "against this gridpilot's plugin.h)",
                 d->abi_major, d->abi_minor, GP_ABI_MAJOR);
        why = buf;
    } else if (d->size < offsetof(gp_plugin_desc, reserved)) {
        snprintf(buf, sizeof buf, "descriptor size %u is smaller than ABI 1.0's %zu", d->size,
                 offsetof(gp_plugin_desc, reserved));
        why = buf;
    }
    if (!why) {
        /* A newer minor may have a longer struct: take what we know. An older one a shorter
         * struct: the fields it lacks stay zero. */
        size_t n = d->size < sizeof out->desc ? d->size : sizeof out->desc;
        memcpy(&out->desc, d, n);
        why = check_desc(&out->desc);
    }
    if (why) {
        snprintf(err, errlen, "%s: refused: %s", file, why);
        dlclose(dl);
        memset(out, 0, sizeof *out);
        return -1;
    }
    (void)DESC_V1_0_SIZE;
    out->dl = dl;
    out->path = gp_xstrdup(file);
    return 0;
}

void gp_loader_close(gp_plugin *p)
{
    if (!p) return;
    /* Keep the code mapped under sanitizers/valgrind so leak reports can symbolise; the
     * cost is nothing at exit. */
    if (p->dl && !getenv("GRIDPILOT_NO_DLCLOSE")) dlclose(p->dl);
    free(p->path);
    memset(p, 0, sizeof *p);
}

static int has_so_suffix(const char *n)
{
    size_t l = strlen(n);
    return l > 3 && strcmp(n + l - 3, ".so") == 0;
}

static void scan_dir(const char *dir, int depth, void (*cb)(void *, const char *), void *ud)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) return;
    gp_str f = {0};
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (name[0] != '.') {
            gp_str_reset(&f);
            gp_str_printf(&f, "%s/%s", dir, name);
            if (has_so_suffix(name) && gp_path_is_file(gp_str_cstr(&f)))
                cb(ud, gp_str_cstr(&f));
            else if (depth == 0 && gp_path_is_dir(gp_str_cstr(&f)))
                scan_dir(gp_str_cstr(&f), 1, cb, ud);
        }
        free(ents[i]);
    }
    free(ents);
    gp_str_clear(&f);
}

void gp_loader_scan(char *const *path, void (*cb)(void *ud, const char *file), void *ud)
{
    for (char *const *p = path; p && *p; p++)
        scan_dir(*p, 0, cb, ud);
}

const char *gp_caps_string(uint32_t caps, char *buf, size_t len)
{
    static const char *const names[] = {"read", "setpoint", "soc_target", "dod", "onoff"};
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < 5; i++)
        if (caps & (1u << i))
            at += (size_t)snprintf(buf + at, at < len ? len - at : 0, "%s%s", at ? "," : "",
                                   names[i]);
    if (!at) snprintf(buf, len, "-");
    return buf;
}
