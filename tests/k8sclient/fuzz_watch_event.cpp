// libFuzzer target: a watch body as the network delivers it, cut into reads at places the
// input chooses, through the framer, the event parser and the typed decoders. Anything
// goes in; nothing may crash, hang or read out of bounds (built with ASan and UBSan).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "k8sclient/apiserver/watch_stream.h"
#include "k8sclient/decode.h"

using namespace switchyard::k8s;
using namespace switchyard::k8s::apiserver;

namespace {

void decodeFrame(std::string_view frame) {
  WatchEvent ev;
  std::string error;
  if (!parseWatchEvent(frame, ev, error)) {
    return;
  }
  std::vector<FieldError> errors;
  Service svc;
  decodeService(*ev.object, svc, errors);
  EndpointSlice slice;
  decodeEndpointSlice(*ev.object, slice, errors);
  Node node;
  decodeNode(*ev.object, node, errors);
  ApiStatus status;
  parseStatus(*ev.object, status);
  (void)resourceVersionOf(*ev.object);
  (void)objectRef(*ev.object);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte picks the read size, the rest is the stream.
  size_t step = 1 + data[0] % 64;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  JsonFramer framer(1u << 20);
  for (size_t off = 0; off < stream.size(); off += step) {
    if (!framer.feed(stream.substr(off, step), decodeFrame)) {
      break;
    }
  }
  // Every frame on its own too, as one read.
  decodeFrame(stream);
  return 0;
}
