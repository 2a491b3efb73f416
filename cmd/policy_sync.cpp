#include "cmd/policy_sync.h"

#include <bpf/bpf.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "bpf/pinned_maps.h"
#include "bpf/policy_abi.h"
#include "logging/log.h"

namespace switchyard::cmd {
namespace {

using namespace std::chrono_literals;

// pol_state_v1's revision after `rev`: the low SY_POL_REV_BITS are what conntrack caches,
// and 0 there means "never judged", so such revisions are skipped.
uint32_t nextRevision(uint32_t rev) {
  ++rev;
  if ((rev & SY_POL_REV_MASK) == 0) {
    ++rev;
  }
  return rev;
}

size_t endpointCount(const policy::State& st) {
  std::set<uint32_t> ids;
  for (const auto& [addr, ep] : st.endpoints) {
    ids.insert(ep.id);
  }
  return ids.size();
}

bool mkdirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

std::string policyNamesPath(const std::string& pinPath) {
  std::string p = "/run/switchyard/state";
  p.append(pinPath);
  while (p.size() > 1 && p.back() == '/') {
    p.pop_back();
  }
  return p.append("/policy-names.json");
}

PolicySync::PolicySync(boost::asio::io_context& io, PolicySyncMaps fds, PolicySyncOptions options,
                       metrics::PolicyMetrics& metrics)
    : io_(io), fds_(fds), options_(std::move(options)), metrics_(metrics), compiler_(options_.nodeName),
      timer_(io) {}

uint32_t PolicySync::flags() const {
  if (!options_.enabled) {
    return 0;
  }
  return SY_POL_STATE_ENABLED | (options_.logDenied ? SY_POL_STATE_LOG_DENIED : 0);
}

bool PolicySync::writeState(uint32_t flags) {
  uint32_t key = 0;
  sy_pol_state v{revision_, flags};
  if (bpf_map_update_elem(fds_.state, &key, &v, BPF_ANY) != 0) {
    SY_LOG(Error) << bpf::kPinPolState << ": revision " << revision_ << " flags " << flags
                  << " cannot be written: " << std::strerror(errno);
    metrics_.countMapErrors(bpf::kPinPolState, 1);
    return false;
  }
  return true;
}

bool PolicySync::start(std::string& error) {
  uint32_t key = 0;
  sy_pol_state pinned{};
  if (bpf_map_lookup_elem(fds_.state, &key, &pinned) != 0) {
    error = std::string(bpf::kPinPolState) + ": cannot be read: " + std::strerror(errno);
    return false;
  }
  revision_ = pinned.revision;
  policy::State held;
  if (!bpf::readPolicyMaps(fds_.maps, held, error)) {
    return false;
  }
  if (!options_.enabled) {
    // The flag first: with it clear the programs read no policy map, so emptying them next
    // denies nothing on the way.
    if (!writeState(0)) {
      error = std::string(bpf::kPinPolState) + ": cannot clear the enabled flag";
      return false;
    }
    stateWritten_ = true;
    if (!held.ipcache.empty() || !held.endpoints.empty() || !held.rules.empty()) {
      bpf::PolicyWriteResult r = bpf::writePolicyDiff(fds_.maps, policy::diff(held, policy::State{}));
      SY_LOG(Info) << "policy.enabled is false: removed " << r.written << " entries an earlier run left in the "
                   << "policy maps";
      if (!r.ok()) {
        SY_LOG(Warning) << "policy maps: " << r.failed << " entries could not be removed (unused while "
                        << "policy.enabled is false): " << r.firstError;
      }
    }
    std::remove(options_.namesFile.c_str());
    return true;
  }
  SY_LOG(Info) << "adopted pinned policy maps: revision " << revision_ << ", flags " << pinned.flags << ", "
               << held.ipcache.size() << " ipcache entries, " << endpointCount(held) << " endpoints, "
               << held.rules.size() << " rules";
  compiler_.adoptNumbers(held);
  written_ = std::move(held);
  // pol_state_v1 keeps the earlier run's flags until the first sync: its entries stay in
  // force meanwhile (or, from a disabled run, nothing is judged until the maps are complete).
  stateWritten_ = pinned.flags == flags();
  return true;
}

void PolicySync::changed() {
  if (!options_.enabled) {
    return;
  }
  dirty_ = true;
  if (!oldestChange_) {
    oldestChange_ = Clock::now();
  }
  schedule();
}

void PolicySync::setPodAddresses(const std::string& pod, const std::vector<std::string>& ips) {
  for (const auto& a : podIps_[pod]) {
    if (auto it = podAt_.find(a); it != podAt_.end() && it->second == pod) {
      podAt_.erase(it);
    }
  }
  podIps_.erase(pod);
  for (const auto& text : ips) {
    if (auto a = lb::IpAddr::parse(text)) {
      podIps_[pod].push_back(*a);
      podAt_[*a] = pod;
    }
  }
}

std::string PolicySync::podAt(const lb::IpAddr& a) const {
  auto it = podAt_.find(a);
  return it == podAt_.end() ? "" : it->second;
}

void PolicySync::onPodUpsert(const k8s::Pod& p) {
  compiler_.upsertPod(p);
  // A host-network pod's address is its node's: naming the node's traffic after one of its
  // pods would mislead.
  setPodAddresses(p.metadata.key(), p.hostNetwork ? std::vector<std::string>{} : p.podIPs);
  changed();
}
void PolicySync::onPodDelete(const k8s::Pod& last) {
  compiler_.deletePod(last.metadata.key());
  setPodAddresses(last.metadata.key(), {});
  changed();
}
void PolicySync::onNamespaceUpsert(const k8s::Namespace& n) {
  compiler_.upsertNamespace(n);
  changed();
}
void PolicySync::onNamespaceDelete(const k8s::Namespace& last) {
  compiler_.deleteNamespace(last.metadata.name);
  changed();
}
void PolicySync::onNetworkPolicyUpsert(const k8s::NetworkPolicy& p) {
  compiler_.upsertPolicy(p);
  changed();
}
void PolicySync::onNetworkPolicyDelete(const k8s::NetworkPolicy& last) {
  compiler_.deletePolicy(last.metadata.key());
  changed();
}
void PolicySync::onSynced() {
  synced_ = true;
  changed();
}

void PolicySync::schedule() {
  if (armed_ || !synced_) {
    return;
  }
  armed_ = true;
  auto due = std::max({lastSync_ + options_.minSyncPeriod, notBefore_, Clock::now()});
  timer_.expires_at(due);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    armed_ = false;
    if (!ec) {
      sync();
    }
  });
}

// The forward write stops after the additions when one fails (bpf/policy_maps.h), so what
// it changed is: ipcache entries and rules the attempted state added, and ipcache values it
// rewrote. Removals go first, so a full map has room to take the old values back.
void PolicySync::rollback(const policy::State& attempted) {
  policy::Diff back = policy::diff(attempted, written_);
  policy::Diff removals;
  removals.ruleDelete = std::move(back.ruleDelete);
  removals.ipcacheDelete = std::move(back.ipcacheDelete);
  policy::Diff restore;
  for (auto& [c, peer] : back.ipcacheUpsert) {
    if (attempted.ipcache.count(c)) {
      restore.ipcacheUpsert.emplace(c, peer);
    }
  }
  bpf::PolicyWriteResult r1 = bpf::writePolicyDiff(fds_.maps, removals);
  bpf::PolicyWriteResult r2 = bpf::writePolicyDiff(fds_.maps, restore);
  if (r1.ok() && r2.ok()) {
    return;
  }
  // Not back where it was: take what the maps hold as written, so the next diff repairs it.
  SY_LOG(Error) << "policy maps: taking out a failed write failed too ("
                << (r1.ok() ? r2.firstError : r1.firstError) << "); reading the maps back";
  for (const auto* r : {&r1, &r2}) {
    for (const auto& [map, n] : r->failedByMap) {
      metrics_.countMapErrors(map, n);
    }
  }
  readBack();
}

bool PolicySync::readBack() {
  policy::State held;
  std::string error;
  if (!bpf::readPolicyMaps(fds_.maps, held, error)) {
    SY_LOG(Error) << "policy maps: " << error;
    return false;
  }
  for (auto& [addr, ep] : held.endpoints) {
    if (auto it = written_.endpoints.find(addr); it != written_.endpoints.end()) {
      ep.pod = it->second.pod;
    }
  }
  written_.ipcache = std::move(held.ipcache);
  written_.endpoints = std::move(held.endpoints);
  written_.rules = std::move(held.rules);
  return true;
}

void PolicySync::resync() {
  if (!options_.enabled || !synced_) {
    return;
  }
  if (readBack()) {
    dirty_ = true;  // no change arrived: nothing for the change-to-written histogram
    schedule();
  }
}

PolicySync::Result PolicySync::sync() {
  Result res;
  if (!options_.enabled || !synced_) {
    return res;
  }
  auto start = Clock::now();
  lastSync_ = start;
  dirty_ = false;
  policy::State next = compiler_.compute();
  policy::Diff d = policy::diff(written_, next);
  // Maps read back after a restart do not name pods: an endpoint whose map value is the
  // same needs no write.
  std::erase_if(d.endpointUpsert, [&](const auto& kv) {
    auto it = written_.endpoints.find(kv.first);
    return it != written_.endpoints.end() && bpf::sameEndpointValue(it->second, kv.second);
  });
  if (d.size() == 0 && stateWritten_) {
    written_ = std::move(next);  // the names may be new (after a restart)
    if (oldestChange_) {
      writeNames();
    }
    oldestChange_.reset();
    publish();
    return res;
  }
  res.ran = true;
  bpf::PolicyWriteResult r = bpf::writePolicyDiff(fds_.maps, d);
  res.operations = r.written;
  if (!r.ok()) {
    res.ok = false;
    res.error = r.firstError;
    for (const auto& [map, n] : r.failedByMap) {
      metrics_.countMapErrors(map, n);
    }
    metrics_.countSync(false);
    rollback(next);
    // Flows judged while the additions were in (allowed by rules now taken out again) are
    // judged again.
    if (r.written > 0) {
      revision_ = nextRevision(revision_);
      stateWritten_ = writeState(flags());
    }
    // The same diff fails the same way until something changes (a policy removed, a larger
    // map): back off, 1 s doubling to 60 s, so a full map is no loop of rewrites.
    backoff_ = std::min<std::chrono::milliseconds>(backoff_.count() ? 2 * backoff_ : 1000ms, 60000ms);
    notBefore_ = Clock::now() + backoff_;
    SY_LOG(Error) << "policy sync: " << r.failed << " map operations failed, first " << r.firstError
                  << "; the previous rules stay in force; retrying in " << backoff_.count() << " ms";
    dirty_ = true;
    schedule();
    return res;
  }
  backoff_ = 0ms;
  notBefore_ = {};
  written_ = std::move(next);
  if (d.size() > 0 || !stateWritten_) {
    revision_ = nextRevision(revision_);
    stateWritten_ = writeState(flags());
    if (!stateWritten_) {
      // The entries are in, but established flows keep the verdicts of before until the
      // revision moves: retry.
      res.ok = false;
      res.error = std::string(bpf::kPinPolState) + ": cannot be written";
      metrics_.countSync(false);
      dirty_ = true;
      notBefore_ = Clock::now() + 1000ms;
      schedule();
      return res;
    }
  }
  metrics_.countSync(true);
  if (oldestChange_) {
    metrics_.observeChangeToWritten(std::chrono::duration<double>(Clock::now() - *oldestChange_).count());
    oldestChange_.reset();
  }
  writeNames();
  publish();
  SY_LOG_AT(d.size() > 0 ? logging::Level::Info : logging::Level::Debug)
      << "policy sync: " << r.written << " map operations in "
      << std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()
      << " us, revision " << revision_ << "; now " << written_.identities.size() << " identities, "
      << endpointCount(written_) << " endpoints, " << written_.rules.size() << " rules";
  return res;
}

void PolicySync::publish() {
  metrics_.setProgrammed(written_.identities.size(), written_.cidrIdentities.size(), endpointCount(written_),
                         written_.rules.size());
}

// {"revision":N,"node":"...","identities":[{"id","namespace","namespaceLabels","labels"}],
//  "cidrs":[{"id","cidr"}],"endpoints":[{"id","pod"}]}: names only; the maps hold the rest.
void PolicySync::writeNames() const {
  if (options_.namesFile.empty()) {
    return;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto labels = [&w](const policy::Labels& l) {
    w.StartObject();
    for (const auto& [k, v] : l) {
      w.Key(k.c_str());
      w.String(v.c_str());
    }
    w.EndObject();
  };
  w.StartObject();
  w.Key("revision");
  w.Uint(revision_);
  w.Key("node");
  w.String(options_.nodeName.c_str());
  w.Key("identities");
  w.StartArray();
  for (const auto& [id, info] : written_.identities) {
    w.StartObject();
    w.Key("id");
    w.Uint(id);
    w.Key("namespace");
    w.String(info.namespace_.c_str());
    w.Key("namespaceLabels");
    labels(info.namespaceLabels);
    w.Key("labels");
    labels(info.podLabels);
    w.EndObject();
  }
  w.EndArray();
  w.Key("cidrs");
  w.StartArray();
  for (const auto& [id, c] : written_.cidrIdentities) {
    w.StartObject();
    w.Key("id");
    w.Uint(id);
    w.Key("cidr");
    w.String(c.str().c_str());
    w.EndObject();
  }
  w.EndArray();
  w.Key("endpoints");
  w.StartArray();
  std::set<uint32_t> seen;
  for (const auto& [addr, ep] : written_.endpoints) {
    if (!seen.insert(ep.id).second) {
      continue;
    }
    w.StartObject();
    w.Key("id");
    w.Uint(ep.id);
    w.Key("pod");
    w.String(ep.pod.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  const std::string& path = options_.namesFile;
  std::string tmp = path + ".tmp";
  auto slash = path.rfind('/');
  bool ok = slash == std::string::npos || mkdirs(path.substr(0, slash));
  if (ok) {
    FILE* f = std::fopen(tmp.c_str(), "we");
    ok = f != nullptr;
    if (f) {
      ok = std::fwrite(buf.GetString(), 1, buf.GetSize(), f) == buf.GetSize();
      ok = std::fclose(f) == 0 && ok;
    }
    ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  }
  if (!ok) {
    // Status shows numbers without names then; enforcement does not depend on the file.
    SY_LOG(Warning) << "policy names for `switchyard status policy`: " << path << ": " << std::strerror(errno);
    std::remove(tmp.c_str());
  }
}

}  // namespace switchyard::cmd
