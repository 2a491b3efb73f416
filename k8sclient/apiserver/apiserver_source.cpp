#include "k8sclient/apiserver/apiserver_source.h"

#include "logging/log.h"

namespace switchyard::k8s::apiserver {

ApiServerSource::ApiServerSource(boost::asio::io_context& io, ConnectionConfig connection,
                                 ServiceEventHandler& handler, ProblemSink problems,
                                 prometheus::Registry& registry, ApiServerSourceOptions options)
    : handler_(handler), problems_(std::move(problems)), options_(std::move(options)),
      metrics_(registry), client_(io, std::move(connection), options_.qps, options_.burst, metrics_),
      services_("Service", &decodeService,
                StoreCallbacks<Service>{
                    [this](const Service& s) { handler_.onServiceUpsert(s); },
                    [this](const Service& s) { handler_.onServiceUpsert(s); },
                    [this](const Service& s) { handler_.onServiceDelete(s); }},
                [this](const DecodeProblem& p) { decodeProblem(p); }),
      slices_("EndpointSlice", &decodeEndpointSlice,
              StoreCallbacks<EndpointSlice>{
                  [this](const EndpointSlice& s) { handler_.onEndpointSliceUpsert(s); },
                  [this](const EndpointSlice& s) { handler_.onEndpointSliceUpsert(s); },
                  [this](const EndpointSlice& s) { handler_.onEndpointSliceDelete(s); }},
              [this](const DecodeProblem& p) { decodeProblem(p); }),
      nodes_("Node", &decodeNode,
             StoreCallbacks<Node>{[this](const Node& n) { handler_.onNodeUpsert(n); nodeChanged(); },
                                  [this](const Node& n) { handler_.onNodeUpsert(n); nodeChanged(); },
                                  [this](const Node& n) { handler_.onNodeDelete(n); nodeChanged(); }},
             [this](const DecodeProblem& p) { decodeProblem(p); }),
      pods_("Pod", &decodePod,
            StoreCallbacks<Pod>{[this](const Pod& p) { handler_.onPodUpsert(p); },
                                [this](const Pod& p) { handler_.onPodUpsert(p); },
                                [this](const Pod& p) { handler_.onPodDelete(p); }},
            [this](const DecodeProblem& p) { decodeProblem(p); }),
      namespaces_("Namespace", &decodeNamespace,
                  StoreCallbacks<Namespace>{[this](const Namespace& n) { handler_.onNamespaceUpsert(n); },
                                            [this](const Namespace& n) { handler_.onNamespaceUpsert(n); },
                                            [this](const Namespace& n) { handler_.onNamespaceDelete(n); }},
                  [this](const DecodeProblem& p) { decodeProblem(p); }),
      policies_("NetworkPolicy", &decodeNetworkPolicy,
                StoreCallbacks<NetworkPolicy>{
                    [this](const NetworkPolicy& p) { handler_.onNetworkPolicyUpsert(p); },
                    [this](const NetworkPolicy& p) { handler_.onNetworkPolicyUpsert(p); },
                    [this](const NetworkPolicy& p) { handler_.onNetworkPolicyDelete(p); }},
                [this](const DecodeProblem& p) { decodeProblem(p); }) {
  auto onRequestProblem = [this](const RequestProblem& p) { requestProblem(p); };
  serviceReflector_ = std::make_unique<Reflector>(
      client_, ResourceSpec{"Service", "/api/v1/services", kProxyLabelSelector, ""}, services_,
      options_.reflector, [this] { onListed(); }, onRequestProblem);
  sliceReflector_ = std::make_unique<Reflector>(
      client_,
      ResourceSpec{"EndpointSlice", "/apis/discovery.k8s.io/v1/endpointslices",
                   kProxyLabelSelector, ""},
      slices_, options_.reflector, [this] { onListed(); }, onRequestProblem);
  if (!options_.nodeName.empty()) {
    nodeReflector_ = std::make_unique<Reflector>(
        client_,
        ResourceSpec{"Node", "/api/v1/nodes", "", "metadata.name=" + options_.nodeName}, nodes_,
        options_.reflector, [this] { nodeChanged(); }, onRequestProblem);
  }
  if (options_.policy || (options_.localPods && !options_.nodeName.empty())) {
    std::string podFields = options_.policy ? "" : "spec.nodeName=" + options_.nodeName;
    policyReflectors_.push_back(std::make_unique<Reflector>(
        client_, ResourceSpec{"Pod", "/api/v1/pods", "", podFields}, pods_, options_.reflector,
        [this] { onListed(); }, onRequestProblem));
    policyReflectors_.push_back(std::make_unique<Reflector>(
        client_, ResourceSpec{"Namespace", "/api/v1/namespaces", "", ""}, namespaces_,
        options_.reflector, [this] { onListed(); }, onRequestProblem));
  }
  if (options_.policy) {
    policyReflectors_.push_back(std::make_unique<Reflector>(
        client_,
        ResourceSpec{"NetworkPolicy", "/apis/networking.k8s.io/v1/networkpolicies", "", ""},
        policies_, options_.reflector, [this] { onListed(); }, onRequestProblem));
  }
}

ApiServerSource::~ApiServerSource() { stop(); }

void ApiServerSource::start() {
  SY_LOG(Info) << "source apiserver: " << client_.config().server.str() << " from "
               << client_.config().origin;
  serviceReflector_->start();
  sliceReflector_->start();
  if (nodeReflector_) {
    nodeReflector_->start();
  }
  for (auto& r : policyReflectors_) {
    r->start();
  }
}

void ApiServerSource::stop() {
  serviceReflector_->stop();
  sliceReflector_->stop();
  if (nodeReflector_) {
    nodeReflector_->stop();
  }
  for (auto& r : policyReflectors_) {
    r->stop();
  }
}

void ApiServerSource::onListed() {
  if (synced_ || !serviceReflector_->synced() || !sliceReflector_->synced()) {
    return;
  }
  for (const auto& r : policyReflectors_) {
    if (!r->synced()) {
      return;  // policy is never enforced from a partial picture either
    }
  }
  synced_ = true;
  SY_LOG(Info) << "source apiserver: synced " << services_.size() << " services and "
               << slices_.size() << " endpoint slices";
  handler_.onSynced();
}

const Node* ApiServerSource::node() const {
  if (options_.nodeName.empty()) {
    return nullptr;
  }
  // Nodes are cluster-scoped; the decoder files them under "default/" like any object
  // without a namespace.
  return nodes_.get("default/" + options_.nodeName);
}

bool ApiServerSource::nodeToBeDeleted() const {
  const Node* n = node();
  if (!n) {
    return false;
  }
  for (const Node::Taint& t : n->taints) {
    if (t.key == kToBeDeletedTaint) {
      return true;
    }
  }
  return false;
}

void ApiServerSource::nodeChanged() {
  if (nodeObserver_) {
    nodeObserver_(node());
  }
}

void ApiServerSource::decodeProblem(const DecodeProblem& p) {
  metrics_.countDecodeError(p.kind);
  std::string message = "skipped malformed " + p.str();
  SY_LOG(Warning) << "source apiserver: " << message;
  if (problems_) {
    problems_(SourceProblem{SourceProblem::Type::Decode, p.kind, message});
  }
}

void ApiServerSource::requestProblem(const RequestProblem& p) {
  if (problems_) {
    problems_(SourceProblem{SourceProblem::Type::Request, p.kind, p.message});
  }
}

}  // namespace switchyard::k8s::apiserver
