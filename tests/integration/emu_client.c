/* Integration tests' client of the vendor emulator. */
#include "emu_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void it_emu_start(it_emu *e, const char *dir, ...)
{
    const char *argv[48];
    int n = 0;
    argv[n++] = GP_IT_EMU;
    va_list ap;
    va_start(ap, dir);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 46)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(e->log, sizeof e->log, "%s/emu.log", dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        int err = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, 2);
        close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    e->pid = pid;
    /* Its first line says where it listens; a blocking read is the synchronisation. */
    FILE *fp = fdopen(fds[0], "r");
    char line[256] = "";
    e->out = fp;
    if (!fgets(line, sizeof line, fp)) fail_msg("gp-emu printed no address (see %s)", e->log);
    char *at = strstr(line, "listening on ");
    if (!at) fail_msg("gp-emu said '%s'", line);
    snprintf(e->url, sizeof e->url, "%s", at + strlen("listening on "));
    e->url[strcspn(e->url, "\r\n")] = '\0';
}

void it_emu_stop(it_emu *e)
{
    if (e->pid <= 0) return;
    kill(e->pid, SIGTERM);
    int st;
    waitpid(e->pid, &st, 0);
    e->pid = 0;
    if (e->out) fclose(e->out);
    e->out = NULL;
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    buf *b = ud;
    b->p = realloc(b->p, b->n + sz * nm + 1);
    memcpy(b->p + b->n, d, sz * nm);
    b->n += sz * nm;
    b->p[b->n] = '\0';
    return sz * nm;
}

cJSON *it_emu_call(it_emu *e, const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_emu/%s", e->url, path);
    CURL *c = curl_easy_init();
    buf b = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CAINFO, GP_IT_SRCDIR "/tests/fixtures/tls/ca.pem");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status >= 400)
        fail_msg("emulator %s %s: %s (HTTP %ld) %s", method, path, curl_easy_strerror(rc), status,
                 b.p ? b.p : "");
    cJSON *j = cJSON_Parse(b.p ? b.p : "null");
    free(b.p);
    if (!j) fail_msg("emulator %s %s: answer is not JSON", method, path);
    return j;
}

int it_emu_count(it_emu *e, const char *suffix)
{
    cJSON *reqs = it_emu_call(e, "GET", "requests", NULL);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        const cJSON *p = cJSON_GetObjectItem(r, "path");
        if (!cJSON_IsString(p)) continue;
        size_t lp = strlen(p->valuestring), ls = suffix ? strlen(suffix) : 0;
        if (!suffix || (lp >= ls && strcmp(p->valuestring + lp - ls, suffix) == 0)) n++;
    }
    cJSON_Delete(reqs);
    return n;
}
