#include "logging/log.h"

#include <sys/time.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace switchyard::logging {
namespace {
std::atomic<int> gLevel{static_cast<int>(Level::Info)};
std::mutex gMutex;
}  // namespace

void setLevel(Level level) { gLevel = static_cast<int>(level); }

bool enabled(Level level) { return static_cast<int>(level) >= gLevel.load(); }

void write(Level level, const std::string& message) {
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  char prefix[64];
  std::snprintf(prefix, sizeof(prefix), "%c%02d%02d %02d:%02d:%02d.%06ld ",
                kLetters[static_cast<int>(level)], t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                t.tm_sec, static_cast<long>(tv.tv_usec));
  std::lock_guard<std::mutex> lock(gMutex);
  std::fprintf(stderr, "%s%s\n", prefix, message.c_str());
  std::fflush(stderr);
}

}  // namespace switchyard::logging
