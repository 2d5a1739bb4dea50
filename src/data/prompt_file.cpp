// Reading prompt files.
#include "data/prompt_file.h"

#include <fstream>

#include "util/error.h"

namespace draft {

std::vector<std::string> read_prompt_file(const std::string& path) {
  std::ifstream in(path);
  DRAFT_CHECK(in.good(), path, ": cannot open the prompts file");
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(line);
  }
  DRAFT_CHECK(!prompts.empty(), path, ": the prompts file has no non-empty line");
  return prompts;
}

std::vector<std::string> resolve_prompts(const std::vector<std::string>& prompts, const std::string& file) {
  DRAFT_CHECK(prompts.empty() != file.empty(), "give either --prompt (repeatable) or --prompts FILE");
  return file.empty() ? prompts : read_prompt_file(file);
}

}  // namespace draft
