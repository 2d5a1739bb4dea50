// Output paths checked before the work.
#include "output_paths.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace draft::cli {
namespace {
namespace fs = std::filesystem;

// Why `folder` takes no new file, or "" when it does. Only creating one tells: access(2) says yes to root on
// a read-only mount or a pseudo file system, and network file systems may answer from stale permissions.
std::string write_probe_error(const fs::path& folder) {
  std::string probe = (folder / ".draft-write-check-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

fs::path folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// The folder that would hold `path` once its missing parents were created: `path` itself or its nearest
// existing ancestor.
fs::path nearest_existing(const std::string& path) {
  std::error_code ec;
  fs::path p = path;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  return p.empty() ? fs::path(".") : p;
}

}  // namespace

void check_output_file(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  std::error_code ec;
  DRAFT_CHECK(!fs::is_directory(path, ec), flag, " ", path, ": is a folder; give a file path (one inside it, say)");
  const fs::path folder = folder_of(path);
  DRAFT_CHECK(fs::exists(folder, ec), flag, " ", path, ": the folder ", folder.string(),
              " does not exist; create it first (mkdir -p ", folder.string(), ") or give another path");
  DRAFT_CHECK(fs::is_directory(folder, ec), flag, " ", path, ": ", folder.string(), " is a file, not a folder");
  const std::string error = write_probe_error(folder);
  DRAFT_CHECK(error.empty(), flag, " ", path, ": cannot write into ", folder.string(), " (", error,
              "); give a path in a folder you can write to");
  DRAFT_CHECK(!fs::exists(path, ec) || ::access(path.c_str(), W_OK) == 0, flag, " ", path,
              ": the file exists and is read-only; give another path or make it writable");
}

void check_output_folder(const std::string& path, const std::string& flag) {
  if (path.empty()) return;
  std::error_code ec;
  const fs::path existing = nearest_existing(path);
  DRAFT_CHECK(fs::is_directory(existing, ec), flag, " ", path, ": ", existing.string(),
              " is a file, not a folder; give a folder path");
  const std::string error = write_probe_error(existing);
  DRAFT_CHECK(error.empty(), flag, " ", path, ": cannot write into ", existing.string(), " (", error,
              "); give a folder you can write to");
}

}  // namespace draft::cli
