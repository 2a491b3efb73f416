#include "cmd/status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "bpf/map_writer.h"
#include "bpf/pinned_maps.h"
#include "metrics/datapath_counters.h"

namespace switchyard::cmd {

int printStatus(const std::string& pinPath, bool json) {
  bpf::PinnedMaps maps;
  std::string error;
  if (!maps.open(pinPath, error)) {
    std::cerr << "switchyard status: " << error << "\n";
    return 1;
  }
  bpf::MapWriter reader(maps.fds());
  lb::DataplaneState st = reader.read();
  metrics::DatapathCounters::Totals totals;
  bool haveCounters = metrics::DatapathCounters::read(maps.fds().counters, totals);

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
      w.String(f.flags & lb::kFrontendClusterIP ? "ClusterIP" : "Other");
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

  std::printf("%-28s %-30s %s\n", "SERVICE ADDRESS", "BACKEND ADDRESS", "(ID) (SLOT) STATE");
  for (const lb::ProgrammedFrontend& f : st.frontends) {
    std::string fe = f.key.str();
    if (f.backendIds.empty()) {
      std::printf("%-28s %-30s (revnat %u)\n", fe.c_str(), "<no backends: rejected>", f.revNatId);
    }
    for (size_t i = 0; i < f.backendIds.size(); ++i) {
      auto b = st.backends.find(f.backendIds[i]);
      std::string be = b == st.backends.end() ? "<missing>" : b->second.key.str();
      const char* state = b == st.backends.end() ? "missing" : (b->second.terminating ? "terminating" : "active");
      std::printf("%-28s %-30s (%u) (%zu) %s\n", i == 0 ? fe.c_str() : "", be.c_str(),
                  f.backendIds[i], i + 1, state);
    }
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
