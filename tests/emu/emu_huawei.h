/*
 * The Huawei SmartPVMS northbound interface V500R007C00 (V7 paths under /rest/openapi/pvms/v1/)
 * as emulated by gp-emu: types shared by emu_huawei.c (sessions, envelope, login/logout,
 * control hooks), emu_huawei_plants.c (the plants, plants/devices/plantRealtimeKpi/dod/
 * devOnOff) and emu_huawei_tasks.c (chargeAndDischarge and chargeAndDischargeStatus).
 * Every function here is called with the framework's mutex held.
 */
#ifndef GP_EMU_HUAWEI_H
#define GP_EMU_HUAWEI_H

#include <stddef.h>
#include <stdint.h>

#include "emu.h"
#include "emu_quota.h"
#include "emu_site.h"

struct cJSON;

#define HW_BASE           "/rest/openapi/pvms/v1"
#define HW_MAX_ITEMS      100              /* plants or devices per call */
#define HW_SAMPLE_MS      (5 * 60000LL)    /* plantRealtimeKpi refreshes every 5 min */
#define HW_REFRESH_MS     (3 * 60000LL)    /* task status refreshes every 3 min */
#define HW_TASK_LIMIT_MS  (24 * 3600000LL) /* a task not done after 24 h times out */
#define HW_IDLE_MS        (30 * 60000LL)   /* a session unused for 30 min expires */
#define HW_MAX_CATCHUP_MS (7 * 86400000LL) /* longer gaps are not simulated */
#define HW_INITIAL_DOD    90
#define HW_MIN_DOD        80       /* end-of-discharge SoC [0, 20] for Huawei */
#define HW_CODE_BASE      33000001 /* NE=33000001 is plant 0 */
#define HW_INV_BASE       34000001
#define HW_BAT_BASE       35000001
#define HW_MAX_PLANTS     999999 /* the three dn ranges must not overlap */

/* The APIs, in route order; each has its own per-minute quota. */
enum hw_api {
    HW_LOGIN,
    HW_LOGOUT,
    HW_PLANTS,
    HW_DEVICES,
    HW_KPI,
    HW_DISPATCH,
    HW_STATUS,
    HW_DOD,
    HW_ONOFF,
    HW_NAPI
};

/* The error codes used (section 7 of the document). */
enum {
    HW_OK = 0,
    HW_E_NOT_LOGGED_IN = 305,
    HW_E_QUOTA = 407,
    HW_E_NO_USER = 20001,
    HW_E_SERVER = 20004,
    HW_E_NO_PLANT = 20007,
    HW_E_NO_PLANTS = 20010,
    HW_E_NO_DEVICES = 20011,
    HW_E_DEVTYPE = 20013,
    HW_E_PLANTS_100 = 20015,
    HW_E_DEVICES_100 = 20017,
    HW_E_SWITCH_TYPE = 20019,
    HW_E_DOD = 20039,
    HW_E_DISPATCH_PARAM = 20040,
    HW_E_CONTROL_TYPE = 20041,
    HW_E_TARGET_SOC = 20042,
    HW_E_DURATION = 20043,
    HW_E_REQUEST_ID = 20044,
    HW_E_PLANT_AUTH = 20045,
    HW_E_DEVICE_AUTH = 20046,
    HW_E_POWER = 20047,
    HW_E_DUP_REQUEST = 20048,
    HW_E_NO_TASK = 20050,
    HW_E_SOC_UNSUPPORTED = 20053,
    HW_E_PASSWORD = 20400,
    HW_E_PAGE_NO = 30004,
    HW_E_PAGE_SIZE = 30005,
    HW_E_PAGE_SIZE_RANGE = 30006,
    HW_E_PAGE_NO_RANGE = 30021,
};

/* The plant as plantRealtimeKpi reports it: taken at each 5-minute boundary. */
typedef struct hw_sample {
    int64_t at_ms;
    sim_power pw;                      /* W, contract signs */
    double soc;                        /* %, NAN without a battery */
    double dod;                        /* %, NAN without a battery */
    double day_wh, month_wh, total_wh; /* PV yield */
} hw_sample;

typedef struct hw_plant {
    emu_site site;
    char code[16], name[24];
    char inv_dn[16], inv_sn[16], bat_dn[16], bat_sn[16];
    int battery;     /* has a battery (an ESS) */
    int soc_control; /* supports SoC control (controlType 1) */
    int dod;         /* the DoD in force: charging cutoff SoC - end-of-discharge SoC */
    double lat, lon;
    int64_t grid_ms;                     /* grid connection date */
    double total_base_wh, month_base_wh; /* yield before the emulation started */
    double day_start_pv, month_start_pv; /* the PV counter at the local day/month start */
    hw_sample sample;
    long run_task; /* index of the task running on this plant, -1 for none */
    size_t run_sub;
} hw_plant;

/* One plant's part of a task. */
typedef struct hw_sub {
    uint32_t plant;
    int result; /* dispatchResult: 0 delivered, 1 failed (no battery) */
    char remote_id[24];
    int state;      /* in fact: 1 running, 0 complete, 2 timed out */
    int replaced;   /* ended by a later task or a stop on the plant */
    int64_t end_ms; /* when it stopped running */
    double wh;      /* energy moved, final once ended */
    double rep_wh;  /* energy at the latest 3-minute refresh while it ran */
} hw_sub;

typedef struct hw_task {
    char request_id[24];
    int dispatch_switch; /* 0 stop, 1 charge, 2 discharge */
    int control_type;    /* 1 SoC, 2 duration, 0 none (stop) */
    double target_soc;
    int dispatch_time; /* minutes */
    int has_power;
    long power_w; /* as sent: > 0 charge, < 0 discharge */
    int64_t start_ms;
    hw_sub *subs; /* owned */
    size_t n_subs;
} hw_task;

typedef struct hw_session {
    char token[104];
    int64_t last_ms;
} hw_session;

typedef struct hw {
    sim_phys_world world;
    uint64_t seed;
    char *user, *password; /* owned copies */
    int utc_offset_min;    /* for times in answers and the local day */
    hw_plant *plants;      /* owned */
    size_t n_plants;
    hw_task *tasks; /* owned */
    size_t n_tasks, cap_tasks;
    hw_session *sessions; /* owned */
    size_t n_sessions, cap_sessions;
    emu_quota quota[HW_NAPI];
    uint64_t next_remote;
} hw;

/* ---- emu_huawei.c ---------------------------------------------------------------------- */

/* Answer success with `data` (taken; NULL gives "data": null). */
void hw_ok(emu_resp *r, struct cJSON *data);
/* Answer an error envelope with failCode code, and the document's text for it or msg. */
void hw_error(emu_resp *r, int code);
void hw_error_msg(emu_resp *r, int code, const char *msg);
/* A member as a number (a JSON number or a numeric string): 1 and *out, 0 when absent or null
 * (or ""), -1 when it is something else. hw_int also wants an integer. */
int hw_number(const struct cJSON *o, const char *key, double *out);
int hw_int(const struct cJSON *o, const char *key, long long *out);
/* The session check and quota of a data API: NULL (answer filled) when the request is not
 * logged in (305) or over its quota (407). The session is h's, valid for the call. */
const hw_session *hw_begin(hw *h, const emu_req *req, emu_resp *r, enum hw_api api);
/* The request body as a JSON object, or NULL with a 400 answer. Caller frees (cJSON_Delete). */
struct cJSON *hw_body(const emu_req *req, emu_resp *r);
/* ISO-8601 with the plants' offset: "2020-02-06T00:00:10+08:00". buf >= 32. */
void hw_iso(const hw *h, int64_t ms, char *buf, size_t len);
/* A kW (or kWh) value rounded to 3 decimals, a percentage to 1; NAN gives null. New node,
 * owned by the caller (or the object it is added to). */
struct cJSON *hw_num(double v, int decimals);

/* ---- emu_huawei_plants.c --------------------------------------------------------------- */

/* Build the plants (deterministic from the seed), simulated from the local midnight before
 * start_ms. */
void hw_plants_build(hw *h, const emu_opts *o, size_t no_soc_every);
/* Simulate plant i up to now: samples, day counters and the refreshes of its task. */
void hw_plant_advance(hw *h, uint32_t i, int64_t now);
/* Plant index by code, device by dn (*battery: 1 for a battery dn), or -1. */
long hw_find_plant(const hw *h, const char *code);
long hw_find_dn(const hw *h, const char *dn, int *battery);
/* Split a comma-separated id list into *out (copies, at most max + 1 items so callers can tell
 * "too many"; free with hw_free_ids); returns the count, -1 (and *out NULL) when the member is
 * absent, empty or not a string. */
long hw_split_ids(const struct cJSON *body, const char *key, char ***out, size_t max);
void hw_free_ids(char **ids, long n);
/* The JSON of plant i for /_emu/state (after hw_plant_advance); the caller owns it. */
struct cJSON *hw_plant_state(hw *h, uint32_t i, int64_t now);

void hw_plants(void *v, const emu_req *req, emu_resp *r);
void hw_devices(void *v, const emu_req *req, emu_resp *r);
void hw_kpi(void *v, const emu_req *req, emu_resp *r);
void hw_dod(void *v, const emu_req *req, emu_resp *r);
void hw_onoff(void *v, const emu_req *req, emu_resp *r);

/* ---- emu_huawei_tasks.c ---------------------------------------------------------------- */

/* The running sub of a plant, or NULL. */
hw_sub *hw_running(hw *h, const hw_plant *p);
/* A running sub stops at at_ms: state 0 (complete) or 2 (timeout), energy as it stands. */
void hw_sub_end(hw *h, hw_plant *p, int state, int64_t at_ms);
/* The physics ended the plant's forced mode at at_ms: complete or timed out. */
void hw_sub_ended_by_physics(hw *h, hw_plant *p, int64_t at_ms);
/* The next 3-minute refresh after t of the task running on p (INT64_MAX for none). */
int64_t hw_next_refresh(const hw *h, const hw_plant *p, int64_t t);
/* The JSON of a task for /_emu/state (advances the plants it still runs on); the caller owns
 * it. */
struct cJSON *hw_task_state(hw *h, const hw_task *t, int64_t now);
void hw_tasks_free(hw *h);

void hw_dispatch(void *v, const emu_req *req, emu_resp *r);
void hw_status(void *v, const emu_req *req, emu_resp *r);

#endif
