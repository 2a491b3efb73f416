-- wrk script for the "direct, spread" reference: thread i connects straight to backend
-- pod i mod K (SY_BACKENDS="ip1 ip2 ..."), so the client reaches all K pods the way a
-- service spreads them, with no translation at all. Run with as many threads as pods.
local addrs = {}
for a in string.gmatch(os.getenv("SY_BACKENDS") or "", "%S+") do
  table.insert(addrs, a)
end
local n = 0
function setup(thread)
  local ip = addrs[(n % #addrs) + 1]
  thread.addr = wrk.lookup(ip, os.getenv("SY_PORT") or "80")[1]
  n = n + 1
end
