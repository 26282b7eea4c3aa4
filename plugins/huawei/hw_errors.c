/*
 * Huawei failCodes and their meaning, from the seed document's section 7 "Error Code List"
 * (plus 20052 and 20053, which only appear in the per-interface lists of 5.3.9 and 5.3.6).
 * Texts are the document's, shortened where it repeats itself; 20031-20033 have no cause in
 * the document.
 */
#include <stddef.h>

#include "huawei.h"

static const struct {
    int code;
    const char *text;
} fail_codes[] = {
    {305, "not logged in (session expired); log in again"},
    {401, "no permission for this data interface"},
    {407, "interface access frequency too high (quota exceeded)"},
    {20001, "the third-party system ID does not exist"},
    {20002, "the third-party system is forbidden"},
    {20003, "the third-party system has expired"},
    {20004, "the server is abnormal"},
    {20005, "the device ID cannot be empty"},
    {20006, "some devices do not match the device type"},
    {20007, "the system does not have the desired power plant resources"},
    {20008, "the system does not have the desired device resources"},
    {20009, "queried KPIs are not configured in the system"},
    {20010, "the plant list cannot be empty"},
    {20011, "the device list cannot be empty"},
    {20012, "the query time cannot be empty"},
    {20013, "the device type is incorrect; the interface does not support operations on some "
            "devices"},
    {20014, "a maximum of 100 plants can be queried at a time"},
    {20015, "a maximum of 100 plants can be queried at a time"},
    {20016, "a maximum of 100 devices can be queried at a time"},
    {20017, "a maximum of 100 devices can be queried at a time"},
    {20018, "a maximum of 10 devices can be operated at a time"},
    {20019, "the switch type is incorrect (1 switch-on, 2 switch-off)"},
    {20020, "the upgrade package for the device version cannot be found"},
    {20021, "the upgrade file does not exist"},
    {20022, "the upgrade records of the devices are not found"},
    {20023, "the query start time cannot be later than the query end time"},
    {20024, "the language cannot be empty"},
    {20025, "the language parameter value is incorrect"},
    {20026, "only data of the latest 365 days can be queried"},
    {20027, "the query time period cannot span more than 31 days"},
    {20028, "the system does not have related user information"},
    {20030, "I-V diagnosis task creation failed: the irradiation may not meet the minimum "
            "diagnosis requirement"},
    {20031, "I-V diagnosis task creation failed (cause 20031, not described)"},
    {20032, "I-V diagnosis task creation failed (cause 20032, not described)"},
    {20033, "I-V diagnosis task creation failed (cause 20033, not described)"},
    {20034, "the task does not exist"},
    {20035, "MPPT devices do not support backfeed current"},
    {20036, "the backfeed current duration of the MPPT device exceeds the maximum limit"},
    {20037, "the backfeed current of the MPPT device is out of range (0, 15]"},
    {20038, "the authorization code list is empty or out of range [0, 1000]"},
    {20039, "the DoD value is empty or out of range [0, 100]"},
    {20040, "the charge/discharge switch parameter value is invalid"},
    {20041, "the control type cannot be empty for forced charge and discharge"},
    {20042, "the target SOC for charge/discharge is empty or invalid"},
    {20043, "the charge/discharge duration is empty or invalid"},
    {20044, "the unique ID of a charge/discharge task cannot be empty"},
    {20045, "unauthorized PV plants exist in the input parameters"},
    {20046, "unauthorized PV plants or devices exist in the input parameters"},
    {20047, "the forced charge/discharge power in the input parameters is invalid"},
    {20048, "duplicate charge/discharge task ID"},
    {20049, "failed to deliver the charge/discharge task"},
    {20050, "the charge/discharge task query parameter does not exist (unknown requestID)"},
    {20051, "failed to set the battery DoD"},
    {20052, "failed to start or shut down the inverter"},
    {20053, "SOC control is not supported; the device software needs an update"},
    {20400, "the username or password of the third-party system is incorrect"},
    {20403, "the login of the third-party system user is restricted"},
    {30001, "the device ESN list cannot be empty"},
    {30002, "at most 50 ESNs can be queried at a time"},
    {30003, "the account cannot be empty in the input parameter"},
    {30004, "the value of pageNo cannot be empty"},
    {30005, "the value of pageSize cannot be empty"},
    {30006, "the value of pageSize is out of range {10, 20, 30, 50, 100}"},
    {30007, "startTime and endTime must be both provided or both empty"},
    {30008, "failed to invoke the internal interface"},
    {30009, "the value of taskName is empty"},
    {30010, "the value of nds is empty"},
    {30011, "the value of cleanStatus is empty or invalid"},
    {30012, "the value of environmentalParameters is empty or invalid"},
    {30013, "modulePlaneIrradiance or moduleBackSurfaceTemperature is empty while "
            "environmentalParameters is 1"},
    {30014, "the value of scanPointNum must be 128"},
    {30015, "the value of taskId is empty"},
    {30016, "the value of dn is empty"},
    {30017, "the value of dns is invalid: more than 100 devices, or devices without "
            "permission"},
    {30018, "the value of taskName is invalid"},
    {30019, "moduleBackSurfaceTemperature is out of range [0.0, 100.0]"},
    {30020, "modulePlaneIrradiance is out of range [400.0, 1500.0]"},
    {30021, "the value of pageNo is smaller than 0"},
    {30022, "the value of timestamp is empty"},
    {30023, "the command type is invalid"},
    {30024, "the power supply duration is invalid"},
    {30025, "the MPPT list is empty"},
    {30026, "the value of mppts is empty"},
    {30027, "too many MPPTs (more than 3 per inverter or 32 per task)"},
    {30028, "the backfeed current input value is invalid"},
};

const char *hw_fail_text(int code)
{
    size_t lo = 0, hi = sizeof(fail_codes) / sizeof(fail_codes[0]);
    /* The table is sorted by code: keep it so. */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fail_codes[mid].code == code) return fail_codes[mid].text;
        if (fail_codes[mid].code < code)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
