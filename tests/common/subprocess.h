// Running a program from a test as a user would (the built wick, mpirun): its output read line by line while it
// runs, so that a test can signal it at a given point (Ctrl-C after a checkpoint line, SIGKILL of a rank).
#pragma once
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace wick::test {

struct ProcessResult {
  int rc = -1;           // the exit code, or 128 + the signal that ended it; -1: it could not be started
  std::string out;       // stdout, where run_process sent it to a file (else empty: it is in `streamed`)
  std::string streamed;  // what was read line by line while it ran: stderr, or stdout and stderr interleaved
  double seconds = 0;    // wall time from start to exit
};

using OnLine = std::function<void(const std::string& line, pid_t pid)>;

// Runs args[0] (looked up in PATH when it holds no '/') with args[1..]. Its stderr is read line by line,
// each line passed to on_line, and kept in `streamed`. stdout_file empty: stdout goes into the same pipe
// (`streamed` then holds both, interleaved as written; `out` stays empty); otherwise stdout goes to that
// file, which is read into `out` and removed once the program has ended.
ProcessResult run_process(const std::vector<std::string>& args, const OnLine& on_line = nullptr,
                          const std::string& stdout_file = "");

}  // namespace wick::test
