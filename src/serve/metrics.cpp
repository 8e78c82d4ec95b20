#include "serve/metrics.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace wick::serve {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lk(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) i++;
  counts_[i]++;
  sum_ += v;
  n_++;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return n_;
}

double Histogram::quantile(double q) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (n_ == 0) return 0;
  const double want = q * static_cast<double>(n_);
  uint64_t acc = 0;
  for (size_t i = 0; i < bounds_.size(); i++) {
    acc += counts_[i];
    if (static_cast<double>(acc) >= want) return bounds_[i];
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

static std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lk(mu_);
  std::ostringstream o;
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  uint64_t acc = 0;
  for (size_t i = 0; i < bounds_.size(); i++) {
    acc += counts_[i];
    o << name << "_bucket{le=\"" << num(bounds_[i]) << "\"} " << acc << "\n";
  }
  o << name << "_bucket{le=\"+Inf\"} " << n_ << "\n";
  o << name << "_sum " << num(sum_) << "\n" << name << "_count " << n_ << "\n";
  return o.str();
}

void Histogram::clear() {
  std::lock_guard<std::mutex> lk(mu_);
  std::fill(counts_.begin(), counts_.end(), 0);
  sum_ = 0;
  n_ = 0;
}

void Metrics::clear() {
  for (std::atomic<uint64_t>* c : {&requests_total, &requests_ok, &requests_failed, &requests_cancelled, &prompt_tokens,
                                   &completion_tokens, &decode_steps, &preemptions})
    *c = 0;
  for (std::atomic<int64_t>* g : {&queue_depth, &batch_size, &kv_blocks_used}) *g = 0;
  for (Histogram* h : {&ttft, &per_token, &request_latency, &step_batch}) h->clear();
}

std::string Metrics::render() const {
  std::ostringstream o;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n" << name << " " << v << "\n";
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n" << name << " " << v << "\n";
  };
  counter("wick_requests_total", "Generation requests accepted into the queue.", requests_total);
  counter("wick_requests_succeeded_total", "Generation requests that finished with a result.", requests_ok);
  counter("wick_requests_failed_total", "Requests answered with an error status.", requests_failed);
  counter("wick_requests_cancelled_total", "Requests whose client disconnected before the end.", requests_cancelled);
  counter("wick_prompt_tokens_total", "Prompt tokens prefilled.", prompt_tokens);
  counter("wick_generation_tokens_total", "Tokens generated.", completion_tokens);
  counter("wick_decode_steps_total", "Batched forward steps run.", decode_steps);
  gauge("wick_queue_depth", "Requests waiting for a batch slot.", queue_depth);
  gauge("wick_batch_size", "Sequences in the running batch.", batch_size);
  counter("wick_preemptions_total", "Running sequences preempted (blocks freed, requeued) when the KV cache was full.", preemptions);
  gauge("wick_kv_cache_blocks_used", "Blocks of the paged KV cache held by running sequences.", kv_blocks_used);
  gauge("wick_kv_cache_blocks_total", "Blocks of the paged KV cache.", kv_blocks_total);
  o << ttft.render("wick_time_to_first_token_seconds", "Time from arrival to the first generated token.");
  o << per_token.render("wick_time_per_output_token_seconds", "Time between consecutive generated tokens of a request.");
  o << request_latency.render("wick_request_duration_seconds", "Time from arrival to the last token.");
  o << step_batch.render("wick_step_batch_size", "Sequences per batched forward step.");
  return o.str();
}

}  // namespace wick::serve
