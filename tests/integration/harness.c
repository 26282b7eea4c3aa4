/* Integration test harness. */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static int valgrind(void)
{
    const char *v = getenv("GP_IT_VALGRIND");
    return v && *v && strcmp(v, "0") != 0;
}

double it_slow(void)
{
    return valgrind() ? 15.0 : 1.0;
}

int it_setup(void **state)
{
    it_env *t = calloc(1, sizeof *t);
    strcpy(t->dir, "/tmp/gp-it-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->cfg, sizeof t->cfg, "%s/gridpilot.json", t->dir);
    *state = t;
    return 0;
}

int it_teardown(void **state)
{
    it_env *t = *state;
    if (!getenv("GP_IT_KEEP")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", t->dir);
        assert_int_equal(system(cmd), 0);
    }
    free(t);
    return 0;
}

const char *it_write(it_env *t, const char *name, const char *fmt, ...)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
    fclose(fp);
    return path;
}

void it_config(it_env *t, const char *extra, const char *adapters)
{
    it_write(t, "gridpilot.json",
             "{\n  \"site\": \"it\",\n  \"state_dir\": \"var\",\n"
             "  \"plugin_path\": [\"%s\"],\n%s%s  \"adapters\": [%s]\n}\n",
             GP_IT_PLUGINS, extra ? extra : "", extra && *extra ? ",\n" : "", adapters);
}

static void spawn_v(it_env *t, it_proc *p, va_list ap)
{
    static int seq;
    const char *argv[64];
    int n = 0;
    if (valgrind()) {
        argv[n++] = "valgrind";
        argv[n++] = "--quiet";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--show-leak-kinds=definite,indirect";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect";
        argv[n++] = "--suppressions=" GP_IT_SRCDIR "/tests/valgrind.supp";
    }
    argv[n++] = GP_IT_BIN;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 62)
        argv[n++] = a;
    argv[n] = NULL;
    seq++;
    snprintf(p->out, sizeof p->out, "%s/out.%d", t->dir, seq);
    snprintf(p->err, sizeof p->err, "%s/err.%d", t->dir, seq);
    p->status = -2;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        if (chdir(t->dir) != 0) _exit(126);
        /* Keep plugin code mapped at exit so leak reports name their functions. */
        setenv("GRIDPILOT_NO_DLCLOSE", "1", 1);
        /* Under ASan: the plotting libraries' caches are not leaks of ours. */
        setenv("LSAN_OPTIONS", "suppressions=" GP_IT_SRCDIR "/tests/lsan.supp:print_suppressions=0",
               0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
}

void it_spawn(it_env *t, it_proc *p, ...)
{
    va_list ap;
    va_start(ap, p);
    spawn_v(t, p, ap);
    va_end(ap);
}

int it_wait(it_proc *p, double timeout_s)
{
    double end = now_s() + timeout_s * it_slow();
    int st;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) break;
        if (now_s() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            char *err = it_read(p->err);
            fprintf(stderr, "--- stderr of the timed-out process:\n%s\n", err ? err : "");
            free(err);
            fail_msg("gridpilot did not exit within %.0f s", timeout_s * it_slow());
        }
        nap(0.02);
    }
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (p->status == 99 && valgrind()) {
        char *err = it_read(p->err);
        fprintf(stderr, "--- valgrind found errors:\n%s\n", err ? err : "");
        free(err);
        fail_msg("valgrind reported memory errors or leaks");
    }
    return p->status;
}

int it_run(it_env *t, double timeout_s, char **out, char **err, ...)
{
    it_proc p;
    va_list ap;
    va_start(ap, err);
    spawn_v(t, &p, ap);
    va_end(ap);
    int rc = it_wait(&p, timeout_s);
    if (out) *out = it_read(p.out);
    if (err) *err = it_read(p.err);
    return rc;
}

void it_signal(it_proc *p, int sig)
{
    assert_int_equal(kill(p->pid, sig), 0);
}

char *it_read(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, fp)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    fclose(fp);
    return buf;
}

int it_count_lines(const char *path, const char *needle)
{
    char *text = it_read(path);
    if (!text) return 0;
    int n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        if (!needle || strstr(line, needle)) n++;
    free(text);
    return n;
}

int it_contains(const char *path, const char *needle)
{
    char *text = it_read(path);
    int yes = text && strstr(text, needle);
    free(text);
    return yes;
}

cJSON *it_tasks(it_env *t, const char *state)
{
    char *out = NULL, *err = NULL;
    /* The journal reader is quick even under valgrind; run it natively. */
    const char *v = getenv("GP_IT_VALGRIND");
    char *saved = v ? strdup(v) : NULL;
    unsetenv("GP_IT_VALGRIND");
    int rc =
        state ? it_run(t, 20, &out, &err, "tasks", "-c", t->cfg, "--json", "--state", state, NULL)
              : it_run(t, 20, &out, &err, "tasks", "-c", t->cfg, "--json", NULL);
    if (saved) {
        setenv("GP_IT_VALGRIND", saved, 1);
        free(saved);
    }
    if (rc != 0) fail_msg("gridpilot tasks failed (%d): %s", rc, err ? err : "");
    cJSON *j = cJSON_Parse(out);
    if (!j || !cJSON_IsArray(j)) fail_msg("gridpilot tasks --json printed no array: %s", out);
    free(out);
    free(err);
    return j;
}

int it_count_tasks(it_env *t, const char *state, const char *field, const char *value)
{
    cJSON *j = it_tasks(t, state);
    int n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, j)
    {
        if (!field) {
            n++;
            continue;
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(row, field);
        if (cJSON_IsString(f) && strcmp(f->valuestring, value) == 0) n++;
    }
    cJSON_Delete(j);
    return n;
}

void it_wait_for(it_env *t, double timeout_s, int (*cond)(it_env *t, void *ud), void *ud,
                 const char *what)
{
    double end = now_s() + timeout_s * it_slow();
    while (!cond(t, ud)) {
        if (now_s() > end) fail_msg("timed out waiting for %s", what);
        nap(0.05);
    }
}

cJSON *it_read_json(it_env *t, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    char *text = it_read(path);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    return doc;
}

double it_num(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItem(o, a);
    if (b) v = cJSON_GetObjectItem(v, b);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}
