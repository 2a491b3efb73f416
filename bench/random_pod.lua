-- wrk script for the "direct to a random pod" reference: every new connection goes
-- straight to one of the K backend pods (SY_BACKENDS="ip1 ip2 ..."), chosen at random as a
-- service's load balancing does, with no translation at all. wrk connects to thread.addr;
-- request() runs as each connection sends its request, so setting the address there picks
-- the pod of the thread's next connection (with Connection: close, one per request).
local addrs = {}

function init(args)
  for a in string.gmatch(os.getenv("SY_BACKENDS") or "", "%S+") do
    table.insert(addrs, wrk.lookup(a, os.getenv("SY_PORT") or "80")[1])
  end
  -- Each thread has its own Lua state: seed each differently (a table's address).
  local id = tonumber(string.match(tostring({}), "0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + id % 100000)
end

function request()
  wrk.thread.addr = addrs[math.random(#addrs)]
  return wrk.format()
end
