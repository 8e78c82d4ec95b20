// Token choice on the device: what a decode step needs so that its logits never leave the GPU. greedy_tokens is
// infer/sampler.cpp's greedy rule; sample_tokens is the whole of Hugging Face generate()'s sampling (the
// processors of infer/sampler.h, in its order, with its comparisons) and one seeded draw, per row, with per-row
// settings, so one launch serves a batch of sequences with different settings and a replayed CUDA graph needs
// no input from the host. infer's Sampler runs the same rule (the CPU twin's row function), so the host and
// the GPU give the same token for the same logits, settings, seed and draw number (ops/sampling_rule.h says how).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace wick {

// logits [R, V] f32 -> ids [R] i32 (=): per row, the first index of the maximum (torch.argmax) of the scores
// after the repetition penalty on the ids marked in seen [R, V] i32 (non-zero = in the history): s < 0 ?
// s * penalty : s / penalty, in f32, as HF's RepetitionPenaltyLogitsProcessor (and infer/sampler.cpp's
// greedy_token). penalty 1 = off; seen may then be null. With seen given, the chosen id is marked in it, so a
// decode loop replayed as a CUDA graph keeps its own history. A row with a NaN or +inf logit gets
// -(1 + the index of the first one) instead of a token, for the caller to report.
void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids);

// One row's settings and draw counter as sample_tokens reads them: params [R, kSampleRowWords] i32 holds one of
// these per row, bit for bit (make it with sample_row, upload with sample_rows_tensor).
struct SampleRow {
  float temperature = 1.0f;  // 0 = greedy (greedy_tokens' rule; no draw)
  int32_t top_k = 0;         // 0 = off; >= V: off
  float top_p = 1.0f;        // 1 = off
  float top_p_cut = 0.0f;    // 1 - top_p as Python computes it for the decimal written (sample_row sets it)
  float min_p = 0.0f;        // 0 = off
  float penalty = 1.0f;      // repetition penalty; 1 = off
  uint32_t seed_lo = 0, seed_hi = 0;
  uint32_t draws_lo = 0, draws_hi = 0;  // draws made so far; sample_tokens counts it up per sampled row
  uint32_t reserved[6] = {};
  uint64_t seed() const { return (uint64_t{seed_hi} << 32) | seed_lo; }
  uint64_t draws() const { return (uint64_t{draws_hi} << 32) | draws_lo; }
  void set_draws(uint64_t n) { draws_lo = static_cast<uint32_t>(n), draws_hi = static_cast<uint32_t>(n >> 32); }
};
constexpr int64_t kSampleRowWords = 16;
static_assert(sizeof(SampleRow) == kSampleRowWords * 4, "SampleRow is params' row layout");

// Checked settings -> a row (throws wick::Error naming the field: temperature >= 0 finite, top_k >= 0, top_p and
// min_p in [0, 1], penalty > 0 finite). `field` prefixes the names in errors ("SamplingParams."; "--" names them
// as the CLI's flags: "--top-k").
SampleRow sample_row(float temperature, int top_k, float top_p, float min_p, float penalty, uint64_t seed,
                     uint64_t draws = 0, const std::string& field = "SamplingParams.");
void check_sample_row(const SampleRow& row, const std::string& where);  // sample_row's checks, on a made row
Tensor sample_rows_tensor(const std::vector<SampleRow>& rows, Device dev);  // [R, kSampleRowWords] i32
std::vector<SampleRow> sample_rows_of(const Tensor& params);                // back to the host (e.g. the counters)

// logits [R, V] f32, params [R, kSampleRowWords] i32 (in/out: each sampled row's draw counter + 1) -> ids [R]
// i32 (=). Per row, with its own settings: greedy_tokens' rule when temperature is 0; otherwise the scores after
// the repetition penalty (ids marked in seen [R, V] i32) and the temperature, filtered by top-k (keep s >= the
// k-th largest: all its ties), top-p (remove the ascending prefix, ordered by score then higher id first, whose
// cumulative probability as f32 is <= 1 - top_p; the top token always stays), min-p (remove p < min_p * max p),
// then one draw: u = the 64 bits SplitMix64 gives for (seed, draw counter), and the token is the first id in
// ascending order whose cumulative weight exceeds u * total / 2^64 (weights e = exp(s - max s) of the kept
// tokens, summed exactly in fixed point). The probabilities are sample_distribution_row's. seen null is
// an empty history (a penalty then changes nothing); with seen given, the chosen id is marked in it. A row with a NaN or +inf logit
// gets -(1 + the index of the first one); a sampled row whose logits are all -inf gets INT32_MIN.
// The settings are not validated on the device: make rows with sample_row (the CPU twin checks them again).
// report [R, 2] i32 (optional; for a decode step queued to read ids before the host has seen them:
// infer/decode_loop.h): then ids[r] gets 0 instead of a code (the queued step reads a row of the embedding table,
// never outside it) and report[r] = {the token or code, the bits of the f32 logit a NaN / +inf code points at
// (0 otherwise)}: what the host needs to report the code after the logits have been overwritten.
void sample_tokens(const Tensor& logits, Tensor* seen, Tensor& params, Tensor& ids, Tensor* report = nullptr);

// The rule on one host row: what the CPU twin runs per row and infer's Sampler runs per token.
struct SampleRowWork {  // scratch reused across calls (allocates nothing once warm)
  std::vector<float> s, e, sel;
  std::vector<std::pair<uint64_t, uint64_t>> cand;  // top-p: (candidate key, fixed-point mass)
  std::vector<int32_t> ids;
};
// logits [V], the ids to penalise (each once; any order, repeats allowed) -> the token, or the negative codes of
// sample_tokens. Does not count the draw: the caller does (row.draws is this draw's number).
int32_t sample_row_host(const float* logits, int64_t V, const int32_t* penalised, size_t n_penalised,
                        const SampleRow& row, SampleRowWork& w);
// The distribution that draw samples from: probs [V] (f32 softmax over the kept tokens with the rule's exp and
// exact normaliser; zeros where filtered; one-hot at the greedy token when temperature is 0). Returns the
// token-or-code as sample_row_host would (a token when the row is fine; ignore it then).
int32_t sample_distribution_row(const float* logits, int64_t V, const int32_t* penalised, size_t n_penalised,
                                const SampleRow& row, SampleRowWork& w, float* probs);

}  // namespace wick
