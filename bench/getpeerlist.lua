-- wrk script for the registry benchmark (bench/registry.ts): every request is
-- getPeerList(n, node_ip) POSTed to /RPC2, as Python's xmlrpc.client writes
-- it. Optional script arguments: wrk ... -s getpeerlist.lua URL -- N NODE_IP
-- (defaults 50 and 2001:db8:42::1, an address inside the bench network).
--
-- wrk itself counts non-2xx answers ("Non-2xx or 3xx responses") and socket
-- errors; this script counts 200 answers that are not a <params> response
-- (an XML-RPC fault) and prints "checked: N" and "faults: N" at the end.

wrk.method = "POST"
wrk.path = "/RPC2"
wrk.headers["Content-Type"] = "text/xml"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local n = args[1] or "50"
  local ip = args[2] or "2001:db8:42::1"
  wrk.body = "<?xml version='1.0'?>\n<methodCall>\n<methodName>getPeerList</methodName>\n<params>\n" ..
    "<param>\n<value><int>" .. n .. "</int></value>\n</param>\n" ..
    "<param>\n<value><string>" .. ip .. "</string></value>\n</param>\n</params>\n</methodCall>\n"
  checked = 0
  faults = 0
end

function response(status, headers, body)
  checked = checked + 1
  if status == 200 and not string.find(body, "<params>", 1, true) then
    faults = faults + 1
  end
end

function done(summary, latency, requests)
  local c, f = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    f = f + t:get("faults")
  end
  io.write(string.format("checked: %d\nfaults: %d\n", c, f))
end
