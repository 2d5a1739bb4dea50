// Run folder locks.
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"
#include "util/log.h"

namespace draft {
namespace {

// The pid a lock file names, or "" when it cannot be read (the holder has not written it yet).
std::string holder_pid(const std::string& lock_path) {
  std::ifstream in(lock_path);
  std::string pid;
  in >> pid;
  return pid;
}

}  // namespace

std::string RunLock::path(const std::string& dir) { return dir + "/.lock"; }

RunLock::RunLock(const std::string& dir) {
  const std::string file = path(dir);
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(dir, ": cannot create the run folder's lock file ", file, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK) fail(file, ": cannot lock the run folder: ", std::strerror(error));
    const std::string pid = holder_pid(file);
    fail(dir, " is in use by another draft process", pid.empty() ? "" : " (pid " + pid + ")",
         ": wait for it to finish or stop it, or choose another run folder");
  }
  // Our pid, for the message above; the lock itself is the flock, not this content.
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    DRAFT_LOG_DEBUG("{}: could not record the pid ({})", file, std::strerror(errno));
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

RunLock::RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

RunLock& RunLock::operator=(RunLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

int remove_partial_files(const std::string& dir) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".tmp") continue;
    if (fs::remove(it->path(), ec)) {
      DRAFT_LOG_INFO("{}: removed a partial file left by an interrupted write", it->path().string());
      ++removed;
    }
  }
  return removed;
}

}  // namespace draft
