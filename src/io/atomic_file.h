// Writing a file so that no crash and no full disk ever leaves a torn file under its name: the bytes go to
// `<path>.tmp`, which is flushed to disk and then renamed over `path` in one step. A reader sees the old
// file or the new one, never half of one; a failed write removes the temporary file and names `path`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace draft {

/// One atomic file write. Use: construct, write() the bytes, commit(). Destroyed without commit() (an
/// exception on the way), the temporary file is removed and `path` keeps its old content, if any.
class AtomicFileWriter {
 public:
  /// Creates `path` + ".tmp"; throws draft::Error naming `path` when it cannot (missing folder, no right).
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  /// Appends `size` bytes. A full disk (ENOSPC) or a file-size limit (EFBIG) throws draft::Error naming
  /// `path` and saying which.
  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }

  /// fsync, close and rename into place (then fsync the folder, so the rename survives a power cut too).
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail_with_errno(const char* what);

  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
};

/// Writes `content` to `path` atomically (AtomicFileWriter).
void write_file_atomically(const std::string& path, std::string_view content);

/// The name a partial write to `path` leaves behind when its process is killed: `path` + ".tmp".
std::string temporary_path(const std::string& path);

}  // namespace draft
