-- negative_price_curtail.lua: never pay to export. While the export price is below
-- params.threshold (0: negative prices), every battery charges at full power until it is
-- full, and every PV inverter without a battery has its output capped to params.pv_cap_w
-- (a setpoint >= 0 on a PV-only device caps its AC output). When the price is back at or
-- above the threshold, the devices this left with a setpoint are released to their own
-- mode. Logs each change between the two states.
-- params:
--   threshold   export price (currency/kWh) below which it acts (default 0)
--   pv_cap_w    PV output cap while it acts, W (default 0)
--   duration_s  how long each setpoint holds if no newer one comes (default 3 ticks)
local M = {}

function M.decide(ctx)
  local p, cmds = ctx.params, {}
  local price = ctx.tariff.export_price(ctx.now)
  local act = price ~= nil and price < (p.threshold or 0)
  local dur = p.duration_s or 3 * ctx.tick_s
  for _, d in ipairs(ctx.devices) do
    if d.online and d.caps.setpoint then
      local battery = (d.capacity_wh or 0) > 0 and d.soc_pct
      if act and battery then
        local full = d.soc_pct >= (d.soc_max_pct or 100) - 0.1
        cmds[#cmds + 1] = { device = d.id, setpoint_w = full and 0 or -(d.max_charge_w or 0), duration_s = dur }
      elseif act then
        cmds[#cmds + 1] = { device = d.id, setpoint_w = p.pv_cap_w or 0, duration_s = dur }
      elseif d.command and d.command.kind == "setpoint" then
        cmds[#cmds + 1] = { device = d.id, release = true }
      end
    end
  end
  if act ~= (ctx.state.acting or false) then
    gp.log("info", "export price %.4f: %s", price or 0, act and "charging, PV capped" or "released")
    ctx.state.acting = act
  end
  return cmds
end

return M
