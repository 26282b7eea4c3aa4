/* Reading Huawei answers through the host's JSON services, and small text helpers. */
#include <math.h>
#include <string.h>

#include "huawei.h"

#define H hw_host

const gp_json *hw_data_list(const gp_json *data, const gp_json **page)
{
    if (page) *page = NULL;
    int t = H->json_type(data);
    /* The seed's tables describe a paged map {total, pageCount, pageNo, pageSize, list}; its
     * examples show a bare array. Both occur in the wild: take either. */
    if (t == GP_JSON_ARRAY) return data;
    if (t != GP_JSON_OBJECT) return NULL;
    const gp_json *list = H->json_get(data, "list");
    if (H->json_type(list) != GP_JSON_ARRAY) return NULL;
    if (page) *page = data;
    return list;
}

const char *hw_jstr(const gp_json *obj, const char *key)
{
    return H->json_str(H->json_get(obj, key));
}

double hw_jnum(const gp_json *obj, const char *key)
{
    return H->json_num(H->json_get(obj, key));
}

int hw_jbad_num(const gp_json *obj, const char *key)
{
    const gp_json *v = H->json_get(obj, key);
    int t = H->json_type(v);
    if (t == GP_JSON_MISSING || t == GP_JSON_NULL) return 0;
    return isnan(H->json_num(v));
}

void hw_join(gp_str *b, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        H->str_printf(b, "%s%s", i ? "," : "", v[i]);
}

void hw_oneline(char *dst, size_t n, const char *src)
{
    if (!n) return;
    size_t k = 0;
    for (; src && *src && k + 1 < n; src++)
        dst[k++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? ' ' : *src;
    dst[k] = '\0';
}
