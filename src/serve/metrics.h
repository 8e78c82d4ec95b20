// The server's counters and latency histograms, rendered in the Prometheus text format (GET /metrics).
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace wick::serve {

// A cumulative histogram with fixed upper bounds (seconds), as Prometheus wants it.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // "# HELP", "# TYPE" and the _bucket{le=...}, _sum and _count lines of metric `name`.
  std::string render(const std::string& name, const std::string& help) const;
  uint64_t count() const;
  double quantile(double q) const;  // from the buckets (upper bound of the bucket holding q); 0 when empty
  void clear();                     // back to no observations

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket, the last one +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

struct Metrics {
  std::atomic<uint64_t> requests_total{0};     // accepted into the queue
  std::atomic<uint64_t> requests_ok{0};        // finished with a result
  std::atomic<uint64_t> requests_failed{0};    // 4xx/5xx answered by the API routes
  std::atomic<uint64_t> requests_cancelled{0}; // the client went away
  std::atomic<uint64_t> prompt_tokens{0}, completion_tokens{0};
  std::atomic<int64_t> queue_depth{0}, batch_size{0};
  std::atomic<uint64_t> decode_steps{0};
  std::atomic<uint64_t> preemptions{0};                       // sequences preempted for KV blocks
  std::atomic<int64_t> kv_blocks_used{0}, kv_blocks_total{0};  // the paged KV cache (serve/kv_pool.h)
  Histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
  Histogram per_token{{0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1}};
  Histogram request_latency{{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}};
  Histogram step_batch{{1, 2, 4, 8, 16, 32, 64, 128, 256}};  // sequences per decode step

  std::string render() const;
  // Every counter and histogram back to zero, but kv_blocks_total (after the scheduler's warm-up).
  void clear();
};

}  // namespace wick::serve
