// One writer per run folder: an advisory lock (flock) on <dir>/.lock held for as long as a run writes there.
// The kernel drops the lock when its process ends, however it ends, so a run killed with SIGKILL never
// blocks its own resume; a second process started on the same folder is refused instead of interleaving
// its checkpoints and metrics with the first one's.
#pragma once

#include <string>

namespace draft {

class RunLock {
 public:
  /// Takes the lock of folder `dir` (which must exist) without waiting. Throws draft::Error naming the folder
  /// and the process that holds it when another process (or another RunLock of this one) does.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(RunLock&& other) noexcept;
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  /// The lock file: `<dir>/.lock`, which holds the pid of the process that last took the lock.
  static std::string path(const std::string& dir);

 private:
  int fd_ = -1;
};

/// Removes the temporary files (`*.tmp`, see io/atomic_file.h) that writes cut short by a killed process
/// left in `dir` and its subfolders; returns how many. Call it only while holding the folder's RunLock, so
/// that no live write loses its file.
int remove_partial_files(const std::string& dir);

}  // namespace draft
