/* A map from 64-bit ids to 32-bit indices (linear probing, backward-shift deletion). */
#ifndef GP_IDMAP_H
#define GP_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gp_idmap {
    uint64_t *keys; /* 0 = empty slot; id 0 is never stored */
    uint32_t *vals;
    size_t cap, n;
} gp_idmap;

void gp_idmap_clear(gp_idmap *m); /* frees the tables */
void gp_idmap_put(gp_idmap *m, uint64_t key, uint32_t val);
int gp_idmap_get(const gp_idmap *m, uint64_t key, uint32_t *val); /* 1 found, 0 not */
void gp_idmap_del(gp_idmap *m, uint64_t key);

#endif
