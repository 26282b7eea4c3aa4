-- fleet_target.lua: the fleet follows a power schedule, as a VPP does for a grid operator.
-- params.schedule names a CSV file `start,stop,target_w` (ISO-8601 UTC times; W, +
-- discharge, - charge), read once by gp.schedule (a relative path is resolved against the
-- strategy's folder). gp.allocate shares each target across the online batteries by their
-- headroom; outside the schedule's blocks, and in blocks of 0 W, the batteries are released
-- to their own mode. Every tick logs the tracking error of the step just past: what the
-- fleet did (ctx.site.battery_w) against what was asked; ctx.state.abs_error_ws and
-- ctx.state.asked_ws sum |error| and |target| over time.
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
  if st.target_w and ctx.site.battery_w then
    local err, dt = ctx.site.battery_w - st.target_w, ctx.now - st.at
    st.abs_error_ws = (st.abs_error_ws or 0) + math.abs(err) * dt
    st.asked_ws = (st.asked_ws or 0) + math.abs(st.target_w) * dt
    gp.log("info", "fleet did %+.1f kW for a target of %+.1f kW (error %+.1f kW)",
      ctx.site.battery_w / 1000, st.target_w / 1000, err / 1000)
  end
  local want = (schedule:at(ctx.now) or 0) * (p.scale or 1)
  local cmds, got = gp.allocate(ctx.devices, want, { duration_s = p.duration_s or 3 * ctx.tick_s })
  if math.abs(got - want) > 1 then
    gp.log("info", "target %+.1f kW: the fleet can take only %+.1f kW", want / 1000, got / 1000)
  end
  st.target_w, st.at = want, ctx.now
  return cmds
end

return M
