-- tou_arbitrage.lua: buy energy when it is cheap, use it (or sell it) when it is dear.
-- Each tick every battery gets a cost-optimal plan (gp.plan, SoC kept within its bounds)
-- over the next params.horizon_h hours and holds its setpoint for the current slot. PV and
-- load are forecast from what the device read at the same half-hour of an earlier day (its
-- current reading until then). Metrics: plan_savings (what the plans expect to save against
-- idle batteries over the horizon) and day_plan_savings (the same at each UTC day's first
-- tick: summed, with a 24 h horizon, what the plans promised, to set against the report).
-- params: horizon_h (24), efficiency (one-way, 0.95), soc_step_pct (1), terminal_price
-- (value of energy left at the horizon, currency/kWh, 0), export (false: exports earn nothing)
local M = {}
local function half_hour(t) return math.floor(t % 86400 / 1800) end

function M.decide(ctx)
  local p, st, now, cmds, saved = ctx.params, ctx.state, ctx.now, {}, 0
  local to, b = now + (p.horizon_h or 24) * 3600, half_hour(now)
  local slots = ctx.tariff.slots(now, to)
  st.seen = st.seen or {}
  for _, d in ipairs(ctx.devices) do
    if #slots > 0 and d.online and d.caps.setpoint and d.soc_pct and (d.capacity_wh or 0) > 0 then
      local seen = st.seen[d.id] or {} -- [2h+1] = pv_w, [2h+2] = load_w at half-hour h
      st.seen[d.id], seen[2 * b + 1], seen[2 * b + 2] = seen, d.pv_w or 0, d.load_w or 0
      local o = { efficiency = p.efficiency, soc_step_pct = p.soc_step_pct, pv_w = {}, load_w = {},
                  terminal_price = p.terminal_price, export = p.export }
      for i, s in ipairs(slots) do
        local h = half_hour(s.start)
        o.pv_w[i], o.load_w[i] = seen[2 * h + 1] or seen[2 * b + 1], seen[2 * h + 2] or seen[2 * b + 2]
      end
      local plan = gp.plan(d, ctx.tariff, now, to, o) -- nil when the device lacks a limit
      if plan then
        saved = saved + plan.baseline_cost - plan.cost
        cmds[#cmds + 1] = { device = d.id, setpoint_w = plan.setpoints[1], duration_s = 2 * ctx.tick_s }
      end
    end
  end
  gp.metric("plan_savings", saved)
  if now % 86400 < ctx.tick_s then gp.metric("day_plan_savings", saved) end
  return cmds
end

return M
