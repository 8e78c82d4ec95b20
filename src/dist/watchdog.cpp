#include "dist/watchdog.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/env.h"

namespace wick::dist {

static int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Watchdog::Watchdog(int rank) : rank_(rank), timeout_s_(600) {
  timeout_s_ = env_number("WICK_DIST_TIMEOUT", 0.001, 1e9, "a number of seconds").value_or(timeout_s_);
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  quit_ = true;
  if (thread_.joinable()) thread_.join();
}

void Watchdog::loop() {
  while (!quit_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int64_t t0 = started_ns_.load();
    if (t0 == 0) continue;
    const double waited = static_cast<double>(now_ns() - t0) * 1e-9;
    if (waited < timeout_s_) continue;
    const char* what = what_.load();
    std::fprintf(stderr,
                 "wick: error: rank %d waited %.0f s in %s for the other ranks: a rank died or hangs; ending this "
                 "rank (the deadline is WICK_DIST_TIMEOUT=%.0f seconds)\n",
                 rank_, waited, what ? what : "a collective", timeout_s_);
    std::fflush(stderr);
    _exit(1);
  }
}

Watchdog::Scope::Scope(Watchdog& w, const char* what) : w_(w) {
  w_.what_ = what;
  w_.started_ns_ = now_ns();
}

Watchdog::Scope::~Scope() { w_.started_ns_ = 0; }

}  // namespace wick::dist
