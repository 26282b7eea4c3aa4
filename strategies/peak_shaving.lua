-- peak_shaving.lua: keep the site's grid import under params.import_cap_w whenever the
-- fleet can. When the site would import more than the cap, the batteries discharge by the
-- excess; once the import is well under the cap (by params.recharge_margin_w) they
-- recharge, but only as hard as keeps the import at cap - margin, so recharging never makes
-- a new peak. In between they are released. gp.allocate shares the power by each battery's
-- headroom. A rising net load is extrapolated half a tick ahead from the last two ticks
-- (a falling one is not: the fleet would let go too early), and it aims params.headroom_w
-- under the cap, so a rising load is met before the import goes over.
-- params:
--   import_cap_w       the cap, W (required)
--   headroom_w         aim this far under the cap (default 1 % of the cap)
--   recharge_margin_w  recharge only below cap - margin (default 10 % of the cap)
--   recharge_price     recharge only when the import price is at most this (default: any)
--   duration_s         how long each setpoint holds if no newer one comes (default 3 ticks)
local M = {}

function M.decide(ctx)
  local p, s, st = ctx.params, ctx.site, ctx.state
  local cap = assert(p.import_cap_w, "params.import_cap_w is required")
  if not (s.grid_w and s.battery_w) then return {} end
  local net = s.grid_w + s.battery_w            -- the import with every battery idle
    local ahead = net + 0.5 * math.max(0, net - (st.net or net)) -- a rise only: never cut short
  st.net = net
  local aim, low = cap - (p.headroom_w or 0.01 * cap), cap - (p.recharge_margin_w or 0.1 * cap)
  local price = ctx.tariff.import_price(ctx.now)
  local want = 0                                -- fleet W: + discharge, - charge
  if ahead > aim then
    want = ahead - aim
  elseif ahead < low and (not p.recharge_price or (price and price <= p.recharge_price)) then
    want = ahead - low
  end
  local cmds, got = gp.allocate(ctx.devices, want, { duration_s = p.duration_s or 3 * ctx.tick_s })
  if want > 0 and got < want - 50 then
    gp.log("debug", "import cap %.0f W: the fleet covers %.0f of %.0f W", cap, got, want)
  end
  st.want_w, st.allocated_w = want, got
  return cmds
end

return M
