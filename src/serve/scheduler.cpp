#include "serve/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace wick::serve {

bool Request::wait_take(std::string& out, std::vector<int32_t>* ids, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return done_ || !text_.empty() || !ids_.empty(); });
  out += text_;
  text_.clear();
  if (ids) ids->insert(ids->end(), ids_.begin(), ids_.end());
  ids_.clear();
  return done_;
}

void Request::cancel() { cancelled_ = true; }

void Request::publish(const std::string& text, int32_t id) {
  std::lock_guard<std::mutex> lk(mu_);
  text_ += text;
  if (id >= 0) ids_.push_back(id);
  cv_.notify_all();
}

void Request::finish(const std::string& reason, const std::string& err, int status) {
  std::lock_guard<std::mutex> lk(mu_);
  finish_reason = reason;
  error = err;
  error_status = status;
  done_ = true;
  cv_.notify_all();
}

int64_t kv_tokens_needed(const Request& r, const ModelConfig& c) {
  const int64_t n = static_cast<int64_t>(r.prompt.size());
  return std::min<int64_t>(n + std::max<int64_t>(r.opt.gen.max_new_tokens, 0), c.max_position_embeddings);
}

Scheduler::Scheduler(CausalLM& m, const Tokenizer* tok, SchedulerLimits lim, Metrics& metrics)
    : m_(m), tok_(tok), lim_(lim), metrics_(metrics), forward_(m) {
  if (lim_.max_batch < 1) throw Error("must be at least 1", "--max-batch");
  if (lim_.max_queue < 0) throw Error("must be >= 0", "--max-queue");
  if (lim_.max_kv_tokens < 0) throw Error("must be >= 0", "--max-kv-tokens");
  if (lim_.max_step_tokens < 0) throw Error("must be >= 0", "--max-step-tokens");
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::submit(std::shared_ptr<Request> r) {
  const int64_t need = kv_tokens_needed(*r, m_.config());
  if (lim_.max_kv_tokens > 0 && need > lim_.max_kv_tokens)
    throw Error("prompt + max_tokens need " + std::to_string(need) + " KV cache tokens; this server holds at most " +
                    std::to_string(lim_.max_kv_tokens) + " per batch", "max_tokens", "ask for fewer tokens");
  std::lock_guard<std::mutex> lk(mu_);
  if (stopping_) throw QueueFull("the server is shutting down");
  if (static_cast<int64_t>(queue_.size()) >= lim_.max_queue)
    throw QueueFull("the request queue is full (" + std::to_string(lim_.max_queue) + " waiting)");
  queue_.push_back(std::move(r));
  metrics_.requests_total++;
  metrics_.queue_depth = static_cast<int64_t>(queue_.size());
  cv_.notify_all();
}

int64_t Scheduler::queued() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t Scheduler::running() const { return n_running_.load(); }

void Scheduler::admit() {
  std::lock_guard<std::mutex> lk(mu_);
  // Requests whose client left while queued end now.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      (*it)->finish("cancelled");
      metrics_.requests_cancelled++;
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  while (!queue_.empty() && static_cast<int64_t>(running_.size()) < lim_.max_batch) {
    std::shared_ptr<Request> r = queue_.front();
    const int64_t need = kv_tokens_needed(*r, m_.config());
    if (lim_.max_kv_tokens > 0 && kv_in_use_ + need > lim_.max_kv_tokens && !running_.empty()) break;  // FIFO: wait
    queue_.pop_front();
    Running run;
    run.req = r;
    try {
      run.kv_max = need;
      run.cache = std::make_unique<KVCache>(m_, 1, std::min<int64_t>(need, static_cast<int64_t>(r->prompt.size()) + kKvSlack));
    } catch (const std::exception& e) {  // device memory is full: this request fails, the server goes on
      r->finish("error", std::string("no memory for the KV cache of this request: ") + e.what(), 503);
      continue;
    }
    kv_in_use_ += need;
    run.seq = std::make_unique<SequenceDecoder>(r->prompt, r->opt, tok_);
    r->prompt_tokens = static_cast<int64_t>(r->prompt.size());
    running_.push_back(std::move(run));
  }
  metrics_.queue_depth = static_cast<int64_t>(queue_.size());
}

void Scheduler::fail_running(const std::string& message, int status) {
  for (Running& r : running_) {
    kv_in_use_ -= r.kv_max;
    r.req->finish("error", message, status);
  }
  running_.clear();
  n_running_ = 0;
}

void Scheduler::end(Running& r, const std::string& reason) {
  kv_in_use_ -= r.kv_max;
  r.req->completion_tokens = static_cast<int64_t>(r.seq->generated().size());
  if (reason == "cancelled") {
    metrics_.requests_cancelled++;
  } else {
    metrics_.requests_ok++;
    metrics_.request_latency.observe(std::chrono::duration<double>(Clock::now() - r.req->arrival).count());
  }
  r.req->finish(reason);
}

void Scheduler::grow_cache(Running& r, int64_t tokens) {
  const int64_t want = r.cache->length() + tokens, cap = r.cache->capacity();
  if (want <= cap) return;
  const int64_t grown = std::min(r.kv_max, std::max(want, 2 * cap));
  auto bigger = std::make_unique<KVCache>(m_, 1, grown);
  const int64_t len = r.cache->length(), KV = m_.config().kv_dim();
  for (size_t l = 0; l < static_cast<size_t>(m_.config().num_layers); l++) {
    bigger->k(l).view({grown, KV}).narrow0(0, len).copy_from(r.cache->k(l).view({cap, KV}).narrow0(0, len));
    bigger->v(l).view({grown, KV}).narrow0(0, len).copy_from(r.cache->v(l).view({cap, KV}).narrow0(0, len));
  }
  bigger->advance(len);
  r.cache = std::move(bigger);
}

bool Scheduler::step() {
  // Leavers first: a client that went away frees its slot for a queued request in this very step.
  for (Running& r : running_)
    if (r.req->cancelled()) end(r, "cancelled");
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](const Running& r) { return r.req->cancelled(); }),
                 running_.end());
  admit();
  n_running_ = static_cast<int64_t>(running_.size());
  metrics_.batch_size = static_cast<int64_t>(running_.size());
  if (running_.empty()) return false;

  // This step's chunks: one token of every decoding sequence, then prompt pieces within the token budget.
  struct Planned {
    size_t run;
    std::vector<int32_t> ids;
  };
  std::vector<Planned> plan;
  int64_t budget = lim_.max_step_tokens > 0 ? lim_.max_step_tokens : INT64_MAX;
  for (size_t i = 0; i < running_.size(); i++)
    if (running_[i].prefilled == running_[i].req->prompt.size()) {
      plan.push_back({i, {running_[i].last}});
      budget--;
    }
  bool prefilling = false;  // one prompt always advances, even when the decodes fill the budget
  for (size_t i = 0; i < running_.size(); i++) {
    const Running& r = running_[i];
    const int64_t left = static_cast<int64_t>(r.req->prompt.size() - r.prefilled);
    if (left == 0) continue;
    const int64_t take = std::min(left, std::max<int64_t>(budget, prefilling ? 0 : 1));
    if (take <= 0) continue;
    prefilling = true;
    budget -= take;
    const auto from = r.req->prompt.begin() + static_cast<std::ptrdiff_t>(r.prefilled);
    plan.push_back({i, std::vector<int32_t>(from, from + take)});
  }
  // Adjacent rows per adapter (the grouped adapter GEMMs in BatchForward); stable, so arrival order stays.
  std::stable_sort(plan.begin(), plan.end(), [&](const Planned& a, const Planned& b) {
    return running_[a.run].req->adapter.get() < running_[b.run].req->adapter.get();
  });
  std::vector<SeqChunk> chunks;
  chunks.reserve(plan.size());
  try {
    for (const Planned& p : plan) grow_cache(running_[p.run], static_cast<int64_t>(p.ids.size()));
  } catch (const std::exception& e) {  // device memory is full: fail the running requests, keep serving
    fail_running(std::string("no memory to grow the KV cache: ") + e.what(), 503);
    return true;
  }
  for (Planned& p : plan) chunks.push_back({running_[p.run].cache.get(), std::move(p.ids), running_[p.run].req->adapter.get()});
  try {
    forward_.run(chunks, logits_);
  } catch (const std::exception& e) {
    fail_running(std::string("generation failed: ") + e.what(), 500);
    return true;
  }
  metrics_.decode_steps++;
  metrics_.step_batch.observe(static_cast<double>(running_.size()));
  const int64_t V = m_.config().vocab_size;
  const Clock::time_point now = Clock::now();
  for (size_t k = 0; k < plan.size(); k++) {
    Running& r = running_[plan[k].run];
    const bool prefill = r.prefilled < r.req->prompt.size();
    if (prefill) {
      r.prefilled += chunks[k].ids.size();
      metrics_.prompt_tokens += chunks[k].ids.size();
      if (r.prefilled < r.req->prompt.size()) continue;  // more of the prompt next step
      metrics_.ttft.observe(std::chrono::duration<double>(now - r.req->arrival).count());
    } else {
      metrics_.per_token.observe(std::chrono::duration<double>(now - r.last_token).count());
    }
    r.last_token = now;
    const int32_t next = r.seq->sample(logits_.data() + static_cast<int64_t>(k) * V, V);
    std::string piece = r.seq->push(next);
    metrics_.completion_tokens++;
    r.last = next;
    const bool full = r.cache->length() >= r.kv_max;
    if (r.seq->finished() || full) piece += r.seq->flush();
    r.req->publish(piece, next);
    if (r.seq->finished()) end(r, r.seq->finish_reason());
    else if (full) end(r, "length");  // the model's context is full
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [](const Running& r) { return r.req->done(); }),
                 running_.end());
  n_running_ = static_cast<int64_t>(running_.size());
  metrics_.batch_size = static_cast<int64_t>(running_.size());
  return true;
}

void Scheduler::start() {
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !running_.empty(); });
        if (stopping_) break;
      }
      try {
        step();
      } catch (const std::exception& e) {  // step() fails requests itself; nothing may end this thread
        std::fprintf(stderr, "wick serve: scheduler step failed: %s\n", e.what());
      }
    }
  });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& q : queue_) q->finish("error", "the server is shutting down", 503);
  queue_.clear();
  fail_running("the server is shutting down", 503);
}

}  // namespace wick::serve
