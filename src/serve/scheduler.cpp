#include "serve/scheduler.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/sampling_pool.h"

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
      forward_(m, *pool_),
      seen_pool_(Tensor::zeros({std::min(lim_.max_batch, kSeenPoolFirstRows), m.config().vocab_size}, DType::I32,
                               m.device())) {
  // Rows taken from the back: row 0 first.
  for (int64_t i = seen_pool_.dim(0) - 1; i >= 0; i--) free_seen_.push_back(static_cast<int32_t>(i));
  metrics_.kv_blocks_total = pool_->blocks();
  metrics_.kv_blocks_used = 0;
}

Scheduler::~Scheduler() { stop(); }

int64_t Scheduler::kv_tokens_per_request() const {
  const int64_t cap = pool_->capacity_tokens();
  return lim_.max_kv_tokens > 0 ? std::min(cap, lim_.max_kv_tokens) : cap;
}

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

int64_t Scheduler::warm_up() {
  const int64_t budget = lim_.max_step_tokens > 0 ? lim_.max_step_tokens : kWarmUpTokens;
  const int64_t ctx = m_.config().max_position_embeddings;
  const int64_t seqs = std::max<int64_t>(1, std::min(lim_.max_batch, lim_.max_queue));
  // Each sequence's prompt, within the context, the KV cache (with a block of decode room each) and the budget.
  const int64_t fit = pool_->capacity_tokens() / seqs - kAdmitDecodeRoom - kWarmUpNewTokens;
  const int64_t each = std::min({budget / seqs, ctx - kWarmUpNewTokens, fit});
  if (each < 1 || lim_.max_queue < 1) return 0;
  const int32_t V = static_cast<int32_t>(m_.config().vocab_size);
  for (int64_t i = 0; i < seqs; i++) {
    auto r = std::make_shared<Request>();
    for (int64_t j = 0; j < each; j++) r->prompt.push_back(static_cast<int32_t>((i * 7919 + j * 104729) % V));
    r->opt.gen.max_new_tokens = kWarmUpNewTokens;
    r->opt.gen.sampling.temperature = 0.0f;
    submit(r);
  }
  while (step()) {
  }
  metrics_.clear();
  metrics_.kv_blocks_used = pool_->used_blocks();
  return seqs * each;
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
      free_seen_row(*it);
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
      take_seen_row(run);
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

void Scheduler::grow_seen_pool() {
  const int64_t rows = seen_pool_.dim(0), grown = std::min(lim_.max_batch, 2 * rows);
  if (grown <= rows) return;
  Tensor bigger = Tensor::zeros({grown, seen_pool_.dim(1)}, DType::I32, seen_pool_.device());
  Tensor old_rows = bigger.narrow0(0, rows);
  old_rows.copy_from(seen_pool_);  // stream-ordered: queued steps that read the old pool finish first
  seen_pool_ = bigger;
  for (int64_t i = grown - 1; i >= rows; i--) free_seen_.push_back(static_cast<int32_t>(i));  // lowest first
}

void Scheduler::take_seen_row(Running& r) {
  if (r.seq->repetition_penalty() == 1.0f) return;  // sample_tokens reads no history then
  if (free_seen_.empty()) grow_seen_pool();
  WICK_CHECK(!free_seen_.empty(), "no free history row: running + preempted sequences exceed max_batch");
  r.seen_row = free_seen_.back();
  free_seen_.pop_back();
  for (const int32_t id : r.req->prompt) pending_marks_.insert(pending_marks_.end(), {r.seen_row, id});
}

void Scheduler::free_seen_row(Running& r) {
  if (r.seen_row < 0) return;
  // Its prompt's marks not yet made (it never reached a step) must not land in the row's next owner.
  size_t kept = 0;
  for (size_t j = 0; j < pending_marks_.size(); j += 2)
    if (pending_marks_[j] != r.seen_row) {
      pending_marks_[kept++] = pending_marks_[j];
      pending_marks_[kept++] = pending_marks_[j + 1];
    }
  pending_marks_.resize(kept);
  Tensor row = seen_pool_.narrow0(r.seen_row, 1);
  fill(row, 0.0f);
  free_seen_.push_back(r.seen_row);
  r.seen_row = -1;
}

void Scheduler::fail_running(const std::string& message, int status) {
  for (Running& r : running_) {
    kv_in_use_ -= r.kv_max;
    pool_->release(r.kv);
    r.req->finish("error", message, status);
  }
  for (Running& r : preempted_) r.req->finish("error", message, status);  // they hold no blocks
  // Their history rows back, cleared; if the device itself failed, the whole pool is cleared again.
  pending_marks_.clear();
  try {
    for (Running& r : running_) free_seen_row(r);
    for (Running& r : preempted_) free_seen_row(r);
  } catch (const std::exception&) {  // the device failed: start the pool afresh (if it can be cleared at all)
    free_seen_.clear();
    for (int64_t i = seen_pool_.dim(0) - 1; i >= 0; i--) free_seen_.push_back(static_cast<int32_t>(i));
    try {
      fill(seen_pool_, 0.0f);
    } catch (const std::exception&) {
    }
  }
  running_.clear();
  preempted_.clear();
  n_running_ = 0;
  metrics_.kv_blocks_used = pool_->used_blocks();
}

void Scheduler::end(Running& r, const std::string& reason, const std::string& error) {
  kv_in_use_ -= r.kv_max;
  pool_->release(r.kv);
  free_seen_row(r);
  r.req->completion_tokens = static_cast<int64_t>(r.seq->generated().size());
  if (!error.empty()) {
    r.req->finish("error", error, 500);
    return;
  }
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
  // Prompts that start this step (nothing cached yet) last, so that BatchForward attends them with the dense
  // kernels (see batch_forward.h); within each part, adjacent rows per adapter (one adapter segment each).
  // Stable, so arrival order stays.
  std::stable_sort(plan.begin(), plan.end(), [&](const Planned& a, const Planned& b) {
    const Running &ra = running_[a.run], &rb = running_[b.run];
    const bool fa = ra.kv.length == 0, fb = rb.kv.length == 0;
    if (fa != fb) return fb;
    return ra.req->adapter.get() < rb.req->adapter.get();
  });
  std::vector<SeqChunk> chunks;
  chunks.reserve(plan.size());
  std::vector<char> samples;  // chunk k ends its sequence's feed: its row is sampled
  std::vector<size_t> run_of;
  for (Planned& p : plan) {
    const Running& r = running_[p.run];
    samples.push_back(r.prefilled == r.feed.size() || r.prefilled + p.ids.size() == r.feed.size());
    run_of.push_back(p.run);
    chunks.push_back({&running_[p.run].kv, std::move(p.ids), r.req->adapter.get()});
  }
  try {
    forward_and_sample(chunks, samples, run_of);
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
    int32_t next = -1;
    try {
      const int32_t code = ids_[k];
      float bad = 0.0f;  // the logit a NaN / +inf code points at, for the error's wording
      if (code < 0 && code != INT32_MIN) {
        const Tensor& lg = forward_.logits();
        const int64_t at = static_cast<int64_t>(k) * V + (-1 - static_cast<int64_t>(code));
        device_copy(&bad, Device::cpu(), static_cast<const float*>(lg.raw()) + at, lg.device(), sizeof bad);
      }
      next = r.seq->sampled(code, bad);
    } catch (const std::exception& e) {  // this request's logits are bad (the model's fault): it alone fails
      end(r, "error", std::string("generation failed: ") + e.what());
      continue;
    }
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

void Scheduler::forward_and_sample(std::vector<SeqChunk>& chunks, const std::vector<char>& samples,
                                   const std::vector<size_t>& run_of) {
  const Device dev = m_.device();
  const int64_t R = static_cast<int64_t>(chunks.size());
  // The upload, staged on the host: params [R, 16] | history rows [R] | ids [R] | penalty pairs | prompt marks.
  std::vector<std::pair<int32_t, float>> pen;
  std::vector<int32_t>& up = up_i32_;
  up.assign(static_cast<size_t>(R * (kSampleRowWords + 2)), 0);
  up_f32_.clear();
  std::vector<int32_t> pen_at;
  SampleRow skip;  // a row whose chunk ends mid-prompt: greedy, no history, no draw; its token is ignored
  skip.temperature = 0.0f;
  for (int64_t k = 0; k < R; k++) {
    const Running& r = running_[run_of[static_cast<size_t>(k)]];
    const SampleRow row = samples[static_cast<size_t>(k)] ? r.seq->row() : skip;
    std::memcpy(up.data() + k * kSampleRowWords, &row, sizeof row);
    up[static_cast<size_t>(R * kSampleRowWords + k)] = samples[static_cast<size_t>(k)] ? r.seen_row : -1;
    if (!samples[static_cast<size_t>(k)]) continue;
    pen.clear();
    r.seq->openai_penalties(pen);
    for (const auto& [id, amount] : pen) {
      pen_at.insert(pen_at.end(), {static_cast<int32_t>(k), id});
      up_f32_.push_back(amount);
    }
  }
  const int64_t n_pen = static_cast<int64_t>(up_f32_.size()), n_mark = static_cast<int64_t>(pending_marks_.size() / 2);
  up.insert(up.end(), pen_at.begin(), pen_at.end());
  up.insert(up.end(), pending_marks_.begin(), pending_marks_.end());
  pending_marks_.clear();
  const int64_t total = static_cast<int64_t>(up.size());
  if (!step_i32_.defined() || step_i32_.numel() < total)
    step_i32_ = Tensor::empty({std::max<int64_t>(total, 2 * (step_i32_.defined() ? step_i32_.numel() : 0))}, DType::I32, dev);
  device_copy(step_i32_.raw(), dev, up.data(), Device::cpu(), static_cast<size_t>(total) * sizeof(int32_t));
  Tensor params = step_i32_.narrow0(0, R * kSampleRowWords).view({R, kSampleRowWords});
  const Tensor seen_rows = step_i32_.narrow0(R * kSampleRowWords, R);
  Tensor ids = step_i32_.narrow0(R * (kSampleRowWords + 1), R);
  const int64_t o_pen = R * (kSampleRowWords + 2), o_mark = o_pen + 2 * n_pen;
  if (n_mark > 0) mark_tokens(seen_pool_, step_i32_.narrow0(o_mark, 2 * n_mark).view({n_mark, 2}));
  Tensor amounts;
  if (n_pen > 0) {
    if (!step_f32_.defined() || step_f32_.numel() < n_pen) step_f32_ = Tensor::empty({2 * n_pen}, DType::F32, dev);
    amounts = step_f32_.narrow0(0, n_pen);
    device_copy(amounts.raw(), dev, up_f32_.data(), Device::cpu(), static_cast<size_t>(n_pen) * sizeof(float));
  }
  // Everything above was queued before the forward: the only wait for the device is the ids' copy below.
  Tensor& logits = forward_.run_device(chunks);
  if (n_pen > 0) subtract_at(logits, step_i32_.narrow0(o_pen, 2 * n_pen).view({n_pen, 2}), amounts);
  sample_tokens_pooled(logits, &seen_pool_, seen_rows, params, ids);
  ids_.resize(static_cast<size_t>(R));
  device_copy(ids_.data(), Device::cpu(), ids.raw(), dev, static_cast<size_t>(R) * sizeof(int32_t));
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
