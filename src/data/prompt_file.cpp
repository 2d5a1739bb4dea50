// Reading prompt files.
#include "data/prompt_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <utf8proc.h>

#include "util/error.h"

namespace draft {
namespace {

// The byte offset of the first byte of `text` that is not valid UTF-8, or -1. Checked here, where the
// message can name the file and line, rather than in the tokenizer, which sees one prompt and no file.
int64_t invalid_utf8_offset(const std::string& text) {
  const auto* data = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const auto size = static_cast<utf8proc_ssize_t>(text.size());
  for (utf8proc_ssize_t pos = 0; pos < size;) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(data + pos, size - pos, &cp);
    if (n <= 0 || cp < 0) return pos;
    pos += n;
  }
  return -1;
}

}  // namespace

std::vector<std::string> read_prompt_file(const std::string& path) {
  std::error_code ec;
  DRAFT_CHECK(!std::filesystem::is_directory(path, ec), path,
              ": is a folder, not a prompts file; give a text file with one prompt per line");
  std::ifstream in(path);
  DRAFT_CHECK(in.good(), path, ": cannot open the prompts file: ", std::strerror(errno));
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const int64_t bad = invalid_utf8_offset(line);
    DRAFT_CHECK(bad < 0, path, ": line ", number, " is not valid UTF-8 (byte ", bad + 1,
                " of the line); save the file as UTF-8");
    if (!line.empty()) prompts.push_back(line);
  }
  DRAFT_CHECK(!prompts.empty(), path, ": the prompts file has no non-empty line; write one prompt per line");
  return prompts;
}

std::vector<std::string> resolve_prompts(const std::vector<std::string>& prompts, const std::string& file) {
  DRAFT_CHECK(prompts.empty() != file.empty(), "give either --prompt (repeatable) or --prompts FILE");
  for (const auto& prompt : prompts) {
    DRAFT_CHECK(invalid_utf8_offset(prompt) < 0, "--prompt: the text is not valid UTF-8 (byte ",
                invalid_utf8_offset(prompt) + 1, "); give the prompt in UTF-8");
  }
  return file.empty() ? prompts : read_prompt_file(file);
}

}  // namespace draft
