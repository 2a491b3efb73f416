#include "cmd/status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <bpf/bpf.h>
#include <net/if.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "bpf/abi.h"
#include "bpf/cleanup.h"
#include "bpf/ct_gc.h"
#include "bpf/map_writer.h"
#include "bpf/migrate.h"
#include "bpf/node_maps.h"
#include "bpf/pinned_maps.h"
#include "bpf/xdp_links.h"
#include "metrics/conntrack_metrics.h"
#include "metrics/datapath_counters.h"

namespace switchyard::cmd {

namespace {

// One tc hook as status shows it: a tc_attach record checked against the device of this
// network namespace, or a configured device that has no record.
struct TcHook {
  std::string device;
  unsigned ifindex = 0;  // 0: no such device here
  std::string direction;
  bool recorded = false;
  std::string state;  // attached | missing-device | renamed (NAME) | no-filter | other filter (...)
};

std::string hookState(const std::string& device, unsigned ifindex, bool ingress, const std::set<uint32_t>& ours) {
  char name[IF_NAMESIZE] = {};
  if (ifindex == 0 || !if_indextoname(ifindex, name)) {
    return "missing-device";
  }
  if (device != name) {
    return std::string("renamed (") + name + ")";
  }
  bpf::TcFilter f = bpf::queryTcFilter(ifindex, ingress, ours);
  switch (f.owner) {
    case bpf::TcFilterOwner::ThisPinPath: return "attached";
    case bpf::TcFilterOwner::None: return "no-filter";
    default: return std::string("other-filter (") + f.progName + ", " + bpf::ownerName(f.owner) + ")";
  }
}

std::vector<TcHook> tcHooks(const bpf::MapFds& fds, const std::vector<std::string>& devices) {
  std::vector<TcHook> out;
  std::set<uint32_t> ours = bpf::mapIdsOf(fds);
  std::set<std::string> recorded;
  struct sy_tc_attach_key key {}, next {};
  struct sy_tc_attach_key* prev = nullptr;
  for (size_t guard = 0; guard < 4 * SY_TC_ATTACH_MAX && bpf_map_get_next_key(fds.tcAttach, prev, &next) == 0;
       ++guard) {
    struct sy_tc_attach_value v {};
    if (bpf_map_lookup_elem(fds.tcAttach, &next, &v) == 0) {
      v.ifname[sizeof(v.ifname) - 1] = '\0';
      bool ingress = next.direction == SY_TC_INGRESS;
      out.push_back({v.ifname, next.ifindex, ingress ? "ingress" : "egress", true,
                     hookState(v.ifname, next.ifindex, ingress, ours)});
      recorded.insert(v.ifname);
    }
    key = next;
    prev = &key;
  }
  for (const std::string& dev : devices) {
    if (recorded.count(dev)) {
      continue;
    }
    unsigned ifindex = if_nametoindex(dev.c_str());
    for (bool ingress : {true, false}) {
      out.push_back({dev, ifindex, ingress ? "ingress" : "egress", false, hookState(dev, ifindex, ingress, ours)});
    }
  }
  std::sort(out.begin(), out.end(), [](const TcHook& a, const TcHook& b) {
    return std::tie(a.device, a.ifindex, a.direction) < std::tie(b.device, b.ifindex, b.direction);
  });
  return out;
}

// -- Maglev (issue 11 item 3) --
// A Maglev frontend's table as status shows it: M, and a digest of its entries as backend
// identities (address, port, protocol), not node-local backend IDs, so two nodes with the
// same table show the same digest.
struct MaglevInfo {
  bool present = false;
  uint32_t tableSize = 0;
  std::string digest;
};
MaglevInfo maglevInfo(const bpf::MapWriter& reader, const lb::DataplaneState& st, uint32_t revNatId) {
  MaglevInfo out;
  std::vector<uint32_t> table;
  if (!reader.readMaglevTable(revNatId, table)) {
    return out;
  }
  out.present = true;
  out.tableSize = static_cast<uint32_t>(table.size());
  size_t h = lb::hashBytes(reinterpret_cast<const uint8_t*>(&out.tableSize), sizeof(out.tableSize));
  for (uint32_t id : table) {
    auto b = st.backends.find(id);
    lb::BackendKey k = b == st.backends.end() ? lb::BackendKey{} : b->second.key;
    h = lb::hashBytes(k.addr.bytes.data(), k.addr.bytes.size(), h);
    uint8_t pp[3] = {static_cast<uint8_t>(k.port >> 8), static_cast<uint8_t>(k.port), k.proto};
    h = lb::hashBytes(pp, sizeof(pp), h);
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  out.digest = buf;
  return out;
}
// -- end Maglev --

}  // namespace

int printStatus(const std::string& pinPath, bool json, const std::vector<std::string>& devices) {
  bpf::PinnedMaps maps;
  std::string error;
  if (!maps.open(pinPath, error)) {
    std::cerr << "switchyard status: " << error << "\n";
    return 1;
  }
  std::vector<TcHook> hooks = tcHooks(maps.fds(), devices);
  bpf::MapWriter reader(maps.fds());
  lb::DataplaneState st = reader.read();
  metrics::DatapathCounters::Totals totals;
  bool haveCounters = metrics::DatapathCounters::read(maps.fds().counters, totals);
  // --- conntrack GC and pressure (issue 11 item 5): each map's fill, by a walk of it ---
  struct Fill {
    std::string name;
    uint64_t entries;
    uint32_t maxEntries;
    double pressure() const { return maxEntries ? static_cast<double>(entries) / maxEntries : 0; }
  };
  std::vector<Fill> fills;
  for (const bpf::MapPin& p : bpf::kMapPins) {
    if (p.writer == bpf::MapWriterKind::Counters || p.writer == bpf::MapWriterKind::Meta) {
      continue;  // arrays: always "full"
    }
    int fd = maps.fds().*p.fd;
    auto shape = bpf::shapeOf(fd);
    fills.push_back({metrics::mapLabel(p.name), bpf::countMapEntries(fd), shape ? shape->maxEntries : 0});
  }
  // --- end conntrack GC ---
  // How external clients reach this frontend's backends on other nodes (loadBalancer.mode,
  // issue 11): "" for ClusterIPs and the internal scope, which never leave the cluster that
  // way. A hybrid frontend of UDP or SCTP is SNATed (no dispatch).
  auto modeOf = [](const lb::ProgrammedFrontend& f) -> std::string {
    if (f.head.kind == lb::FrontendKind::ClusterIP || f.key.scope != lb::Scope::External) return "";
    if (f.head.flags & lb::kFrontendModeHybrid) return "hybrid";
    return (f.head.flags & lb::kFrontendDsr) ? "dsr" : "snat";
  };
  // -- XDP fast path (issue 11 item 4): the devices' XDP links and what external frontends get --
  std::vector<bpf::XdpLinkInfo> xdpLinks = bpf::listXdpLinks(pinPath);
  std::vector<lb::Cidr> denyCidrs = bpf::readDenyCidrs(maps.fds().xdpDeny);
  // "disabled" (no device), "native" or "generic" (every device alike), else "mixed".
  std::string acceleration = "disabled";
  for (const bpf::XdpLinkInfo& l : xdpLinks) {
    if (l.mode != "native" && l.mode != "generic") {
      continue;  // defunct, or detached meanwhile
    }
    acceleration = acceleration == "disabled" || acceleration == l.mode ? l.mode : "mixed";
  }
  // -- end XDP --
  auto dispatchOf = [](const lb::ProgrammedFrontend& f) -> const char* {
    if (!(f.head.flags & lb::kFrontendDsr)) return nullptr;
    return (f.head.flags & lb::kFrontendDsrIpip) ? "ipip" : "opt";
  };

  if (json) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("services");
    w.StartArray();
    for (const lb::ProgrammedFrontend& f : st.frontends) {
      w.StartObject();
      w.Key("address");
      w.String(f.key.addr.str().c_str());
      w.Key("port");
      w.Uint(f.key.port);
      w.Key("protocol");
      w.String(lb::protoName(f.key.proto));
      w.Key("revNatId");
      w.Uint(f.revNatId);
      w.Key("type");
      w.String(lb::kindName(f.head.kind));
      w.Key("scope");
      w.String(lb::scopeName(f.key.scope));
      if (std::string mode = modeOf(f); !mode.empty()) {
        w.Key("mode");
        w.String(mode.c_str());
      }
      if (const char* d = dispatchOf(f)) {
        w.Key("dsrDispatch");
        w.String(d);
      }
      if (!modeOf(f).empty()) {  // XDP fast path: external frontends only
        w.Key("acceleration");
        w.String(acceleration.c_str());
      }
      // -- Maglev (issue 11 item 3) --
      w.Key("algorithm");
      w.String(lb::algorithmName(f.head.flags & lb::kFrontendMaglev ? lb::Algorithm::Maglev : lb::Algorithm::Random));
      if (f.head.flags & lb::kFrontendMaglev) {
        MaglevInfo mi = maglevInfo(reader, st, f.revNatId);
        w.Key("maglev");
        w.StartObject();
        w.Key("tableSize");
        w.Uint(mi.tableSize);  // 0: no table (no backends, or drift)
        w.Key("tableDigest");
        w.String(mi.digest.c_str());
        w.EndObject();
      }
      // -- end Maglev --
      if (f.head.affinityTimeout) {
        w.Key("affinityTimeoutSeconds");
        w.Uint(f.head.affinityTimeout);
      }
      if (f.head.flags & lb::kFrontendDropEmpty) {
        w.Key("noEndpoints");
        w.String("drop");  // a Local policy without local endpoints; otherwise rejected
      }
      if (auto r = st.sourceRanges.find(f.revNatId); r != st.sourceRanges.end() &&
                                                     (f.head.flags & lb::kFrontendSourceRanges)) {
        w.Key("sourceRanges");
        w.StartArray();
        for (const lb::Cidr& c : r->second) {
          w.String(c.str().c_str());
        }
        w.EndArray();
      }
      w.Key("backends");
      w.StartArray();
      for (size_t i = 0; i < f.backendIds.size(); ++i) {
        uint32_t id = f.backendIds[i];
        w.StartObject();
        auto b = st.backends.find(id);
        // The shape whatever the maps hold: a slot naming a backend ID that the
        // backends map lacks keeps address and port, as null.
        w.Key("address");
        if (b != st.backends.end()) {
          w.String(b->second.key.addr.str().c_str());
        } else {
          w.Null();
        }
        w.Key("port");
        if (b != st.backends.end()) {
          w.Uint(b->second.key.port);
        } else {
          w.Null();
        }
        w.Key("state");
        w.String(b == st.backends.end() ? "missing" : (b->second.terminating ? "terminating" : "active"));
        w.Key("local");
        w.Bool(b != st.backends.end() && b->second.local);
        w.Key("id");
        w.Uint(id);
        w.Key("slot");
        w.Uint(static_cast<unsigned>(i + 1));
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("backendCount");
    w.Uint(static_cast<unsigned>(st.backends.size()));
    bpf::NodeMaps nodeMaps(maps.fds());
    w.Key("nodeAddresses");
    w.StartArray();
    for (const auto& [addr, flags] : nodeMaps.nodeAddresses()) {
      w.StartObject();
      w.Key("address");
      w.String(addr.str().c_str());
      w.Key("nodePort");
      w.Bool(flags & SY_NODE_ADDR_F_NODEPORT);
      w.EndObject();
    }
    w.EndArray();
    w.Key("clusterNetworks");
    w.StartArray();
    for (const lb::Cidr& c : nodeMaps.localNets()) {
      w.String(c.str().c_str());
    }
    w.EndArray();
    // -- XDP fast path (issue 11 item 4) --
    w.Key("acceleration");
    w.String(acceleration.c_str());
    w.Key("xdp");
    w.StartArray();
    for (const bpf::XdpLinkInfo& l : xdpLinks) {
      w.StartObject();
      w.Key("device");
      w.String(l.device.c_str());
      w.Key("ifindex");
      w.Uint(l.ifindex);
      w.Key("mode");
      w.String(l.ifindex ? l.mode.c_str() : "defunct");
      w.Key("programId");
      w.Uint(l.progId);
      w.EndObject();
    }
    w.EndArray();
    w.Key("denyCIDRs");
    w.StartArray();
    for (const lb::Cidr& c : denyCidrs) {
      w.String(c.str().c_str());
    }
    w.EndArray();
    // -- end XDP --
    w.Key("tc");
    w.StartArray();
    for (const TcHook& h : hooks) {
      w.StartObject();
      w.Key("device");
      w.String(h.device.c_str());
      w.Key("ifindex");
      if (h.ifindex) {
        w.Uint(h.ifindex);
      } else {
        w.Null();
      }
      w.Key("direction");
      w.String(h.direction.c_str());
      w.Key("recorded");
      w.Bool(h.recorded);
      w.Key("state");
      w.String(h.state.c_str());
      w.EndObject();
    }
    w.EndArray();
    for (const Fill& f : fills) {
      if (f.name != "ct") {
        continue;
      }
      w.Key("conntrack");
      w.StartObject();
      w.Key("entries");
      w.Uint64(f.entries);
      w.Key("maxEntries");
      w.Uint(f.maxEntries);
      w.Key("pressure");
      w.Double(f.pressure());
      w.EndObject();
    }
    w.Key("maps");
    w.StartArray();
    for (const Fill& f : fills) {
      w.StartObject();
      w.Key("name");
      w.String(f.name.c_str());
      w.Key("entries");
      w.Uint64(f.entries);
      w.Key("maxEntries");
      w.Uint(f.maxEntries);
      w.Key("pressure");
      w.Double(f.pressure());
      w.EndObject();
    }
    w.EndArray();
    if (haveCounters) {
      w.Key("counters");
      w.StartObject();
      for (size_t r = 0; r < totals.packets.size(); ++r) {
        w.Key(metrics::reasonNames()[r].c_str());
        w.Uint64(totals.packets[r]);
      }
      w.EndObject();
    }
    w.EndObject();
    std::cout << buf.GetString() << "\n";
    return 0;
  }

  std::printf("%-36s %-13s %-10s %-30s %s\n", "SERVICE ADDRESS", "TYPE", "MODE", "BACKEND ADDRESS", "(ID) (SLOT) STATE");
  for (const lb::ProgrammedFrontend& f : st.frontends) {
    std::string fe = f.key.str();
    std::string kind = lb::kindName(f.head.kind);
    std::string mode = modeOf(f);
    if (const char* d = dispatchOf(f); d && mode == "dsr") {
      mode += '/';
      mode += d;
    }
    const char* modeText = mode.empty() ? "-" : mode.c_str();
    if (f.backendIds.empty()) {
      std::printf("%-36s %-13s %-10s %-30s (revnat %u)\n", fe.c_str(), kind.c_str(), modeText,
                  f.head.flags & lb::kFrontendDropEmpty ? "<no local endpoints: dropped>" : "<no backends: rejected>",
                  f.revNatId);
    }
    for (size_t i = 0; i < f.backendIds.size(); ++i) {
      auto b = st.backends.find(f.backendIds[i]);
      std::string be = b == st.backends.end() ? "<missing>" : b->second.key.str();
      std::string state = b == st.backends.end() ? "missing" : (b->second.terminating ? "terminating" : "active");
      if (b != st.backends.end() && b->second.local) {
        state += ", local";
      }
      std::printf("%-36s %-13s %-10s %-30s (%u) (%zu) %s\n", i == 0 ? fe.c_str() : "", i == 0 ? kind.c_str() : "",
                  i == 0 ? modeText : "", be.c_str(), f.backendIds[i], i + 1, state.c_str());
    }
    if (f.head.flags & lb::kFrontendMaglev) {  // Maglev (issue 11 item 3); random frontends: no line
      MaglevInfo mi = maglevInfo(reader, st, f.revNatId);
      std::printf("%-36s %-13s maglev: M=%u table %s\n", "", "", mi.tableSize,
                  mi.present ? mi.digest.c_str() : "<none>");
    }
  }
  // -- XDP fast path (issue 11 item 4) --
  std::printf("\nacceleration of NodePort, LoadBalancer and external IP frontends: %s\n", acceleration.c_str());
  if (!xdpLinks.empty()) {
    std::printf("%-16s %-8s %-9s %s\n", "XDP DEVICE", "IFINDEX", "MODE", "PROGRAM");
    for (const bpf::XdpLinkInfo& l : xdpLinks) {
      std::printf("%-16s %-8u %-9s %u\n", l.device.c_str(), l.ifindex, l.ifindex ? l.mode.c_str() : "defunct",
                  l.progId);
    }
  }
  if (!denyCidrs.empty()) {
    std::printf("denyCIDRs (dropped by XDP):");
    for (const lb::Cidr& c : denyCidrs) {
      std::printf(" %s", c.str().c_str());
    }
    std::printf("\n");
  }
  // -- end XDP --
  if (!hooks.empty()) {
    std::printf("\n%-16s %-8s %-9s %-9s %s\n", "TC DEVICE", "IFINDEX", "DIRECTION", "RECORDED", "STATE");
    for (const TcHook& h : hooks) {
      std::string idx = h.ifindex ? std::to_string(h.ifindex) : "-";
      std::printf("%-16s %-8s %-9s %-9s %s\n", h.device.c_str(), idx.c_str(), h.direction.c_str(),
                  h.recorded ? "yes" : "no", h.state.c_str());
    }
  }
  std::printf("\n%-12s %12s %12s %9s\n", "MAP", "ENTRIES", "MAX", "PRESSURE");
  for (const Fill& f : fills) {
    std::printf("%-12s %12llu %12u %8.1f%%\n", f.name.c_str(), static_cast<unsigned long long>(f.entries),
                f.maxEntries, 100 * f.pressure());
  }
  if (haveCounters) {
    std::printf("\nDATAPATH COUNTERS\n");
    for (size_t r = 0; r < totals.packets.size(); ++r) {
      std::printf("  %-18s %12llu packets %14llu bytes\n", metrics::reasonNames()[r].c_str(),
                  static_cast<unsigned long long>(totals.packets[r]),
                  static_cast<unsigned long long>(totals.bytes[r]));
    }
  }
  return 0;
}

}  // namespace switchyard::cmd
