// What switchyard attached, whose it is, and its removal: `switchyard cleanup` (every pin,
// tc filter and cgroup link made under one pin path) and the daemon (devices it no longer
// uses, devices deleted or recreated under it).
//
// A tc filter or cgroup attachment is "ours" when its program has switchyard's name and
// uses maps pinned under our pin path (compared by map ID). Every daemon uses the same tc
// handle and priority, so the name alone cannot tell two daemons apart; the maps can.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bpf/pinned_maps.h"

namespace switchyard::bpf {

struct CleanupReport {
  int tcFiltersRemoved = 0;
  int qdiscsRemoved = 0;
  int linksRemoved = 0;
  int pinsRemoved = 0;
  bool unmountedBpffs = false;      // the bpffs mounted at the pin path itself (bpffs.h)
  std::vector<std::string> notes;   // what was left alone on purpose, and why
  std::vector<std::string> errors;  // what could not be removed, and why
};

// IDs of a set of maps (a loaded datapath's), or of the maps pinned under a pin path
// (empty when none are pinned there).
std::set<uint32_t> mapIdsOf(const MapFds& fds);
std::set<uint32_t> pinnedMapIds(const std::string& pinPath);

// Who owns the filter at switchyard's tc handle and priority on one hook.
enum class TcFilterOwner {
  None,           // no filter there
  ThisPinPath,    // a switchyard program using maps of ours
  OtherPinPath,   // a switchyard program using other maps: another daemon's
  SwitchyardName, // a switchyard program, and no maps of ours to compare (pins gone)
  Foreign,        // some other program at our handle and priority
  QueryFailed,
};

struct TcFilter {
  TcFilterOwner owner = TcFilterOwner::None;
  uint32_t progId = 0;
  std::string progName;
  int err = 0;  // QueryFailed: the errno
};

// Looks at the filter at kTcHandle/kTcPriority on ifindex's ingress or egress hook in the
// caller's network namespace.
TcFilter queryTcFilter(unsigned ifindex, bool ingress, const std::set<uint32_t>& ourMapIds);
const char* ownerName(TcFilterOwner o);
// The tc command that removes the filter at switchyard's handle and priority (for messages
// about filters switchyard will not remove itself).
std::string tcFilterDelCommand(const std::string& device, bool ingress);

// Where the tc_attach records come from, relative to the caller's network namespace. The
// records hold an ifindex and a device name but no namespace identity (abi.h), so:
enum class RecordScope {
  // `switchyard cleanup`: maybe not the daemon's namespace. A record whose device is
  // missing, has another name, or carries a filter that is not ours is kept and reported
  // (ifindexes repeat across namespaces; all daemons share one handle and priority).
  MaybeOtherNetns,
  // The daemon that made the records, in its own namespace: a missing device took its
  // filters with it, so its record is dropped; a renamed device loses our filter.
  DaemonNetns,
};

// Detaches the tc hooks recorded in the tc_attach map (fd), except those of `keep`
// (device name -> the ifindex attached now), after checking each against the device and
// the program; removes their records, and the clsact qdiscs switchyard created where no
// other filter remains. With MaybeOtherNetns nothing changes at all when any record fails
// its checks (the caller is probably in the wrong network namespace): every problem is
// reported in `report.errors`.
void detachTcHooks(int tcAttachFd, const std::set<uint32_t>& ourMapIds,
                   const std::map<std::string, unsigned>& keep, RecordScope scope,
                   CleanupReport& report);

// Detaches and forgets the records of one ifindex (a configured device that vanished or
// came back with another ifindex), in the daemon's namespace.
void forgetTcIfindex(int tcAttachFd, const std::set<uint32_t>& ourMapIds, unsigned ifindex,
                     CleanupReport& report);

// What a configuration adds to a cleanup: devices and the cgroup to search for
// attachments of ours that have no record or pin (a crash between attach and record,
// pins removed by hand, a link pinned elsewhere).
struct CleanupScope {
  bool fromConfig = false;
  std::vector<std::string> devices;
  std::string cgroupPath;  // "" = none to search
};

// `switchyard cleanup`: in the caller's network namespace.
CleanupReport cleanupPinPath(const std::string& pinPath, const CleanupScope& scope = {});

}  // namespace switchyard::bpf
