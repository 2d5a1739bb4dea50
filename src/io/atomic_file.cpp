// Atomic file writes: write to <path>.tmp, fsync, rename.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "util/error.h"

namespace draft {
namespace {

std::string parent_folder(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// What a failed write means to a user: the two ways a disk says "no more".
std::string describe(int error) {
  if (error == ENOSPC) return "no space left on the device";
  if (error == EFBIG) return "the file-size limit (ulimit -f) is reached";
  if (error == EDQUOT) return "the disk quota is exceeded";
  return std::strerror(error);
}

}  // namespace

std::string temporary_path(const std::string& path) { return path + ".tmp"; }

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)), tmp_path_(temporary_path(path_)) {
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int error = errno;
    fail(path_, ": cannot create ", tmp_path_, ": ", std::strerror(error),
         error == ENOENT ? " (does the folder exist?)" : "");
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ < 0) return;  // committed, or never opened
  ::close(fd_);
  std::remove(tmp_path_.c_str());
}

void AtomicFileWriter::fail_with_errno(const char* what) {
  const int error = errno;
  ::close(fd_);
  fd_ = -1;
  std::remove(tmp_path_.c_str());
  fail(path_, ": ", what, " failed: ", describe(error), " (the file on disk is unchanged)");
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
  DRAFT_CHECK(fd_ >= 0, path_, ": write after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;  // a regular file that takes no bytes is full
      fail_with_errno("writing");
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  DRAFT_CHECK(fd_ >= 0, path_, ": committed twice");
  // fsync first: a rename that reaches the disk before the data would leave an empty file after a power cut.
  if (::fsync(fd_) != 0) fail_with_errno("flushing to disk");
  if (::close(fd_) != 0) {
    fd_ = -1;  // closed either way
    const int error = errno;
    std::remove(tmp_path_.c_str());
    fail(path_, ": closing failed: ", describe(error));
  }
  fd_ = -1;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    std::remove(tmp_path_.c_str());
    fail(path_, ": cannot move ", tmp_path_, " into place: ", std::strerror(error));
  }
  const int dir = ::open(parent_folder(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {  // best effort: some file systems refuse fsync on folders
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::string& path, std::string_view content) {
  AtomicFileWriter writer(path);
  writer.write(content);
  writer.commit();
}

}  // namespace draft
