// Prompt files: one prompt per line, read the same way by every command and by the fine-tuning config.
#pragma once

#include <string>
#include <vector>

namespace draft {

/// The non-empty lines of `path` (a trailing '\r' removed). Throws draft::Error naming the file when it
/// cannot be opened or has no non-empty line.
std::vector<std::string> read_prompt_file(const std::string& path);

/// `prompts` when given, else the lines of `file`; exactly one of the two must be given (--prompt TEXT,
/// repeatable, or --prompts FILE).
std::vector<std::string> resolve_prompts(const std::vector<std::string>& prompts, const std::string& file);

}  // namespace draft
