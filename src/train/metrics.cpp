// Reading and writing metrics.jsonl.
#include "train/metrics.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "util/error.h"

namespace draft {

std::string metrics_file(const std::string& run_dir) { return run_dir + "/metrics.jsonl"; }

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::vector<nlohmann::json> records;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
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
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) fail(tmp, ": cannot create: ", std::strerror(errno));
    for (const auto& record : records) out << record.dump() << '\n';
    DRAFT_CHECK(out.good(), tmp, ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, ": cannot move into place: ", std::strerror(errno));
}

void append_metrics(const std::string& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  if (!out) fail(path, ": cannot open for appending: ", std::strerror(errno));
  out << record.dump() << '\n';
  out.flush();
  DRAFT_CHECK(out.good(), path, ": write failed (disk full?)");
}

}  // namespace draft
