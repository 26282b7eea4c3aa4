/* u64 -> u32 hash map. */
#include "idmap.h"

#include <stdlib.h>

#include "str.h"

static size_t slot_of(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key & mask;
}

void gp_idmap_clear(gp_idmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static void grow(gp_idmap *m)
{
    gp_idmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = gp_xcalloc(m->cap, sizeof(uint64_t));
    m->vals = gp_xcalloc(m->cap, sizeof(uint32_t));
    m->n = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i]) gp_idmap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
}

void gp_idmap_put(gp_idmap *m, uint64_t key, uint32_t val)
{
    if ((m->n + 1) * 2 > m->cap) grow(m);
    size_t mask = m->cap - 1, i = slot_of(key, mask);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
}

int gp_idmap_get(const gp_idmap *m, uint64_t key, uint32_t *val)
{
    if (!m->cap || !key) return 0;
    size_t mask = m->cap - 1;
    for (size_t i = slot_of(key, mask); m->keys[i]; i = (i + 1) & mask)
        if (m->keys[i] == key) {
            if (val) *val = m->vals[i];
            return 1;
        }
    return 0;
}

void gp_idmap_del(gp_idmap *m, uint64_t key)
{
    if (!m->cap || !key) return;
    size_t mask = m->cap - 1, i = slot_of(key, mask);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->keys[i]) return;
    m->keys[i] = 0;
    m->n--;
    /* Shift later members of the probe run back so lookups never stop early. */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], mask);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between) continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        m->keys[j] = 0;
        i = j;
    }
}
