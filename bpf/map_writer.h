// lb::DataplaneWriter over the pinned maps: one map operation per call, each failure
// logged with map, key and errno and reported to the error sink (a Prometheus counter).
#pragma once

#include <functional>
#include <string>

#include "bpf/abi.h"
#include "bpf/pinned_maps.h"
#include "lb/dataplane_writer.h"

namespace switchyard::bpf {

// Conversions between lb/ types and the map contract.
union sy_addr toSyAddr(const lb::IpAddr& a);
lb::IpAddr fromSyAddr(const union sy_addr& a);
struct sy_svc_key toSvcKey(const lb::FrontendKey& fe, uint16_t slot);

class MapWriter : public lb::DataplaneWriter {
 public:
  // map: pin name; op: "update" | "delete" | "lookup"
  using ErrorSink = std::function<void(const char* map, const char* op)>;

  MapWriter(const MapFds& fds, ErrorSink onError = nullptr)
      : fds_(fds), onError_(std::move(onError)) {}

  int putBackend(uint32_t id, const lb::Backend& backend) override;
  int deleteBackend(uint32_t id) override;
  int putRevNat(uint32_t id, const lb::FrontendKey& frontend) override;
  int deleteRevNat(uint32_t id) override;
  int putSlot(const lb::FrontendKey& frontend, uint16_t slot, const lb::SlotValue& value) override;
  int deleteSlot(const lb::FrontendKey& frontend, uint16_t slot) override;
  lb::DataplaneState read() override;

 private:
  int fail(const char* map, const char* op, const std::string& key, int err);

  MapFds fds_;
  ErrorSink onError_;
};

}  // namespace switchyard::bpf
