/* Path helpers. */
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "str.h"

static char *normalise(const char *p)
{
    /* Split on '/', drop "." and empty parts, let ".." eat the previous part. */
    size_t n = strlen(p);
    char *copy = gp_xstrdup(p);
    char **parts = gp_xmalloc((n / 2 + 2) * sizeof(char *));
    size_t np = 0;
    for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0) continue;
        if (strcmp(tok, "..") == 0) {
            if (np && strcmp(parts[np - 1], "..") != 0)
                np--;
            else if (p[0] != '/')
                parts[np++] = tok;
            continue;
        }
        parts[np++] = tok;
    }
    gp_str out = {0};
    if (p[0] == '/') gp_str_puts(&out, "/");
    for (size_t i = 0; i < np; i++) {
        if (i) gp_str_puts(&out, "/");
        gp_str_puts(&out, parts[i]);
    }
    if (!out.len) gp_str_puts(&out, ".");
    free(parts);
    free(copy);
    return out.data;
}

char *gp_path_resolve(const char *base_dir, const char *path)
{
    if (!path) return NULL;
    if (path[0] == '/' || !base_dir || !*base_dir) return normalise(path);
    gp_str s = {0};
    gp_str_printf(&s, "%s/%s", base_dir, path);
    char *r = normalise(gp_str_cstr(&s));
    gp_str_clear(&s);
    return r;
}

char *gp_path_dirname_abs(const char *file)
{
    char *abs;
    if (file[0] == '/') {
        abs = gp_xstrdup(file);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, ".");
        abs = gp_path_resolve(cwd, file);
    }
    char *slash = strrchr(abs, '/');
    if (slash == abs)
        abs[1] = '\0';
    else if (slash)
        *slash = '\0';
    char *r = normalise(abs);
    free(abs);
    return r;
}

int gp_path_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

int gp_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int gp_path_mkdirs(const char *dir, mode_t mode)
{
    char *p = gp_xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) rc = -1;
        *s = c;
        if (c == '\0') break;
    }
    if (rc == 0) {
        struct stat st;
        if (stat(p, &st) != 0)
            rc = -1;
        else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            rc = -1;
        }
    }
    free(p);
    return rc;
}

int gp_path_dir_usable(const char *dir, char *why, size_t whylen)
{
    char *p = gp_xstrdup(dir);
    int ok = 0;
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                snprintf(why, whylen, "%s is not a folder", p);
            else if (access(p, W_OK | X_OK) != 0)
                snprintf(why, whylen, "%s: %s", p, strerror(errno));
            else
                ok = 1;
            break;
        }
        if (errno != ENOENT) {
            snprintf(why, whylen, "%s: %s", p, strerror(errno));
            break;
        }
        /* Missing: whether it can be made depends on the nearest folder that exists. */
        char *slash = strrchr(p, '/');
        if (!slash) {
            snprintf(why, whylen, "%s: %s", p, strerror(ENOENT));
            break;
        }
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    free(p);
    return ok;
}
