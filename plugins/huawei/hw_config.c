/*
 * The adapter's config object: validated completely (every problem reported with its path),
 * then copied into a new instance. No I/O: `gridpilot check` calls create and destroy only.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

static const char *const allowed_keys[] = {
    "base_url",         "username",  "password*",       "plants",
    "default_duration", "page_size", "battery_power_w", NULL,
};

/* A plant code goes into comma-separated lists and JSON: refuse what would break either. */
static int bad_code(const char *c)
{
    if (!*c || strlen(c) > 200) return 1;
    for (const unsigned char *p = (const unsigned char *)c; *p; p++)
        if (*p < 0x21 || *p == ',' || *p == '"' || *p == '\\' || *p == 0x7f) return 1;
    return 0;
}

static int check_url(gp_hctx *h, const gp_json *cfg, char **out)
{
    const gp_json *v = H->json_get(cfg, "base_url");
    const char *url = H->json_str(v);
    if (!v) {
        H->config_error(h, "base_url",
                        "required: the northbound address, e.g. "
                        "\"https://127.0.0.1:27200\"");
        return 1;
    }
    if (!url) {
        H->config_error(h, "base_url", "must be a string");
        return 1;
    }
    const char *host = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (!host || !*host || *host == '/') {
        H->config_error(h, "base_url",
                        "must be an http:// or https:// address with a host, "
                        "e.g. \"https://127.0.0.1:27200\"");
        return 1;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            H->config_error(h, "base_url", "must not contain spaces or control characters");
            return 1;
        }
    }
    if (strchr(host, '?') || strchr(host, '#')) {
        H->config_error(h, "base_url", "must not contain a query or fragment");
        return 1;
    }
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    *out = hw_xcalloc(len + 1, 1);
    memcpy(*out, url, len);
    return 0;
}

static int check_username(gp_hctx *h, const gp_json *cfg, char **out)
{
    const gp_json *v = H->json_get(cfg, "username");
    const char *u = H->json_str(v);
    if (!v) {
        H->config_error(h, "username", "required: the northbound (NBI) account name");
        return 1;
    }
    if (!u || !*u) {
        H->config_error(h, "username", "must be a non-empty string");
        return 1;
    }
    *out = hw_xstrdup(u);
    return 0;
}

static int check_plants(gp_hctx *h, const gp_json *cfg, hw_strv *out)
{
    const gp_json *v = H->json_get(cfg, "plants");
    if (!v) return 0;
    if (H->json_type(v) != GP_JSON_ARRAY) {
        H->config_error(h, "plants", "must be an array of plant codes (\"NE=12345678\")");
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < H->json_len(v); i++) {
        const char *c = H->json_str(H->json_at(v, i));
        char path[40];
        snprintf(path, sizeof path, "plants[%zu]", i);
        if (!c) {
            H->config_error(h, path, "must be a string (a plant code such as \"NE=12345678\")");
            bad++;
        } else if (bad_code(c)) {
            H->config_error(h, path,
                            "\"%.60s\" is not a plant code (no spaces, commas or "
                            "quotes; at most 200 characters)",
                            c);
            bad++;
        } else if (hw_strv_has(out, c)) {
            H->config_error(h, path, "duplicate plant code \"%s\"", c);
            bad++;
        } else {
            hw_strv_push(out, c);
        }
    }
    if (!bad && out->n == 0) {
        H->config_error(h, "plants", "must not be empty (leave it out to use every plant)");
        bad++;
    }
    return bad;
}

static int check_duration(gp_hctx *h, const gp_json *cfg, uint32_t *minutes)
{
    *minutes = 60;
    const gp_json *v = H->json_get(cfg, "default_duration");
    if (!v) return 0;
    const char *text = H->json_str(v);
    if (!text) {
        H->config_error(h, "default_duration", "must be a duration string such as \"1h\"");
        return 1;
    }
    int64_t ms = 0;
    char err[160];
    if (H->parse_duration_ms(text, &ms, err, sizeof err) != 0) {
        H->config_error(h, "default_duration", "%s", err);
        return 1;
    }
    if (ms < 60000 || ms > (int64_t)HW_MAX_MINUTES * 60000) {
        H->config_error(h, "default_duration",
                        "must be between 1m and 24h (Huawei's dispatchTime is 1..1440 minutes)");
        return 1;
    }
    *minutes = (uint32_t)((ms + 59999) / 60000);
    return 0;
}

static int check_page_size(gp_hctx *h, const gp_json *cfg, uint32_t *out)
{
    *out = 100;
    const gp_json *v = H->json_get(cfg, "page_size");
    if (!v) return 0;
    double n = H->json_type(v) == GP_JSON_NUMBER ? H->json_num(v) : NAN;
    if (n != 10 && n != 20 && n != 30 && n != 50 && n != 100) {
        H->config_error(h, "page_size",
                        "must be 10, 20, 30, 50 or 100 (the values Huawei "
                        "accepts for pageSize)");
        return 1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* The API gives no battery power limit (seed 5.2.2 lists only ratedCapacity, usableCapacity
 * and dod for batteries; ratedPower is the inverter's): the operator may tell it. */
static int check_power(gp_hctx *h, const gp_json *cfg, double *out)
{
    *out = NAN;
    const gp_json *v = H->json_get(cfg, "battery_power_w");
    if (!v) return 0;
    double w = H->json_type(v) == GP_JSON_NUMBER ? H->json_num(v) : NAN;
    if (!(w > 0 && w <= 1e9)) {
        H->config_error(h, "battery_power_w",
                        "must be a number of watts above 0 (the most a plant's batteries charge "
                        "or discharge with), e.g. 5000");
        return 1;
    }
    *out = w;
    return 0;
}

hw *hw_config_build(gp_hctx *h, const gp_json *config)
{
    if (H->json_type(config) != GP_JSON_OBJECT) {
        H->config_error(h, "", "must be an object with base_url, username and password");
        return NULL;
    }
    hw *s = hw_xcalloc(1, sizeof(*s));
    s->h = h;
    int bad = H->config_check_keys(h, config, "", allowed_keys);
    bad += check_url(h, config, &s->base_url);
    bad += check_username(h, config, &s->username);
    s->password = H->config_secret(h, config, "password", 1);
    if (!s->password)
        bad++;
    else if (!*s->password) {
        H->config_error(h, "password", "must not be empty");
        bad++;
    }
    bad += check_plants(h, config, &s->only);
    bad += check_duration(h, config, &s->default_min);
    bad += check_page_size(h, config, &s->page_size);
    bad += check_power(h, config, &s->battery_power_w);
    if (bad) {
        hw_free(s);
        return NULL;
    }
    return s;
}

void hw_free(hw *s)
{
    if (!s) return;
    hw_calls_drop_all(s);
    hw_disc_free(s->disc);
    hw_sent_free(s);
    for (size_t i = 0; i < s->n_plants; i++)
        hw_plant_free(&s->plants[i]);
    free(s->plants);
    if (s->token) {
        /* The token is a credential: do not leave it in freed memory. */
        memset(s->token, 0, strlen(s->token));
        free(s->token);
    }
    hw_strv_free(&s->only);
    free(s->base_url);
    free(s->username);
    free(s);
}

static int cmp_code(const void *key, const void *elem)
{
    return strcmp(key, ((const hw_plant *)elem)->code);
}

hw_plant *hw_find_plant(hw *s, uint32_t local, const char *code)
{
    if (!code || !*code || s->n_plants == 0) return NULL;
    if (local < s->n_plants && strcmp(s->plants[local].code, code) == 0) return &s->plants[local];
    return bsearch(code, s->plants, s->n_plants, sizeof(hw_plant), cmp_code);
}
