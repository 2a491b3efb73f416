#include "k8sclient/apiserver/json_framer.h"

#include <algorithm>
#include <cstdio>

namespace switchyard::k8s::apiserver {
namespace {

constexpr size_t kInitialCapacity = 4096;
// A buffer that grew past this for one large event is released once that event is
// delivered, so that it does not hold the memory for the rest of the watch.
constexpr size_t kKeptCapacity = 256u << 10;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The offending byte, readable in a one-line log message whatever it is.
std::string describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (c == '\n') {
    return "a newline";
  }
  if (u >= 0x20 && u < 0x7f) {
    return std::string("character '") + c + "'";
  }
  char buf[16];
  std::snprintf(buf, sizeof(buf), "byte 0x%02x", u);
  return buf;
}

}  // namespace

JsonFramer::JsonFramer(size_t maxFrame) : maxFrame_(std::max<size_t>(1, maxFrame)) {}

void JsonFramer::reset() {
  releaseBuffer();
  std::vector<char>().swap(stack_);
  expect_ = Expect::Value;
  token_ = Token::None;
  stringIsKey_ = false;
  escape_ = false;
  unicodeDigits_ = 0;
  numberOk_ = false;
  literal_ = nullptr;
  offset_ = 0;
  frameStart_ = 0;
  failure_ = Failure::None;
  error_.clear();
  errorOffset_ = 0;
}

void JsonFramer::releaseBuffer() { std::vector<char>().swap(buf_); }

// Grows the buffer by doubling, but never past maxFrame: std::vector::reserve allocates
// exactly what it is asked for (std::string's may double past it).
void JsonFramer::append(char c) {
  if (buf_.size() == buf_.capacity()) {
    buf_.reserve(std::min(maxFrame_, std::max(kInitialCapacity, buf_.capacity() * 2)));
  }
  buf_.push_back(c);
}

bool JsonFramer::fail(uint64_t at, Failure kind, const std::string& what) {
  failure_ = kind;
  errorOffset_ = at;
  error_ = "at offset " + std::to_string(at);
  if (!stack_.empty()) {
    uint64_t into = at - frameStart_;
    error_ += " (" + std::to_string(into) + (into == 1 ? " byte" : " bytes") +
              " into the event that began at offset " + std::to_string(frameStart_) + ")";
  }
  error_ += ": " + what;
  releaseBuffer();  // the stream is dead: its partial event is of no use
  return false;
}

bool JsonFramer::feed(std::string_view data,
                      const std::function<void(std::string_view)>& onFrame) {
  if (failure_ != Failure::None) {
    return false;
  }
  for (char c : data) {
    uint64_t at = offset_++;
    if (stack_.empty()) {
      // Between values: whitespace separates events; anything else must open one.
      if (isSpace(c)) {
        continue;
      }
      if (c != '{' && c != '[') {
        return fail(at, Failure::Syntax, "unexpected " + describe(c) + " between watch events");
      }
      frameStart_ = at;
      buf_.clear();
      append(c);
      stack_.push_back(c);
      expect_ = c == '{' ? Expect::FirstKeyOrEnd : Expect::FirstValueOrEnd;
      continue;
    }
    if (buf_.size() >= maxFrame_) {
      return fail(at, Failure::TooLarge,
                  "the event is larger than " + std::to_string(maxFrame_) + " bytes");
    }
    append(c);
    if (!step(c, at)) {
      return false;
    }
    if (stack_.empty()) {
      onFrame(std::string_view(buf_.data(), buf_.size()));
      buf_.clear();
      if (buf_.capacity() > kKeptCapacity) {
        releaseBuffer();
      }
    }
  }
  return true;
}

bool JsonFramer::step(char c, uint64_t at) {
  if (c == '\n') {
    // Valid JSON whitespace, and invalid in a string, but never written inside an event by
    // the API server (compact JSON, then a newline): the event was cut off and this
    // newline ends a later one. Stopping here, not at the next event, keeps one cut event
    // from hiding the change after it until more bytes come.
    return fail(at, Failure::Syntax,
                "a newline inside an event: the API server writes each event on one line, so "
                "this one was cut off");
  }
  switch (token_) {
    case Token::String:
      return stringByte(c, at);
    case Token::Literal:
      if (c != *literal_) {
        return fail(at, Failure::Syntax,
                    std::string("expected '") + *literal_ + "' in a literal, got " + describe(c));
      }
      if (*++literal_ == '\0') {
        token_ = Token::None;
        valueDone();
      }
      return true;
    case Token::Number:
      if (numberByte(c)) {
        return true;
      }
      if (!numberOk_) {
        return fail(at, Failure::Syntax, "expected a digit in a number, got " + describe(c));
      }
      token_ = Token::None;
      valueDone();
      break;  // c follows the number: read it as such below
    case Token::None:
      break;
  }
  if (isSpace(c)) {
    return true;
  }
  switch (expect_) {
    case Expect::FirstKeyOrEnd:
      if (c == '}') {
        return close();
      }
      if (c != '"') {
        return fail(at, Failure::Syntax, "expected an object key or '}', got " + describe(c));
      }
      token_ = Token::String;
      stringIsKey_ = true;
      return true;
    case Expect::Key:
      if (c != '"') {
        return fail(at, Failure::Syntax, "expected an object key, got " + describe(c));
      }
      token_ = Token::String;
      stringIsKey_ = true;
      return true;
    case Expect::Colon:
      if (c != ':') {
        return fail(at, Failure::Syntax, "expected ':' after an object key, got " + describe(c));
      }
      expect_ = Expect::Value;
      return true;
    case Expect::FirstValueOrEnd:
      if (c == ']') {
        return close();
      }
      return startValue(c, at);
    case Expect::Value:
      return startValue(c, at);
    case Expect::CommaOrEnd: {
      char closer = stack_.back() == '{' ? '}' : ']';
      if (c == ',') {
        expect_ = stack_.back() == '{' ? Expect::Key : Expect::Value;
        return true;
      }
      if (c == closer) {
        return close();
      }
      return fail(at, Failure::Syntax,
                  std::string("expected ',' or '") + closer + "', got " + describe(c));
    }
  }
  return true;
}

bool JsonFramer::close() {
  stack_.pop_back();
  if (!stack_.empty()) {
    valueDone();
  }
  return true;
}

bool JsonFramer::startValue(char c, uint64_t at) {
  switch (c) {
    case '{':
      stack_.push_back(c);
      expect_ = Expect::FirstKeyOrEnd;
      return true;
    case '[':
      stack_.push_back(c);
      expect_ = Expect::FirstValueOrEnd;
      return true;
    case '"':
      token_ = Token::String;
      stringIsKey_ = false;
      return true;
    case 't':
      literal_ = "rue";
      token_ = Token::Literal;
      return true;
    case 'f':
      literal_ = "alse";
      token_ = Token::Literal;
      return true;
    case 'n':
      literal_ = "ull";
      token_ = Token::Literal;
      return true;
    case '-':
      num_ = Num::Minus;
      numberOk_ = false;
      token_ = Token::Number;
      return true;
    default:
      if (isDigit(c)) {
        num_ = c == '0' ? Num::Zero : Num::Int;
        numberOk_ = true;
        token_ = Token::Number;
        return true;
      }
      return fail(at, Failure::Syntax, "expected a value, got " + describe(c));
  }
}

bool JsonFramer::stringByte(char c, uint64_t at) {
  if (unicodeDigits_ > 0) {
    if (!isHex(c)) {
      return fail(at, Failure::Syntax, "expected a hex digit in a \\u escape, got " + describe(c));
    }
    --unicodeDigits_;
    return true;
  }
  if (escape_) {
    escape_ = false;
    switch (c) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        return true;
      case 'u':
        unicodeDigits_ = 4;
        return true;
      default:
        return fail(at, Failure::Syntax,
                    "invalid escape in a string: " + describe(c) + " after '\\'");
    }
  }
  if (c == '\\') {
    escape_ = true;
    return true;
  }
  if (c == '"') {
    token_ = Token::None;
    if (stringIsKey_) {
      expect_ = Expect::Colon;
    } else {
      valueDone();
    }
    return true;
  }
  if (static_cast<unsigned char>(c) < 0x20) {
    return fail(at, Failure::Syntax, "a raw control character in a string: " + describe(c));
  }
  return true;
}

bool JsonFramer::numberByte(char c) {
  bool digit = isDigit(c);
  bool exp = c == 'e' || c == 'E';
  auto to = [this](Num n, bool ok) {
    num_ = n;
    numberOk_ = ok;
    return true;
  };
  switch (num_) {
    case Num::Minus:
      return digit && to(c == '0' ? Num::Zero : Num::Int, true);
    case Num::Zero:
      return c == '.' ? to(Num::Dot, false) : exp && to(Num::Exp, false);
    case Num::Int:
      return digit || (c == '.' ? to(Num::Dot, false) : exp && to(Num::Exp, false));
    case Num::Dot:
      return digit && to(Num::Frac, true);
    case Num::Frac:
      return digit || (exp && to(Num::Exp, false));
    case Num::Exp:
      return c == '+' || c == '-' ? to(Num::ExpSign, false) : digit && to(Num::ExpDigits, true);
    case Num::ExpSign:
      return digit && to(Num::ExpDigits, true);
    case Num::ExpDigits:
      return digit;
  }
  return false;
}

}  // namespace switchyard::k8s::apiserver
