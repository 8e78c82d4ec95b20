// A deadline on the collectives of one rank: when one waits longer than WICK_DIST_TIMEOUT seconds (default
// 600) for its peers, the rank prints what it was waiting in and exits 1, so its launcher ends the job. It
// covers launchers that leave the other ranks running when one dies (srun without --kill-on-bad-exit) and
// a peer that hangs without dying; mpirun and `wick train --gpus` already end the job when any rank exits.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>

namespace wick::dist {

class Watchdog {
 public:
  explicit Watchdog(int rank);
  ~Watchdog();
  double timeout_s() const { return timeout_s_; }
  // One collective: armed for its duration (what: a static string naming it).
  class Scope {
   public:
    Scope(Watchdog& w, const char* what);
    ~Scope();

   private:
    Watchdog& w_;
  };

 private:
  void loop();
  int rank_;
  double timeout_s_;
  std::atomic<int64_t> started_ns_{0};  // 0: no collective in flight
  std::atomic<const char*> what_{nullptr};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace wick::dist
