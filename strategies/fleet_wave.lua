-- fleet_wave.lua: the whole fleet follows one power target, as a VPP does for a grid
-- operator. The target swings between charging and discharging like a slow wave
-- (params.amplitude_w, params.period_s), or is fixed with params.target_w. Each online
-- battery takes a share in proportion to the power it can still give in that direction;
-- batteries with no room left are released to their own mode.
local M = {}

local function target(ctx)
  local p = ctx.params
  if p.target_w then return p.target_w end
  return (p.amplitude_w or 20000) * math.sin(2 * math.pi * ctx.now / (p.period_s or 120))
end

function M.decide(ctx)
  local want = target(ctx)
  local charging = want < 0
  local ready, room_total = {}, 0
  for _, d in ipairs(ctx.devices) do
    if d.online and d.caps.setpoint and d.soc_pct then
      local room = 0
      if charging and d.soc_pct < (d.soc_max_pct or 100) - 1 then
        room = d.max_charge_w or 0
      elseif not charging and d.soc_pct > (d.soc_min_pct or 0) + 1 then
        room = d.max_discharge_w or 0
      end
      if room > 0 then
        ready[#ready + 1] = { id = d.id, room = room }
        room_total = room_total + room
      elseif d.command and d.command.kind == "setpoint" then
        ready[#ready + 1] = { id = d.id, release = true }
      end
    end
  end
  local share = room_total > 0 and math.min(1, math.abs(want) / room_total) or 0
  local sign = charging and -1 or 1
  local cmds = {}
  for _, r in ipairs(ready) do
    if r.release then
      cmds[#cmds + 1] = { device = r.id, release = true }
    else
      -- Whole tens of watts: small wobbles of the target should not resend everything.
      local w = sign * math.floor(r.room * share / 10 + 0.5) * 10
      cmds[#cmds + 1] = { device = r.id, setpoint_w = w, duration_s = 120 }
    end
  end
  ctx.state.target_w = want
  gp.log("info", "fleet target %+.1f kW shared by %d batteries", want / 1000, #cmds)
  return cmds
end

return M
