-- self_consumption.lua: each battery keeps its own house off the grid. PV surplus
-- (pv_w above load_w) charges it; when the house would import, it discharges to cover the
-- load. Every device uses its own pv_w/load_w readings, within its power limits; it holds
-- 0 W at a SoC bound. Devices that report no PV or load are left alone. Useful where the
-- batteries' own mode is not self-consumption (or is worse at it).
-- params:
--   step_w          setpoints are whole multiples of it, so small wobbles of the load do
--                   not resend commands (default 10)
--   soc_margin_pct  stop charging/discharging this close to a SoC bound (default 0.5)
--   duration_s      how long each setpoint holds if no newer one comes (default 3 ticks)
local M = {}

function M.decide(ctx)
  local p, cmds = ctx.params, {}
  local step, margin = p.step_w or 10, p.soc_margin_pct or 0.5
  for _, d in ipairs(ctx.devices) do
    if d.online and d.caps.setpoint and d.soc_pct and d.pv_w and d.load_w then
      -- + the house's deficit (discharge), - its surplus (charge), within the power limits
      local w = math.floor((d.load_w - d.pv_w) / step + 0.5) * step
      w = math.max(-(d.max_charge_w or 0), math.min(d.max_discharge_w or 0, w))
      if (w > 0 and d.soc_pct <= (d.soc_min_pct or 0) + margin)
          or (w < 0 and d.soc_pct >= (d.soc_max_pct or 100) - margin) then
        w = 0
      end
      cmds[#cmds + 1] = { device = d.id, setpoint_w = w, duration_s = p.duration_s or 3 * ctx.tick_s }
    end
  end
  return cmds
end

return M
