// Leveled logging to stderr, one line per message, klog-like prefix:
//   I1123 21:10:00.123456 message
#pragma once

#include <sstream>
#include <string>

namespace switchyard::logging {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };

void setLevel(Level level);
bool enabled(Level level);
void write(Level level, const std::string& message);

// Stream-style builder: SY_LOG(Info) << "synced " << n << " services";
class Line {
 public:
  explicit Line(Level level) : level_(level) {}
  ~Line() { write(level_, out_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream out_;
};

}  // namespace switchyard::logging

#define SY_LOG(level)                                                          \
  if (!::switchyard::logging::enabled(::switchyard::logging::Level::level)) { \
  } else                                                                       \
    ::switchyard::logging::Line(::switchyard::logging::Level::level)

// Same, with a level chosen at run time.
#define SY_LOG_AT(lvl)                          \
  if (!::switchyard::logging::enabled(lvl)) { \
  } else                                        \
    ::switchyard::logging::Line(lvl)
