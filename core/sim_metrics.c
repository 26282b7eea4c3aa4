/* Summaries of gp.metric figures over a simulation (see sim_metrics.h). */
#include "sim_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"

typedef struct sums {
    char name[GP_METRIC_NAME_MAX];
    size_t ticks;
    double sum, sum_abs, sum_sq, min, max, last;
} sums;

struct gp_metric_sums {
    sums *v; /* owned array, first-seen order */
    size_t n, cap;
    int warned; /* the "too many names" warning was given */
};

gp_metric_sums *gp_metric_sums_new(void)
{
    return gp_xcalloc(1, sizeof(gp_metric_sums));
}

void gp_metric_sums_free(gp_metric_sums *m)
{
    if (!m) return;
    free(m->v);
    free(m);
}

static sums *find(gp_metric_sums *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].name, name) == 0) return &m->v[i];
    if (m->n == GP_METRIC_SUMS_MAX) {
        if (!m->warned)
            gp_warn("simulate",
                    "gp.metric: more than %d names over the run; '%s' and later "
                    "new names are not reported",
                    GP_METRIC_SUMS_MAX, name);
        m->warned = 1;
        return NULL;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 8;
        m->v = gp_xrealloc(m->v, m->cap * sizeof *m->v);
    }
    sums *s = &m->v[m->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->min = INFINITY;
    s->max = -INFINITY;
    return s;
}

void gp_metric_sums_add(gp_metric_sums *m, const gp_metric *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sums *s = find(m, v[i].name);
        if (!s) continue;
        double x = v[i].value;
        s->ticks++;
        s->sum += x;
        s->sum_abs += fabs(x);
        s->sum_sq += x * x;
        if (x < s->min) s->min = x;
        if (x > s->max) s->max = x;
        s->last = x;
    }
}

cJSON *gp_metric_sums_json(const gp_metric_sums *m)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < m->n; i++) {
        const sums *s = &m->v[i];
        double t = (double)s->ticks;
        cJSON *e = cJSON_AddObjectToObject(o, s->name);
        cJSON_AddNumberToObject(e, "ticks", t);
        cJSON_AddNumberToObject(e, "mean", s->sum / t);
        cJSON_AddNumberToObject(e, "mean_abs", s->sum_abs / t);
        cJSON_AddNumberToObject(e, "rms", sqrt(s->sum_sq / t));
        cJSON_AddNumberToObject(e, "min", s->min);
        cJSON_AddNumberToObject(e, "max", s->max);
        cJSON_AddNumberToObject(e, "sum", s->sum);
        cJSON_AddNumberToObject(e, "last", s->last);
    }
    return o;
}

void gp_metric_sums_log(const gp_metric_sums *m, const char *who)
{
    for (size_t i = 0; i < m->n; i++) {
        const sums *s = &m->v[i];
        double t = (double)s->ticks;
        gp_info(who,
                "metric %s: mean %.6g, mean |x| %.6g, min %.6g, max %.6g, sum %.6g over %zu "
                "tick(s)",
                s->name, s->sum / t, s->sum_abs / t, s->min, s->max, s->sum, s->ticks);
    }
}
