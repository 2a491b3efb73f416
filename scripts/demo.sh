#!/usr/bin/env bash
# The demo: a cluster in a box. Installs what is missing, builds, then
#   - makes a node namespace, three backend pod namespaces (each an HTTP server answering
#     with its own name) and a client pod namespace, all joined to the node by veth pairs;
#   - starts switchyard in the node namespace with `source: files`, fed the Service and
#     EndpointSlice manifests of manifests/demo/ (ClusterIP 198.19.0.10:80);
#   - sends requests from the client to the ClusterIP and shows how they spread;
#   - scales the EndpointSlice down to two pods and shows the change;
#   - removes everything it made.
# Run as root on Debian 12:  bash scripts/demo.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SY_BUILD_DIR=${SY_BUILD_DIR:-$root/build}
REQUESTS=${REQUESTS:-60}

bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$SY_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SY_BUILD_DIR" -j"$(nproc)" --target switchyard sy-testpeer

# The namespaces, cgroup, pins and processes come from the e2e harness, whose exit trap
# removes them whatever happens.
# shellcheck source=tests/e2e/lib.sh
source "$root/tests/e2e/lib.sh"
sy_e2e_init demo

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Prints how REQUESTS new TCP connections to the ClusterIP spread over the pods.
spread() {
  local out
  out=$(sy_probe "$CLIENT_NS" --proto tcp --target 198.19.0.10:80 --count "$REQUESTS") || true
  python3 - "$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
print(f"  {d['sent']} requests to http://198.19.0.10:80, {d['ok']} answered, {d['failed']} failed")
for pod, n in sorted(d["backends"].items()):
    print(f"    {pod}: {n:3d}  {'#' * n}")
PY
}

banner "cluster in a box: node, client pod, 3 backend pods (network namespaces)"
sy_topology_up 3
sy_start_backends 8080 0

banner "switchyard starts with source: files (manifests/demo)"
mkdir -p "$WORK/manifests"
cp "$root/manifests/demo/service.yaml" "$WORK/manifests/service.yaml"
cp "$root/manifests/demo/endpointslice-3.yaml" "$WORK/manifests/endpointslice.yaml"
sy_write_config "$WORK/switchyard.yaml" true "$WORK/manifests"
sed -n '1,40p' "$WORK/switchyard.yaml" | sed 's/^/  /'
sy_daemon_start "$WORK/switchyard.yaml"
sy_wait_for "the daemon to program 3 backends" 20 \
  sh -c "'$SY_BIN' status --pin-path '$PIN' -o json 2>/dev/null | grep -q '\"backendCount\":3'"

banner "switchyard status (the pinned BPF maps)"
"$SY_BIN" status --pin-path "$PIN" | sed -n '1,4p'

banner "the client calls the ClusterIP: socket LB sends each connection to a pod"
spread

banner "scale down: the EndpointSlice now lists pod1 and pod2 only"
cp "$root/manifests/demo/endpointslice-2.yaml" "$WORK/manifests/.endpointslice.tmp"
mv "$WORK/manifests/.endpointslice.tmp" "$WORK/manifests/endpointslice.yaml"
sy_wait_for "the daemon to drop pod3" 20 \
  sh -c "'$SY_BIN' status --pin-path '$PIN' -o json 2>/dev/null | grep -q '\"backendCount\":2'"
"$SY_BIN" status --pin-path "$PIN" | sed -n '1,3p'
spread

banner "done: removing the namespaces, the cgroup, the pins and the BPF programs"
