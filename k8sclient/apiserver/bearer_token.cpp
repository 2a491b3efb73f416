#include "k8sclient/apiserver/bearer_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace switchyard::k8s::apiserver {

BearerToken::BearerToken(std::string staticToken, std::string file)
    : token_(std::move(staticToken)), file_(std::move(file)) {}

const std::string& BearerToken::current() {
  if (file_.empty()) {
    return token_;
  }
  struct stat st {};
  if (stat(file_.c_str(), &st) != 0) {
    error_ = "token file " + file_ + ": " + std::strerror(errno);
    return token_;
  }
  if (st.st_ino == inode_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec) {
    return token_;
  }
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    error_ = "token file " + file_ + ": cannot be read";
    return token_;
  }
  std::ostringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  // Files written by editors and `echo` end in a newline; a token never contains whitespace.
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
    t.pop_back();
  }
  token_ = std::move(t);
  inode_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  error_.clear();
  ++reads_;
  return token_;
}

}  // namespace switchyard::k8s::apiserver
