// Continuous batching. Requests wait in a FIFO queue; between two forward steps the scheduler drops the
// requests whose client went away, admits queued ones while the batch has room (max_batch sequences, free
// blocks of the paged KV cache for the prompt plus one block of decode room, and the KV budget when one is
// set), then runs ONE BatchForward over every running sequence: a newcomer's prompt (its prefill, in chunks
// when max_step_tokens is set) and one token of each of the others; prompts that start in the step go last
// (BatchForward attends them with the dense kernel), and within each part the rows are ordered by adapter so
// each adapter's rows are adjacent (one segment each). Each sequence whose prompt is in then samples its next
// token; finished ones leave at once, giving their slot and their KV blocks back.
//
// Sampling stays on the model's device (the CPU twins when the model is on the CPU): the step's logits
// [chunks, V] are never copied. Before the forward, one upload carries each row's sample_tokens settings and
// draw counter, its history row, its OpenAI penalties and the prompts of newcomers to mark; after it, at most
// three launches (subtract_at for frequency/presence penalties, sample_tokens_pooled for every row) and one copy
// of the token ids [chunks] back (ops/sampling_pool.h). A row whose chunk ends mid-prompt is sampled greedily
// without history and ignored. The repetition penalty's history (prompt + generated, as infer's Sampler takes
// it) is a device row [V] i32 per sequence that uses the penalty, from a pool that starts at
// kSeenPoolFirstRows rows and doubles when a newcomer finds none free, up to max_batch (a row is 600 KB for
// Qwen's vocabulary: a server for 256 streams that few requests penalise keeps a few MB, not 155): marked with the
// prompt at admission and by sample_tokens with each token, kept through a preemption,
// cleared when the sequence ends. The host keeps each draw counter (SequenceDecoder) and sends it every step,
// so the tokens are those of SequenceDecoder::sample (the host rule) whatever the batch or a preemption.
//
// KV memory (serve/kv_pool.h): one pool of blocks sized at start (kv_cache_tokens), shared by all sequences.
// A request whose prompt + max_tokens exceeds the whole pool is refused at submit (wick::Error: HTTP 400); one
// that fits waits in the queue (or gets QueueFull: 429) until its prompt's blocks are free. When a decoding
// sequence needs a new block and none is free, the NEWEST running sequence is preempted (vLLM's recompute
// preemption): its blocks go back, and it waits ahead of the queue to be re-admitted with its prompt and the
// tokens it generated so far as its new prefill, then goes on sampling where it stopped (its sampler, penalties
// and streamed text are kept; the client sees no gap but the wait). The oldest sequence can therefore always
// grow to its limit, which fits the pool, so every request finishes.
//
// Threads: submit/cancel from any thread (the HTTP handlers); step() on the scheduler's own thread (start())
// or, in tests, on the caller's. The model is only touched by step().
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/causal_lm.h"
#include "serve/adapter_store.h"
#include "serve/batch_forward.h"
#include "serve/kv_pool.h"
#include "serve/metrics.h"
#include "serve/sequence.h"

namespace wick::serve {

using Clock = std::chrono::steady_clock;

// Rows of the repetition-penalty history pool at start (it doubles on demand up to max_batch).
constexpr int64_t kSeenPoolFirstRows = 8;

// One generation request and what it has produced so far; shared by its HTTP handler and the scheduler.
struct Request {
  std::vector<int32_t> prompt;
  SequenceOptions opt;                          // gen.max_new_tokens already fits the context
  std::shared_ptr<const ServeAdapter> adapter;  // kept until the request ends (unload-safe); null = base
  Clock::time_point arrival = Clock::now();

  // Waits up to `timeout` for news, then moves the released text into `out` (appending) and the new token
  // ids into `ids`. Returns true when the request is over (finish_reason or error set).
  bool wait_take(std::string& out, std::vector<int32_t>* ids, std::chrono::milliseconds timeout);
  void cancel();  // the client went away: the scheduler frees the slot before its next step
  bool cancelled() const { return cancelled_.load(); }
  bool done() {
    std::lock_guard<std::mutex> lk(mu_);
    return done_;
  }

  // Valid once wait_take returned true.
  std::string finish_reason;  // "stop" / "length" / "cancelled"
  std::string error;          // non-empty: the request failed (HTTP 500 / 503)
  int error_status = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0;

  // Scheduler side.
  void publish(const std::string& text, int32_t id);
  void finish(const std::string& reason, const std::string& error = "", int status = 0);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::vector<int32_t> ids_;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerLimits {
  int64_t max_batch = 8;      // sequences per step
  int64_t max_queue = 64;     // waiting requests; more are refused (HTTP 429)
  int64_t max_kv_tokens = 0;  // sum of the running sequences' worst-case KV needs (prompt + max tokens); 0 = no limit
  // Tokens of the paged KV cache, allocated once at start (rounded up to whole blocks); 0 = the default,
  // default_kv_cache_tokens (serve/kv_pool.h).
  int64_t kv_cache_tokens = 0;
  // Tokens per forward step (chunked prefill): every running decode gets its one token, prompts share the
  // rest, so a long prompt is prefilled over several steps instead of stalling everyone's next token.
  // 0 = no limit (a newcomer's whole prompt in one step).
  int64_t max_step_tokens = 0;
};

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Scheduler {
 public:
  Scheduler(CausalLM& m, const Tokenizer* tok, SchedulerLimits lim, Metrics& metrics);
  ~Scheduler();
  // Queues r. QueueFull when max_queue requests wait; wick::Error when r can never fit the KV cache or budget.
  void submit(std::shared_ptr<Request> r);
  void start();  // runs step() on a background thread until stop()
  // Ends the thread after the current step; requests still queued or running get error status 503.
  void stop();
  // One step: admit, forward, sample. False when there was nothing to run.
  bool step();
  // Before start() (the server calls it on CUDA before it listens): throwaway requests through the steps a
  // burst of new prompts takes, so that the first clients do not pay for what a process does once: CUDA loads
  // kernels lazily, cuBLASLt picks algorithms per shape, BatchForward grows its buffers. Without it the first
  // 64 clients of a load test (498-token prompts, H200) waited 215 ms p99 for their first token against 82 ms
  // later. Prompts filling one step's budget (max_step_tokens, or kWarmUpTokens with no budget) over
  // max_batch sequences, each then decoding kWarmUpNewTokens; the metrics are cleared after. Does nothing
  // when the KV cache or the queue limit cannot take even one such request. Returns the prompt tokens it ran.
  int64_t warm_up();
  static constexpr int64_t kWarmUpTokens = 8192, kWarmUpNewTokens = 3;
  int64_t queued() const;
  int64_t running() const;
  // Rows of the repetition-penalty history pool (for tests and metrics; only the scheduler thread changes it).
  int64_t history_rows() const { return seen_pool_.dim(0); }
  bool idle() const { return queued() == 0 && running() == 0; }
  const SchedulerLimits& limits() const { return lim_; }
  const KvPool& kv_pool() const { return *pool_; }
  // The most KV cache tokens one request may hold (prompt + max tokens): the pool's capacity, and --max-kv-tokens.
  int64_t kv_tokens_per_request() const;
  int64_t preempted() const { return static_cast<int64_t>(preempted_.size()); }  // waiting to resume

 private:
  struct Running {
    std::shared_ptr<Request> req;
    SeqBlocks kv;                   // its blocks of the pool
    std::unique_ptr<SequenceDecoder> seq;
    std::vector<int32_t> feed;      // tokens to prefill: the prompt (+ the tokens generated before a preemption)
    int64_t kv_max = 0;             // the KV tokens it may need (prompt + max tokens), reserved at admission
    size_t prefilled = 0;           // tokens of feed already in the cache
    int32_t last = -1;              // the last sampled token (decode input)
    uint64_t order = 0;             // admission number: the highest is the newest (preempted first)
    int32_t seen_row = -1;          // its history row of seen_pool_ (-1: no repetition penalty, no row)
    bool started = false;           // its first token is out (TTFT observed)
    Clock::time_point last_token;
  };
  // Blocks for `tokens` tokens of r, preempting the newest running sequences while too few are free. False when
  // r itself was the newest and got preempted.
  bool make_room(size_t i, int64_t tokens);
  void preempt(size_t i);  // running_[i]'s blocks back to the pool; it waits in preempted_ to resume
  // Blocks of decode room a newcomer must find free beside its prompt's.
  static constexpr int64_t kAdmitDecodeRoom = kKvBlockTokens;
  void admit();
  void end(Running& r, const std::string& reason, const std::string& error = "");
  // A history row for a newcomer that uses the repetition penalty, its prompt queued for marking; and back.
  void take_seen_row(Running& r);
  void free_seen_row(Running& r);
  // The forward and the batch's sampling (see the top): -> the token-or-code of every chunk, ids_.
  void forward_and_sample(std::vector<SeqChunk>& chunks, const std::vector<char>& samples,
                          const std::vector<size_t>& run_of);
  // Ends every running request with an error (HTTP status) and frees its KV budget; the server keeps serving.
  void fail_running(const std::string& message, int status);

  CausalLM& m_;
  const Tokenizer* tok_;
  SchedulerLimits lim_;
  Metrics& metrics_;
  std::unique_ptr<KvPool> pool_;
  BatchForward forward_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::vector<Running> running_;  // only the scheduler thread touches it
  std::deque<Running> preempted_;  // preempted, oldest admission first; resumed before the queue
  uint64_t admissions_ = 0;
  std::atomic<int64_t> n_running_{0};
  int64_t kv_in_use_ = 0;
  // Device sampling (the top comment): the history pool [rows <= max_batch, V] i32 and its free rows; the step's
  // upload (i32: params [R, 16] | history rows [R] | ids [R] | penalty pairs [n, 2] | prompt marks [m, 2];
  // f32: penalty amounts [n]) and its host staging; prompt marks waiting for the next step.
  Tensor seen_pool_;
  std::vector<int32_t> free_seen_;
  void grow_seen_pool();  // doubles seen_pool_ (up to max_batch rows), its new rows free and zero
  Tensor step_i32_, step_f32_;
  std::vector<int32_t> up_i32_, ids_;
  std::vector<float> up_f32_;
  std::vector<int32_t> pending_marks_;
  std::thread thread_;
  bool stopping_ = false;
};

// The KV capacity a request needs: prompt + max_new_tokens, capped at the model's context.
int64_t kv_tokens_needed(const Request& r, const ModelConfig& c);

}  // namespace wick::serve
