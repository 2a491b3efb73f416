#include "lb/topology.h"

#include <algorithm>

namespace switchyard::lb {

uint32_t ZoneSets::intern(std::vector<std::string> zones) {
  std::sort(zones.begin(), zones.end());
  zones.erase(std::unique(zones.begin(), zones.end()), zones.end());
  if (zones.empty()) {
    return 0;
  }
  auto [it, inserted] = ids_.try_emplace(zones, static_cast<uint32_t>(sets_.size()));
  if (inserted) {
    sets_.push_back(std::move(zones));
  }
  return it->second;
}

bool ZoneSets::contains(uint32_t id, const std::string& zone) const {
  if (id == 0 || id >= sets_.size()) {
    return false;
  }
  const auto& s = sets_[id];
  return std::binary_search(s.begin(), s.end(), zone);
}

TopologyMode topologyModeFromHints(std::span<const EndpointView> eps, const std::string& zone,
                                   const ZoneSets& zones) {
  bool hasReady = false;
  bool allNodeHints = true, forThisNode = false;
  bool allZoneHints = true, forThisZone = false;
  for (const EndpointView& ep : eps) {
    if (!ep.ready()) {
      continue;
    }
    hasReady = true;
    if (!(ep.flags & kEndpointHasNodeHints)) {
      allNodeHints = false;
    } else if (ep.flags & kEndpointHintedHere) {
      forThisNode = true;
    }
    if (ep.zoneHints == 0) {
      allZoneHints = false;
    } else if (zones.contains(ep.zoneHints, zone)) {
      forThisZone = true;
    }
  }
  if (!hasReady) {
    return TopologyMode::None;
  }
  // PreferSameTrafficDistribution is GA (1.35): node hints are always considered first.
  if (allNodeHints && forThisNode) {
    return TopologyMode::PreferSameNode;
  }
  if (allZoneHints && forThisZone) {
    return TopologyMode::PreferSameZone;
  }
  return TopologyMode::None;
}

namespace {

bool availableForTopology(const EndpointView& ep, TopologyMode mode, const std::string& zone,
                          const ZoneSets& zones) {
  switch (mode) {
    case TopologyMode::None: return true;
    case TopologyMode::PreferSameNode: return ep.flags & kEndpointHintedHere;
    case TopologyMode::PreferSameZone: return zones.contains(ep.zoneHints, zone);
  }
  return false;
}

}  // namespace

Categorized categorizeEndpoints(std::span<const EndpointView> eps, const PortPolicy& policy,
                                const std::string& zone, const ZoneSets& zones) {
  Categorized out;
  if (eps.empty()) {
    return out;
  }
  if (policy.usesCluster()) {
    out.mode = topologyModeFromHints(eps, zone, zones);
    for (size_t i = 0; i < eps.size(); ++i) {
      if (eps[i].ready() && availableForTopology(eps[i], out.mode, zone, zones)) {
        out.cluster.push_back(i);
      }
    }
    // No ready endpoint anywhere (a topology without one for us was already ignored):
    // serving-and-terminating ones, whatever their topology.
    if (out.cluster.empty()) {
      for (size_t i = 0; i < eps.size(); ++i) {
        if (eps[i].servingTerminating()) {
          out.cluster.push_back(i);
        }
      }
    }
    out.hasAny = !out.cluster.empty();
  }
  if (!policy.usesLocal()) {
    return out;
  }
  bool localReady = false, localServingTerminating = false;
  for (const EndpointView& ep : eps) {
    if (ep.ready()) {
      out.hasAny = true;
      localReady = localReady || ep.local();
    } else if (ep.servingTerminating()) {
      out.hasAny = true;
      localServingTerminating = localServingTerminating || ep.local();
    }
  }
  // Topology is ignored for Local endpoints; the fallback is decided for them alone.
  for (size_t i = 0; i < eps.size(); ++i) {
    if (!eps[i].local()) {
      continue;
    }
    if (localReady ? eps[i].ready() : (localServingTerminating && eps[i].servingTerminating())) {
      out.local.push_back(i);
    }
  }
  return out;
}

}  // namespace switchyard::lb
