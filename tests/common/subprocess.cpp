#include "common/subprocess.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/input_file.h"

namespace wick::test {

ProcessResult run_process(const std::vector<std::string>& args, const OnLine& on_line, const std::string& stdout_file) {
  ProcessResult r;
  if (args.empty()) return r;
  // Everything that allocates happens before fork: the child of a threaded process may only make
  // async-signal-safe calls before exec.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe(pipefd) != 0) return r;
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return r;
  }
  if (pid == 0) {
    const int o = stdout_file.empty() ? pipefd[1] : open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, STDOUT_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    close(pipefd[0]);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(pipefd[1]);
  FILE* e = fdopen(pipefd[0], "r");
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, e)) > 0) {
    r.streamed.append(line, n);
    if (on_line) on_line(std::string(line, n), pid);
  }
  std::free(line);
  std::fclose(e);
  int status = 0;
  waitpid(pid, &status, 0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!stdout_file.empty()) {
    if (std::filesystem::exists(stdout_file)) r.out = read_file(stdout_file);
    std::filesystem::remove(stdout_file);
  }
  return r;
}

}  // namespace wick::test
