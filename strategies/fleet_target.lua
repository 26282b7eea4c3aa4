-- fleet_target.lua: the fleet follows a power schedule, as a VPP does for a grid operator.
-- params.schedule names a CSV file `start,stop,target_w` (ISO-8601 UTC times; W, +
-- discharge, - charge), read once by gp.schedule (a relative path is resolved against the
-- strategy's folder). gp.allocate shares each target across the online batteries by their
-- headroom; outside the schedule's blocks, and in blocks of 0 W, the batteries are released
-- to their own mode. Every tick under a non-zero target reports the tracking error of the
-- step just past, what the fleet did (ctx.site.battery_w) minus what was asked, as the
-- metric tracking_error_w (simulate's report.json sums it up under metrics).
-- params:
--   schedule    path of the CSV file (required)
--   scale       multiplies every target (default 1)
--   duration_s  how long each setpoint holds if no newer one comes (default 3 ticks)
local M = {}
local schedule

function M.init(ctx)
  schedule = gp.schedule(assert(ctx.params.schedule, "params.schedule is required"))
end

function M.decide(ctx)
  local p, st = ctx.params, ctx.state
    if (st.target_w or 0) ~= 0 and ctx.site.battery_w then
    gp.metric("tracking_error_w", ctx.site.battery_w - st.target_w)
  end
  local want = (schedule:at(ctx.now) or 0) * (p.scale or 1)
  local cmds, got = gp.allocate(ctx.devices, want, { duration_s = p.duration_s or 3 * ctx.tick_s })
  if math.abs(got - want) > 1 then
    gp.log("info", "target %+.1f kW: the fleet can take only %+.1f kW", want / 1000, got / 1000)
  end
    st.target_w = want
  return cmds
end

return M
