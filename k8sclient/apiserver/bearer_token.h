// The bearer token sent with every request. A token file (in-cluster service account,
// kubeconfig tokenFile) is re-read whenever it changes on disk: the kubelet rotates the
// projected token by swapping a symlink, so the file's identity (inode, size, mtime) moves.
#pragma once

#include <sys/types.h>

#include <ctime>
#include <string>

namespace switchyard::k8s::apiserver {

class BearerToken {
 public:
  BearerToken(std::string staticToken, std::string file);

  // The token to send now ("" = none). Stats the file on each call (cheap next to a
  // request) and re-reads it when it changed; a failed re-read keeps the last good token.
  const std::string& current();
  // Why the last read failed, "" if it did not (for logs).
  const std::string& lastError() const { return error_; }
  size_t reads() const { return reads_; }

 private:
  std::string token_;
  std::string file_;
  ino_t inode_ = 0;
  off_t size_ = -1;
  timespec mtime_{};
  std::string error_;
  size_t reads_ = 0;
};

}  // namespace switchyard::k8s::apiserver
