#!/usr/bin/env python3
"""Control-plane figures of one switchyard daemon run, for bench/run.sh. Prints JSON.

  cp_stats.py cold LOG T0 EXPECTED   times from the daemon's start (T0, epoch seconds, taken
                                     just before exec) to its log lines: "adopted pinned maps"
                                     (BPF objects loaded), "source synced" (everything read or
                                     listed and decoded) and the first "full sync" that left
                                     at least EXPECTED frontends (maps written); plus that
                                     sync's own duration
  cp_stats.py proc PID               peak and current RSS (VmHWM, VmRSS) in MiB and CPU
                                     seconds (utime + stime) of the process
  cp_stats.py mapmem PIN_PATH        memory of the maps pinned directly under PIN_PATH, from
                                     `bpftool map show pinned` (bytes_memlock), by map
"""

import calendar
import json
import os
import re
import subprocess
import sys
import time

LINE = re.compile(r"^[DIWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) (.*)$")


def log_time(m, year):
    mo, d, h, mi, s, us = (int(x) for x in m.groups()[:6])
    return calendar.timegm((year, mo, d, h, mi, s, 0, 0, 0)) + us / 1e6


def cold(log, t0, expected):
    year = time.gmtime(t0).tm_year
    out = {}
    with open(log, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            text = m.group(7)
            t = log_time(m, year)
            if "adopted pinned maps" in text and "loaded_s" not in out:
                out["loaded_s"] = round(t - t0, 4)
            elif text.startswith("source synced") and "source_synced_s" not in out:
                out["source_synced_s"] = round(t - t0, 4)
            elif text.startswith("full sync of"):
                fm = re.search(r"in (\d+) us: .* now (\d+) frontends, (\d+) backends", text)
                if fm and int(fm.group(2)) >= expected:
                    out["cold_s"] = round(t - t0, 4)
                    out["full_sync_s"] = round(int(fm.group(1)) / 1e6, 4)
                    out["frontends"] = int(fm.group(2))
                    out["backends"] = int(fm.group(3))
                    break
    if "cold_s" not in out:
        return None
    return out


def proc(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                out["rss_peak_mib"] = round(int(line.split()[1]) / 1024, 1)
            elif line.startswith("VmRSS:"):
                out["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = round((int(fields[11]) + int(fields[12])) / tck, 2)  # utime, stime
    return out


def mapmem(pin_path):
    maps, total = {}, 0
    for name in sorted(os.listdir(pin_path)):
        p = os.path.join(pin_path, name)
        if not os.path.isfile(p):
            continue
        r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", p],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            continue  # a pinned program or link, not a map
        info = json.loads(r.stdout)
        b = int(info.get("bytes_memlock", 0))
        maps[name] = {"type": info.get("type"), "max_entries": info.get("max_entries"),
                      "memlock_mib": round(b / 2**20, 2)}
        total += b
    return {"bpf_map_memlock_mib": round(total / 2**20, 1), "bpf_maps": maps}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "cold" and len(sys.argv) == 5:
        r = cold(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
        if r is None:
            sys.exit("cp_stats: no full sync with %s frontends in %s" % (sys.argv[4], sys.argv[2]))
    elif cmd == "proc":
        r = proc(int(sys.argv[2]))
    elif cmd == "mapmem":
        r = mapmem(sys.argv[2])
    else:
        sys.exit(__doc__)
    print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    main()
