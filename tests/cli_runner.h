// Running the draft CLI from a test: the exit code, stdout and stderr of one command line. A test that
// includes this gets DRAFT_CLI_PATH from tests/CMakeLists.txt.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "support.h"

namespace draft::test {

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};


/// Runs `draft ARGS` through the shell, capturing both streams.
inline CliRun run_cli(const std::string& args) {
  TempDir dir;
  const std::string cmd = std::string(DRAFT_CLI_PATH) + " " + args + " >" + dir.file("out") + " 2>" + dir.file("err");
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir.file("out"));
  r.err = slurp(dir.file("err"));
  return r;
}

}  // namespace draft::test
