/*
 * Huawei failCodes and their meaning: every code of the seed document's section 7 "Error Code
 * List", plus 20052 and 20053, which only appear in the per-interface lists of 5.3.9 and
 * 5.3.6. Texts are the document's, verbatim (fixtures/seed_error_codes.md holds the source the
 * test compares them with); a parenthesis after one adds what the document leaves out.
 */
#include <stddef.h>

#include "huawei.h"

static const struct {
    int code;
    const char *text;
} fail_codes[] = {
    {305, "You are not in the login state. You need to log in again."},
    {401, "You do not have the related data interface permission."},
    {407, "The interface access frequency is too high."},
    {20001, "The third-party system ID does not exist."},
    {20002, "The third-party system is forbidden."},
    {20003, "The third-party system has expired."},
    {20004, "The server is abnormal."},
    {20005, "The device ID cannot be empty."},
    {20006, "Some devices do not match the device type."},
    {20007, "The system does not have the desired power plant resources."},
    {20008, "The system does not have the desired device resources."},
    {20009, "Queried KPIs are not configured in the system."},
    {20010, "The plant list cannot be empty."},
    {20011, "The device list cannot be empty."},
    {20012, "The query time cannot be empty."},
    {20013,
     "The device type is incorrect. The interface does not support operations on some devices."},
    {20014, "A maximum of 100 plants can be queried at a time."},
    {20015, "A maximum of 100 plants can be queried at a time."},
    {20016, "A maximum of 100 devices can be queried at a time."},
    {20017, "A maximum of 100 devices can be queried at a time."},
    {20018, "A maximum of 10 devices can be operated at a time."},
    {20019,
     "The switch type is incorrect. 1 and 2 indicate switch-on and switch-off respectively."},
    {20020, "The upgrade package corresponding to the device version cannot be found."},
    {20021, "The upgrade file does not exist."},
    {20022, "The upgrade records of the devices in the system are not found."},
    {20023, "The query start time cannot be later than the query end time."},
    {20024, "The language cannot be empty."},
    {20025, "The language parameter value is incorrect."},
    {20026, "Only data of the latest 365 days can be queried."},
    {20027, "The query time period cannot span more than 31 days."},
    {20028, "The system does not have related user information."},
    {20030, "I-V diagnosis task creation failure cause: The irradiation may not meet the minimum "
            "diagnosis requirement."},
    {20031, "I-V diagnosis task creation failure cause: (no cause given)"},
    {20032, "I-V diagnosis task creation failure cause: (no cause given)"},
    {20033, "I-V diagnosis task creation failure cause: (no cause given)"},
    {20034, "The task does not exist."},
    {20035, "MPPT devices do not support backfeed current."},
    {20036, "The backfeed current duration of the MPPT device exceeds the maximum limit."},
    {20037,
     "The backfeed current of the MPPT device is out of range. The allowed value is (0, 15]"},
    {20038, "In the input parameters, the authorization code list is empty (null), or the number "
            "of authorization codes is out of range. The allowed range is [0, 1000]."},
    {20039,
     "In the input parameters, the DOD value is out of range. The allowed range is [0, 100]."},
    {20040, "The charge/discharge switch parameter value is invalid."},
    {20041, "The control type cannot be empty for forced charge and discharge."},
    {20042, "The target SOC for charge/discharge is empty or invalid."},
    {20043, "The charge/discharge duration is empty or invalid."},
    {20044, "The unique ID of a charge/discharge task cannot be empty."},
    {20045, "Unauthorized PV plants exist in the input parameters."},
    {20046, "Unauthorized PV plants exist in the input parameters. (5.3.8 and 5.3.9: unauthorized "
            "devices exist in the input parameters)"},
    {20047, "The forced charge/discharge power in the input parameters is invalid."},
    {20048, "Duplicate charging and discharging task ID"},
    {20049, "Failed to deliver the charging and discharging task."},
    {20050, "The charging and discharging task query parameter does not exist."},
    {20051, "Failed to set the battery DOD."},
    {20052, "Failed to start or shut down the inverter."},
    {20053, "SOC control is not supported and an update is needed."},
    {20400, "The username or password of the third-party system is incorrect."},
    {20403, "The login of the third-party system user is restricted."},
    {30001, "The device ESN list cannot be empty."},
    {30002, "The ESNs queried at a time cannot exceed 50."},
    {30003, "The account cannot be empty in the input parameter."},
    {30004, "The value of pageNo cannot be empty."},
    {30005, "The value of pageSize cannot be empty."},
    {30006, "The value of pageSize is out of range. The allowed range is {10, 20, 30, 50, 100}."},
    {30007, "The values of startTime and endTime must be both provided or empty."},
    {30008, "Failed to invoke the internal interface."},
    {30009, "The value of taskName is empty."},
    {30010, "The value of nds is empty."},
    {30011, "The value of cleanStatus is empty or invalid."},
    {30012, "The value of environmentalParameters is empty or invalid."},
    {30013, "The value of modulePlaneIrradiance or moduleBackSurfaceTemperature is empty when "
            "environmentalParameters is set to 1."},
    {30014, "The value of scanPointNum must be set to 128."},
    {30015, "The value of taskId is empty."},
    {30016, "The value of dn is empty."},
    {30017, "The value of dns is invalid. The number of devices exceeds 100 or devices on which "
            "the user does not have permission exist."},
    {30018, "The value of taskName is invalid (for example, null field)."},
    {30019, "The value of moduleBackSurfaceTemperature is out of range. The allowed range is [0.0, "
            "100.0]."},
    {30020,
     "The value of modulePlaneIrradiance is out of range. The allowed range is [400.0, 1500.0]."},
    {30021, "The value of pageNo is smaller than 0."},
    {30022, "The value of timestamp is empty."},
    {30023, "The command type is invalid (for example, null)."},
    {30024, "The power supply duration is invalid."},
    {30025, "The MPPT list is empty."},
    {30026, "The value of mppts is empty."},
    {30027, "The number of MPPTs connected to a single inverter exceeds the maximum limit (3), or "
            "the total number of MPPTs in a single task exceeds the maximum limit (32)."},
    {30028, "The backfeed current input value is invalid."},
    {30029, "Authentication failed."},
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
