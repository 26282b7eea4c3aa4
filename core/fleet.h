/*
 * Fleet state: every device's identity, limits, latest telemetry and command slots.
 *
 * Devices live in one flat array (grown only during discovery) and their id strings in one
 * arena, so 100,000 devices cost a handful of allocations. A device index is stable for the
 * life of the fleet.
 */
#ifndef GP_FLEET_H
#define GP_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "gridpilot/plugin.h"

/* A command's content, independent of its journal row. */
typedef struct gp_cmdval {
    uint8_t kind;        /* gp_cmd_kind; 0 = none */
    double value;        /* W, %, 1/0 */
    double soc_target;   /* NAN when none */
    uint32_t duration_s; /* 0 = until replaced */
} gp_cmdval;

/* Commands are tracked per slot: a dispatch command (setpoint/release) does not wait for a
 * DoD setting, and vice versa. */
enum gp_slot_kind { GP_SLOT_DISPATCH = 0, GP_SLOT_DOD = 1, GP_SLOT_ONOFF = 2, GP_SLOT_N = 3 };

typedef struct gp_slot {
    uint64_t id;        /* journal id of the command in force or in flight; 0 = none */
    uint8_t state;      /* gp_jstate of that command */
    gp_cmdval cmd;      /* its content (kept after done for de-duplication of settings) */
    int64_t since_ms;   /* when it entered `state` */
    int64_t expires_ms; /* core-managed end of a timed setpoint; 0 = none */
    uint64_t queued_id; /* a later command waiting for this one to finish; 0 = none */
    gp_cmdval queued;   /* its content */
} gp_slot;

typedef struct gp_device {
    uint32_t id_off;     /* full id "<adapter>/<vendor>" in the fleet arena */
    uint32_t vendor_off; /* vendor id in the arena ("" for one-device adapters) */
    uint32_t local;      /* the plugin's index */
    uint16_t adapter;    /* index of the adapter (gp_fleet_adapter_id) */
    uint8_t online;      /* last reading said online and it is not stale */
    uint8_t have_reading;
    uint32_t caps; /* GP_CAP_* */
    /* limits (NAN = unknown) */
    double capacity_wh, max_charge_w, max_discharge_w, soc_min_pct, soc_max_pct;
    /* latest telemetry (NAN = unknown) */
    double soc_pct, battery_w, pv_w, load_w, grid_w;
    int64_t ts_ms; /* measurement time of the latest reading; 0 = never read */
    gp_slot slot[GP_SLOT_N];
} gp_device;

typedef struct gp_site {
    double battery_w, pv_w, load_w, grid_w; /* sums over online devices that report them;
                                           NAN when none does */
    double soc_pct;                         /* capacity-weighted; NAN when no capacity known */
    double capacity_wh;
    uint32_t devices, online;
} gp_site;

typedef struct gp_fleet gp_fleet;

gp_fleet *gp_fleet_new(void); /* owned by the caller; gp_fleet_free */
void gp_fleet_free(gp_fleet *f);

/* Register an adapter (id borrowed, copied); returns its index. stale_ms: telemetry older
 * than this marks a device offline. */
int gp_fleet_add_adapter(gp_fleet *f, const char *id, int64_t stale_ms);
const char *gp_fleet_adapter_id(const gp_fleet *f, unsigned adapter); /* borrowed */
size_t gp_fleet_adapter_count(const gp_fleet *f);

/* Add a device of `adapter`; returns its index, or -1 with a reason in err (bad vendor id).
 * A device announced again (re-discovery) keeps its index, telemetry and commands; its
 * capabilities and limits are updated and *existed (if not NULL) is set. */
int64_t gp_fleet_add(gp_fleet *f, unsigned adapter, const gp_device_info *info, int *existed,
                     char *err, size_t errlen);
size_t gp_fleet_count(const gp_fleet *f);
gp_device *gp_fleet_dev(gp_fleet *f, size_t idx);
const gp_device *gp_fleet_cdev(const gp_fleet *f, size_t idx);
const char *gp_fleet_id(const gp_fleet *f, size_t idx);     /* borrowed */
const char *gp_fleet_vendor(const gp_fleet *f, size_t idx); /* borrowed */
int64_t gp_fleet_find(const gp_fleet *f, const char *id);   /* index or -1 */

/* Apply a reading (borrowed) taken at r->ts_ms (0 = now_ms). */
void gp_fleet_reading(gp_fleet *f, size_t idx, const gp_reading *r, int64_t now_ms);
/* A reading that knows nothing yet: online, every value NAN (fill in what is known). */
gp_reading gp_reading_unknown(int64_t ts_ms);
/* Store the vendor extras of a reading as JSON object text (borrowed; NULL clears). */
void gp_fleet_set_extra(gp_fleet *f, size_t idx, const char *json);
/* Vendor extras of the latest reading as JSON object text (borrowed), or NULL. */
const char *gp_fleet_extra(const gp_fleet *f, size_t idx);
/* Re-evaluate online flags against the staleness limit of each adapter. */
void gp_fleet_refresh_online(gp_fleet *f, int64_t now_ms);
/* Age in seconds of the latest reading; NAN when never read. */
double gp_fleet_age_s(const gp_fleet *f, size_t idx, int64_t now_ms);

void gp_fleet_site(const gp_fleet *f, gp_site *out);

/* The slot a command kind lives in. */
int gp_slot_of(gp_cmd_kind kind);

/* Approximate heap bytes held by the fleet (for the memory benchmark). */
size_t gp_fleet_bytes(const gp_fleet *f);

#endif
