/*
 * Plugin loader: finds <name>.so along the plugin path, dlopens it and checks its
 * descriptor (magic, ABI major, size, mandatory operations, capabilities backed by
 * operations). Refusals are one line naming the file and the reason.
 */
#ifndef GP_LOADER_H
#define GP_LOADER_H

#include <stddef.h>

#include "gridpilot/plugin.h"

typedef struct gp_plugin {
    char *path;          /* owned; the .so file */
    void *dl;            /* dlopen handle; owned */
    gp_plugin_desc desc; /* the plugin's descriptor, fields it lacks zero-filled */
} gp_plugin;

/* The search path: GRIDPILOT_PLUGIN_PATH (':'-separated), then `extra` (the config's
 * plugin_path, may be NULL), then the build tree next to the executable, then the installed
 * plugin folder. Returns a NULL-terminated malloc'd array of malloc'd strings. */
char **gp_loader_search_path(char *const *extra, size_t n_extra);
void gp_loader_free_path(char **path);

/* Find <name>.so or <name>/<name>.so along path; malloc'd path or NULL. */
char *gp_loader_find(char *const *path, const char *name);

/* Load and check one file. On success fills *out (release with gp_loader_close) and returns
 * 0; otherwise -1 and err holds "<file>: <reason>". host is passed to the entry function. */
int gp_loader_open(const char *file, const gp_host *host, gp_plugin *out, char *err, size_t errlen);
void gp_loader_close(gp_plugin *p);

/* Every *.so directly in each folder and in its immediate subfolders, in path order; cb gets
 * the file path (borrowed). */
void gp_loader_scan(char *const *path, void (*cb)(void *ud, const char *file), void *ud);

/* "read,setpoint,soc_target,dod,onoff" for a capability mask (static buffer per call). */
const char *gp_caps_string(uint32_t caps, char *buf, size_t len);

#endif
