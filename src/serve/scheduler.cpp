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

namespace {
// Checked before the pool is made (the pool's size comes from them).
const SchedulerLimits& checked(const SchedulerLimits& lim) {
  if (lim.max_batch < 1) throw Error("must be at least 1", "--max-batch");
  if (lim.max_queue < 0) throw Error("must be >= 0", "--max-queue");
  if (lim.max_kv_tokens < 0) throw Error("must be >= 0", "--max-kv-tokens");
  if (lim.max_step_tokens < 0) throw Error("must be >= 0", "--max-step-tokens");
  if (lim.kv_cache_tokens < 0) throw Error("must be >= 0 (0: the default)", "--kv-cache-tokens");
  return lim;
}
}  // namespace

Scheduler::Scheduler(CausalLM& m, const Tokenizer* tok, SchedulerLimits lim, Metrics& metrics)
    : m_(m), tok_(tok), lim_(checked(lim)), metrics_(metrics),
      pool_(std::make_unique<KvPool>(m, lim_.kv_cache_tokens > 0 ? lim_.kv_cache_tokens
                                                                 : default_kv_cache_tokens(m.config(), lim_.max_batch))),
      forward_(m, *pool_) {
  metrics_.kv_blocks_total = pool_->blocks();
  metrics_.kv_blocks_used = 0;
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::submit(std::shared_ptr<Request> r) {
  const int64_t need = kv_tokens_needed(*r, m_.config());
  if (need > pool_->capacity_tokens())
    throw Error("prompt + max_tokens need " + std::to_string(need) + " KV cache tokens; this server's KV cache holds " +
                    std::to_string(pool_->capacity_tokens()) + " (--kv-cache-tokens)",
                "max_tokens", "ask for fewer tokens");
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
  // Requests whose client left while queued (or preempted) end now.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      (*it)->finish("cancelled");
      metrics_.requests_cancelled++;
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = preempted_.begin(); it != preempted_.end();) {
    if (it->req->cancelled()) {
      it->req->completion_tokens = static_cast<int64_t>(it->seq->generated().size());
      it->req->finish("cancelled");
      metrics_.requests_cancelled++;
      it = preempted_.erase(it);
    } else {
      ++it;
    }
  }
  // Preempted sequences first (oldest first), then the queue, FIFO: the first that does not fit stops both.
  while (static_cast<int64_t>(running_.size()) < lim_.max_batch && (!preempted_.empty() || !queue_.empty())) {
    const bool resume = !preempted_.empty();
    Running run;
    if (resume) {
      run = std::move(preempted_.front());
    } else {
      run.req = queue_.front();
      run.kv_max = kv_tokens_needed(*run.req, m_.config());
      run.feed = run.req->prompt;
    }
    if (lim_.max_kv_tokens > 0 && kv_in_use_ + run.kv_max > lim_.max_kv_tokens && !running_.empty()) {
      if (resume) preempted_.front() = std::move(run);
      break;  // FIFO: wait
    }
    // Its prompt's blocks and one block of decode room (fewer when max_tokens needs less) must be free.
    const int64_t want = std::min<int64_t>(static_cast<int64_t>(run.feed.size()) + kAdmitDecodeRoom, run.kv_max);
    if (!pool_->grow(run.kv, want)) {
      if (resume) preempted_.front() = std::move(run);
      break;
    }
    if (resume) {
      preempted_.pop_front();
    } else {
      queue_.pop_front();
      run.seq = std::make_unique<SequenceDecoder>(run.req->prompt, run.req->opt, tok_);
      run.req->prompt_tokens = static_cast<int64_t>(run.req->prompt.size());
      run.order = ++admissions_;
    }
    kv_in_use_ += run.kv_max;
    running_.push_back(std::move(run));
  }
  metrics_.queue_depth = static_cast<int64_t>(queue_.size());
  metrics_.kv_blocks_used = pool_->used_blocks();
}

bool Scheduler::make_room(size_t i, int64_t tokens) {
  while (!pool_->grow(running_[i].kv, tokens)) {
    size_t newest = 0;
    for (size_t j = 1; j < running_.size(); j++)
      if (running_[j].order > running_[newest].order) newest = j;
    preempt(newest);
    if (newest == i) return false;
  }
  return true;
}

void Scheduler::preempt(size_t i) {
  Running& r = running_[i];
  pool_->release(r.kv);
  kv_in_use_ -= r.kv_max;
  // Its next prefill: the prompt and what it generated (the last sampled token included: its K and V were
  // never computed), after which it samples its next token as a decode step would have.
  r.feed = r.req->prompt;
  r.feed.insert(r.feed.end(), r.seq->generated().begin(), r.seq->generated().end());
  r.prefilled = 0;
  metrics_.preemptions++;
  auto at = std::find_if(preempted_.begin(), preempted_.end(), [&](const Running& p) { return p.order > r.order; });
  preempted_.insert(at, std::move(r));
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
}

void Scheduler::fail_running(const std::string& message, int status) {
  for (Running& r : running_) {
    kv_in_use_ -= r.kv_max;
    pool_->release(r.kv);
    r.req->finish("error", message, status);
  }
  running_.clear();
  for (Running& r : preempted_) r.req->finish("error", message, status);  // they hold no blocks
  preempted_.clear();
  n_running_ = 0;
  metrics_.kv_blocks_used = pool_->used_blocks();
}

void Scheduler::end(Running& r, const std::string& reason) {
  kv_in_use_ -= r.kv_max;
  pool_->release(r.kv);
  r.req->completion_tokens = static_cast<int64_t>(r.seq->generated().size());
  if (reason == "cancelled") {
    metrics_.requests_cancelled++;
  } else {
    metrics_.requests_ok++;
    metrics_.request_latency.observe(std::chrono::duration<double>(Clock::now() - r.req->arrival).count());
  }
  r.req->finish(reason);
}

bool Scheduler::step() {
  // Leavers first: a client that went away frees its slot and blocks for a queued request in this very step.
  for (Running& r : running_)
    if (r.req->cancelled()) end(r, "cancelled");
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](const Running& r) { return r.req->cancelled(); }),
                 running_.end());
  admit();
  // Every decoding sequence's next token needs a slot: oldest first, preempting the newest when the pool is full.
  std::vector<size_t> by_age(running_.size());
  for (size_t i = 0; i < by_age.size(); i++) by_age[i] = i;
  std::sort(by_age.begin(), by_age.end(), [&](size_t a, size_t b) { return running_[a].order < running_[b].order; });
  std::vector<uint64_t> decoding;  // by admission number: indices shift as preempted sequences leave running_
  for (size_t i : by_age)
    if (running_[i].prefilled == running_[i].feed.size()) decoding.push_back(running_[i].order);
  for (uint64_t o : decoding) {
    const auto it = std::find_if(running_.begin(), running_.end(), [&](const Running& r) { return r.order == o; });
    if (it == running_.end()) continue;  // preempted by an older one
    make_room(static_cast<size_t>(it - running_.begin()), it->kv.length + 1);
  }
  n_running_ = static_cast<int64_t>(running_.size());
  metrics_.batch_size = static_cast<int64_t>(running_.size());
  metrics_.kv_blocks_used = pool_->used_blocks();
  if (running_.empty()) return !preempted_.empty();

  // This step's chunks: one token of every decoding sequence, then prefill pieces within the token budget.
  struct Planned {
    size_t run;
    std::vector<int32_t> ids;
  };
  std::vector<Planned> plan;
  int64_t budget = lim_.max_step_tokens > 0 ? lim_.max_step_tokens : INT64_MAX;
  for (size_t i = 0; i < running_.size(); i++)
    if (running_[i].prefilled == running_[i].feed.size()) {
      plan.push_back({i, {running_[i].last}});
      budget--;
    }
  bool prefilling = false;  // one prompt always advances, even when the decodes fill the budget
  for (size_t i = 0; i < running_.size(); i++) {
    const Running& r = running_[i];
    const int64_t left = static_cast<int64_t>(r.feed.size() - r.prefilled);
    if (left == 0) continue;
    const int64_t take = std::min(left, std::max<int64_t>(budget, prefilling ? 0 : 1));
    if (take <= 0) continue;
    prefilling = true;
    budget -= take;
    const auto from = r.feed.begin() + static_cast<std::ptrdiff_t>(r.prefilled);
    plan.push_back({i, std::vector<int32_t>(from, from + take)});
  }
  // Adjacent rows per adapter (the grouped adapter GEMMs in BatchForward); stable, so arrival order stays.
  std::stable_sort(plan.begin(), plan.end(), [&](const Planned& a, const Planned& b) {
    return running_[a.run].req->adapter.get() < running_[b.run].req->adapter.get();
  });
  std::vector<SeqChunk> chunks;
  chunks.reserve(plan.size());
  for (Planned& p : plan) chunks.push_back({&running_[p.run].kv, std::move(p.ids), running_[p.run].req->adapter.get()});
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
    const bool prefill = r.prefilled < r.feed.size();
    if (prefill) {
      r.prefilled += chunks[k].ids.size();
      if (!r.started) metrics_.prompt_tokens += chunks[k].ids.size();
      if (r.prefilled < r.feed.size()) continue;  // more of the prompt next step
      if (!r.started) metrics_.ttft.observe(std::chrono::duration<double>(now - r.req->arrival).count());
    } else {
      metrics_.per_token.observe(std::chrono::duration<double>(now - r.last_token).count());
    }
    r.started = true;
    r.last_token = now;
    const int32_t next = r.seq->sample(logits_.data() + static_cast<int64_t>(k) * V, V);
    std::string piece = r.seq->push(next);
    metrics_.completion_tokens++;
    r.last = next;
    const bool full = r.kv.length >= r.kv_max;
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
  metrics_.kv_blocks_used = pool_->used_blocks();
  return true;
}

void Scheduler::start() {
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !running_.empty() || !preempted_.empty(); });
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
