// draft info FILE.safetensors: what a weights file holds (names, dtypes, shapes, counts, metadata).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "io/safetensors.h"

namespace draft::cli {
namespace {

struct InfoOptions {
  std::string path;
  bool json = false;
  std::string filter;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

int run_info(const InfoOptions& o) {
  SafeTensorsFile file(o.path);
  std::vector<const TensorInfo*> shown;
  for (const auto& t : file.tensors()) {
    if (o.filter.empty() || t.name.find(o.filter) != std::string::npos) shown.push_back(&t);
  }
  std::sort(shown.begin(), shown.end(), [](auto* a, auto* b) { return a->name < b->name; });
  int64_t params = 0;
  uint64_t bytes = 0;
  for (auto* t : shown) {
    params += t->numel();
    bytes += t->nbytes();
  }

  if (o.json) {
    nlohmann::ordered_json out;
    out["file"] = o.path;
    out["tensor_count"] = shown.size();
    out["parameter_count"] = params;
    out["bytes"] = bytes;
    out["metadata"] = file.metadata();
    out["tensors"] = nlohmann::ordered_json::array();
    for (auto* t : shown) {
      out["tensors"].push_back({{"name", t->name}, {"dtype", dtype_name(t->dtype)}, {"shape", t->shape},
                                {"parameters", t->numel()}, {"data_offsets", {t->begin, t->end}}});
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }

  std::size_t width = 4;
  for (auto* t : shown) width = std::max(width, t->name.size());
  std::printf("%-*s  %-5s  %-20s  %12s\n", static_cast<int>(width), "name", "dtype", "shape", "parameters");
  for (auto* t : shown) {
    std::printf("%-*s  %-5s  %-20s  %12lld\n", static_cast<int>(width), t->name.c_str(), dtype_name(t->dtype),
                shape_text(t->shape).c_str(), static_cast<long long>(t->numel()));
  }
  std::printf("\n%zu tensors, %lld parameters (%.2fM), %.2f MB of data\n", shown.size(),
              static_cast<long long>(params), static_cast<double>(params) / 1e6, static_cast<double>(bytes) / 1e6);
  if (!file.metadata().empty()) {
    std::printf("metadata:\n");
    for (const auto& [key, value] : file.metadata()) std::printf("  %s: %s\n", key.c_str(), value.c_str());
  }
  return 0;
}

}  // namespace

Command add_info_command(CLI::App& root) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* sub = root.add_subcommand("info", "Show the tensors and metadata of a .safetensors file");
  sub->add_option("file", options->path, "the .safetensors file")->required();
  sub->add_flag("--json", options->json, "print JSON instead of a table");
  sub->add_option("--filter", options->filter, "only tensors whose name contains this text");
  return {sub, [options] { return run_info(*options); }};
}

}  // namespace draft::cli
