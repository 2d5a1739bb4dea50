// Checks that a command can write its outputs, made before it loads a model or samples anything: a typo in
// -o must cost a second, not the minutes of work that come before the write. Every command that writes a
// file or a folder calls these first; the writers still report what goes wrong later (a full disk).
#pragma once

#include <string>

namespace draft::cli {

/// Throws draft::Error naming `flag` and `path` unless the file `path` can be written: its folder exists
/// and takes new files, and `path` is not a folder or a read-only file. Nothing is left behind (the
/// check creates and removes a probe file). An empty `path` (an output not asked for) passes.
void check_output_file(const std::string& path, const std::string& flag);

/// Throws draft::Error naming `flag` and `path` unless the folder `path` can be written into: it is a
/// folder, or its nearest existing parent is one that takes new entries (the command creates the missing
/// folders). Creates nothing. An empty `path` passes.
void check_output_folder(const std::string& path, const std::string& flag);

}  // namespace draft::cli
