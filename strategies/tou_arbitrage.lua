-- tou_arbitrage.lua: buy energy when it is cheap, use it (or sell it) when it is dear.
-- Every tick each battery gets a cost-optimal plan (gp.plan) over the tariff slots of the
-- next params.horizon_h hours and holds the plan's setpoint for the current slot; the plan
-- keeps SoC within the device's bounds. It plans with a forecast of the device's own PV
-- and load: what the device read at the same half-hour of an earlier day (its current
-- reading until it has seen one). On the first tick it logs what the plans expect, and
-- ctx.state.plan_cost / ctx.state.plan_baseline_cost keep the latest fleet totals.
-- params:
--   horizon_h       planning horizon in hours (default 24)
--   efficiency      one-way battery efficiency for the plan (default 0.95)
--   soc_step_pct    planning resolution of SoC (default 1)
--   terminal_price  value of energy left at the horizon, currency/kWh (default 0)
--   export          false: plan as if exports earned nothing (default true)
local M = {}
local function half_hour(t) return math.floor(t % 86400 / 1800) end

function M.decide(ctx)
  local p, st, now, cmds = ctx.params, ctx.state, ctx.now, {}
  local to, b = now + (p.horizon_h or 24) * 3600, half_hour(ctx.now)
  local slots = ctx.tariff.slots(now, to)
  st.seen, st.plan_cost, st.plan_baseline_cost = st.seen or {}, 0, 0
  for _, d in ipairs(ctx.devices) do
    if #slots > 0 and d.online and d.caps.setpoint and d.soc_pct and (d.capacity_wh or 0) > 0 then
      local seen = st.seen[d.id] or {}          -- [2h+1] = pv_w, [2h+2] = load_w at half-hour h
      st.seen[d.id], seen[2 * b + 1], seen[2 * b + 2] = seen, d.pv_w or 0, d.load_w or 0
      local o = { efficiency = p.efficiency, soc_step_pct = p.soc_step_pct, pv_w = {}, load_w = {},
                  terminal_price = p.terminal_price, export = p.export }
      for i, s in ipairs(slots) do
        local h = half_hour(s.start)
        o.pv_w[i], o.load_w[i] = seen[2 * h + 1] or seen[2 * b + 1], seen[2 * h + 2] or seen[2 * b + 2]
      end
            local plan = gp.plan(d, ctx.tariff, now, to, o) -- nil when the device lacks a limit
      if plan then
        st.plan_cost, st.plan_baseline_cost = st.plan_cost + plan.cost, st.plan_baseline_cost + plan.baseline_cost
        cmds[#cmds + 1] = { device = d.id, setpoint_w = plan.setpoints[1], duration_s = 2 * ctx.tick_s }
      end
    end
  end
  if not st.logged then
    st.logged = true
    gp.log("info", "plan expects cost %.4f vs idle %.4f over %d slots", st.plan_cost, st.plan_baseline_cost, #slots)
  end
  return cmds
end

return M
