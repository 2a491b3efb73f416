// The body of a watch response is a stream of JSON objects, one per event. The API server
// writes each as compact JSON followed by a newline (Go's json.Encoder); TCP and HTTP
// chunking cut the stream anywhere. The framer reassembles whole values across reads and
// splits several out of one read.
//
// It checks the JSON grammar byte by byte as the bytes arrive, because counting braces
// alone cannot tell where an event that was cut off mid-object ends: the events after it
// would be swallowed into it until the watch times out. The stream is broken at the first
// byte that cannot continue the value being read:
//   - a newline inside a value: the API server never writes one there, so the value was
//     cut off and the newline is the end of a later event;
//   - a byte the grammar cannot take there: '{' where ':' must come, a raw control
//     character in a string, a bad escape or number, a stray byte between values;
//   - a value longer than maxFrame: a bound against an endless event, so that memory stays
//     bounded (the buffer never holds more than maxFrame bytes, capacity included).
// Like Go's json.Decoder (client-go's framer), it needs no separator between values.
// Pure code (no I/O): the fuzz target drives it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::k8s::apiserver {

class JsonFramer {
 public:
  // client-go's streaming decoder refuses objects larger than this too.
  static constexpr size_t kDefaultMaxFrame = 16u << 20;

  enum class Failure { None, Syntax, TooLarge };

  // maxFrame >= 1: a value bigger than maxFrame bytes is an error.
  explicit JsonFramer(size_t maxFrame = kDefaultMaxFrame);

  // Appends data and calls onFrame with each top-level object or array completed by it, in
  // order. Returns false (and sets error()) at the first byte that cannot be part of a
  // stream of JSON values; frames completed before it have been delivered. The stream is
  // then unusable until reset().
  bool feed(std::string_view data, const std::function<void(std::string_view)>& onFrame);

  size_t maxFrame() const { return maxFrame_; }
  // Bytes of the value being assembled, and the memory its buffer holds.
  size_t buffered() const { return buf_.size(); }
  size_t capacity() const { return buf_.capacity(); }
  // Bytes consumed since reset(): the stream offset of the next byte.
  uint64_t offset() const { return offset_; }

  Failure failure() const { return failure_; }
  // "at offset 1234 (byte 57 of the event that began at offset 1177): expected ':' after
  // an object key, got '{'": offsets count from the first byte of the stream, from 0.
  const std::string& error() const { return error_; }
  uint64_t errorOffset() const { return errorOffset_; }

  // A new stream: nothing buffered, offsets from 0, memory released.
  void reset();

 private:
  // What the grammar allows next, outside a string, number or literal.
  enum class Expect : uint8_t {
    FirstKeyOrEnd,    // after '{'
    Key,              // after ',' in an object
    Colon,            // after a key
    FirstValueOrEnd,  // after '['
    Value,            // after ':', or ',' in an array
    CommaOrEnd,       // after a value in an object or array
  };
  enum class Token : uint8_t { None, String, Number, Literal };
  // Where a number is: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  enum class Num : uint8_t { Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };

  bool step(char c, uint64_t at);
  bool stringByte(char c, uint64_t at);
  // True when c was part of the number; false when the number ended before c (numberOk_
  // tells whether it was complete there).
  bool numberByte(char c);
  bool startValue(char c, uint64_t at);
  bool close();  // the innermost container ends
  void valueDone() { expect_ = Expect::CommaOrEnd; }
  void append(char c);
  void releaseBuffer();
  bool fail(uint64_t at, Failure kind, const std::string& what);

  size_t maxFrame_;
  std::vector<char> buf_;    // bytes of the value being assembled (from its first byte)
  std::vector<char> stack_;  // '{' or '[' of each open container; empty = between values
  Expect expect_ = Expect::Value;
  Token token_ = Token::None;
  bool stringIsKey_ = false;
  bool escape_ = false;
  int unicodeDigits_ = 0;       // hex digits still due after \u
  Num num_ = Num::Int;
  bool numberOk_ = false;       // the number could end here
  const char* literal_ = nullptr;  // the rest of "true", "false" or "null" still due
  uint64_t offset_ = 0;
  uint64_t frameStart_ = 0;
  Failure failure_ = Failure::None;
  std::string error_;
  uint64_t errorOffset_ = 0;
};

}  // namespace switchyard::k8s::apiserver
