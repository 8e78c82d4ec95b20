#include "dist/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"

namespace wick::dist {

namespace {

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_signals = 0;

extern "C" void forward_stop(int) {
  // First: SIGUSR1, which mpirun forwards to the ranks (they checkpoint and stop). Then: end the job now.
  if (g_child <= 0) return;
  const int seen = g_signals;
  g_signals = seen + 1;
  if (seen == 0) kill(g_child, SIGUSR1);
  else kill(-g_child, SIGTERM);
}

std::vector<std::string> own_arguments() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i < all.size(); i++)
    if (all[i] == '\0') args.push_back(all.substr(start, i - start)), start = i + 1;
  return args;
}

}  // namespace

int launch_local_ranks(int ranks) {
  const char* env_mpirun = std::getenv("WICK_MPIRUN");
  const std::string mpirun = env_mpirun && *env_mpirun ? env_mpirun : "mpirun";
  std::vector<std::string> own = own_arguments();
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0 || own.empty()) throw Error("cannot read this process's own command line", "/proc/self", "run the ranks with mpirun -np N");
  exe[n] = '\0';
  std::vector<std::string> args = {mpirun, "-np", std::to_string(ranks), "--bind-to", "none", "--oversubscribe"};
  if (geteuid() == 0) args.push_back("--allow-run-as-root");  // asked for by the user who runs wick as root
  args.push_back(exe);
  args.insert(args.end(), own.begin() + 1, own.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int ready[2];  // closed on exec: tells the parent whether execvp worked
  if (pipe(ready) != 0) throw Error(std::string("pipe: ") + std::strerror(errno), "--gpus");
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("fork: ") + std::strerror(errno), "--gpus");
  if (pid == 0) {
    close(ready[0]);
    fcntl(ready[1], F_SETFD, FD_CLOEXEC);
    setpgid(0, 0);  // the terminal's Ctrl-C reaches this launcher only; it decides what mpirun gets
    execvp(argv[0], argv.data());
    const int e = errno;
    (void)!write(ready[1], &e, sizeof e);
    _exit(127);
  }
  close(ready[1]);
  int exec_errno = 0;
  const bool failed = read(ready[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  close(ready[0]);
  if (failed) {
    waitpid(pid, nullptr, 0);
    throw Error("cannot start " + mpirun + ": " + std::strerror(exec_errno), "--gpus",
                "install Open MPI (apt-get install openmpi-bin) or name mpirun in WICK_MPIRUN");
  }
  g_child = pid;
  struct sigaction sa {};
  sa.sa_handler = forward_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace wick::dist
