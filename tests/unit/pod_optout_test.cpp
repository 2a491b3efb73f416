// bpf.socketLB.podOptOut: which pods keep their ClusterIPs, and where the kubelet put their
// cgroups (both cgroup drivers).
#include <gtest/gtest.h>

#include <filesystem>

#include "bpf/pod_cgroups.h"

namespace switchyard::bpf {
namespace {

k8s::Pod pod(const std::string& ns, const std::string& name, const std::string& node,
             const std::string& uid, const std::string& annotation = "") {
  k8s::Pod p;
  p.metadata.namespace_ = ns;
  p.metadata.name = name;
  p.metadata.uid = uid;
  p.nodeName = node;
  if (!annotation.empty()) p.metadata.annotations[kSocketLBOptOutKey] = annotation;
  return p;
}

k8s::Namespace ns(const std::string& name, const std::string& label) {
  k8s::Namespace n;
  n.metadata.name = name;
  if (!label.empty()) n.metadata.labels[kSocketLBOptOutKey] = label;
  return n;
}

TEST(PodOptOut, AnnotationOrNamespaceLabelOptsOutThePodsOfThisNodeOnly) {
  SocketLBOptOut o("n1");
  EXPECT_FALSE(o.onPod(pod("mesh", "a", "n1", "uid-a")));
  EXPECT_FALSE(o.onPod(pod("apps", "b", "n1", "uid-b", "disabled")));
  EXPECT_FALSE(o.onPod(pod("apps", "c", "n2", "uid-c", "disabled")));  // another node's
  EXPECT_FALSE(o.onPod(pod("apps", "d", "n1", "uid-d")));
  EXPECT_EQ(o.optedOut(), (std::vector<OptedOutPod>{{"apps/b", "uid-b", "annotation"}}));
  EXPECT_FALSE(o.onNamespace(ns("mesh", "disabled")));
  EXPECT_EQ(o.optedOut(), (std::vector<OptedOutPod>{{"apps/b", "uid-b", "annotation"},
                                                    {"mesh/a", "uid-a", "namespace label"}}));
  // The pod's own "enabled" wins over its namespace's label.
  EXPECT_FALSE(o.onPod(pod("mesh", "a", "n1", "uid-a", "enabled")));
  EXPECT_EQ(o.optedOut(), (std::vector<OptedOutPod>{{"apps/b", "uid-b", "annotation"}}));
  o.onPodDelete("apps/b");
  EXPECT_TRUE(o.optedOut().empty());
  // A pod that moves to another node is no longer ours.
  EXPECT_FALSE(o.onPod(pod("apps", "d", "n1", "uid-d", "disabled")));
  EXPECT_EQ(o.optedOut().size(), 1u);
  EXPECT_FALSE(o.onPod(pod("apps", "d", "n2", "uid-d", "disabled")));
  EXPECT_TRUE(o.optedOut().empty());
}

TEST(PodOptOut, ABadValueIsAProblemNamingTheObjectAndIsIgnored) {
  SocketLBOptOut o("n1");
  auto problem = o.onPod(pod("apps", "b", "n1", "uid-b", "off"));
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("Pod apps/b annotation: switchyard.dev/socket-lb: must be disabled or enabled, got \"off\""),
            std::string::npos) << *problem;
  EXPECT_TRUE(o.optedOut().empty());
  auto nsProblem = o.onNamespace(ns("apps", "no"));
  ASSERT_TRUE(nsProblem);
  EXPECT_NE(nsProblem->find("Namespace apps label"), std::string::npos) << *nsProblem;
  EXPECT_TRUE(o.optedOut().empty());
}

TEST(PodOptOut, TheKubeletsCgroupOfAPodIsFoundWithEitherDriver) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/sy-podcg-XXXXXX";
  fs::path root = mkdtemp(tmpl);
  const std::string uid = "4f6c2b1e-93aa-4c1d-8f0e-1a2b3c4d5e6f";
  // cgroupfs driver: kubepods/<qos>/pod<uid>
  fs::create_directories(root / "kubepods/besteffort/pod" += uid);
  fs::create_directories(root / "kubepods/burstable/pod11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(findPodCgroup((root / "kubepods").string(), uid),
            ((root / "kubepods/besteffort/pod") += uid).string());
  // systemd driver: kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice
  const std::string uid2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
  fs::path slice = root / "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podaaaaaaaa_bbbb_cccc_dddd_eeeeeeeeeeee.slice";
  fs::create_directories(slice / "cri-containerd-0123.scope");
  EXPECT_EQ(findPodCgroup(root.string(), uid2), slice.string());
  // Guaranteed pods sit right under kubepods.slice.
  const std::string uid3 = "99999999-8888-7777-6666-555555555555";
  fs::path g = root / "kubepods.slice/kubepods-pod99999999_8888_7777_6666_555555555555.slice";
  fs::create_directories(g);
  EXPECT_EQ(findPodCgroup(root.string(), uid3), g.string());
  EXPECT_FALSE(findPodCgroup(root.string(), "00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(findPodCgroup((root / "missing").string(), uid));
  fs::remove_all(root);
}

}  // namespace
}  // namespace switchyard::bpf
