// Reading and writing metrics.jsonl.
#include "train/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "io/atomic_file.h"
#include "util/error.h"
#include "util/log.h"

namespace draft {

std::string metrics_file(const std::string& run_dir) { return run_dir + "/metrics.jsonl"; }

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<nlohmann::json> records;
  int64_t number = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    ++number;
    const std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      DRAFT_LOG_WARN("{}:{}: the last record has no newline (cut short when its run stopped); left out", path,
                     number);
      break;
    }
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty()) continue;
    try {
      records.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      fail(path, ":", number, ": invalid JSON record: ", e.what());
    }
  }
  return records;
}

void write_metrics(const std::string& path, const std::vector<nlohmann::json>& records) {
  std::string text;
  for (const auto& record : records) text += record.dump() + '\n';
  write_file_atomically(path, text);
}

void append_metrics(const std::string& path, const nlohmann::json& record) {
  // One write() with O_APPEND: a record is never interleaved with another, and one cut short by a kill or a
  // full disk lacks its newline, which read_metrics recognises (a resumed run rewrites the file without it).
  const std::string line = record.dump() + '\n';
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot open for appending: ", std::strerror(errno));
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n == 0 ? ENOSPC : errno;
      ::close(fd);
      fail(path, ": appending a record failed: ", std::strerror(error));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace draft
