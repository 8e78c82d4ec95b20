// Token choice on the device: validation and dispatch, and the per-row settings of sample_tokens.
#include "ops/sampling.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

namespace {

// 1 - x as Python computes it for the decimal the user wrote: the shortest decimal that round-trips x
// (0.9f -> "0.9") read as f64, so 1 - 0.9 = 0.09999999999999998 -> 0.1f, as in HF; 1.0 - double(0.9f)
// would give 0.100000024f instead.
float one_minus_decimal(float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  double d = x;
  std::from_chars(buf, r.ptr, d);
  return static_cast<float>(1.0 - d);
}

// How an error names a setting: "--top-k" for the CLI's where "--", else where + field ("SamplingParams.top_k").
std::string setting_name(const std::string& where, std::string field) {
  if (where != "--") return where + field;
  for (char& c : field)
    if (c == '_') c = '-';
  return where + field;
}

[[noreturn]] void bad_setting(const std::string& where, const char* field, double v, const char* expected) {
  char got[32];
  std::snprintf(got, sizeof got, "%g", v);
  throw Error(std::string("must be ") + expected + ", got " + got, setting_name(where, field));
}

}  // namespace

void check_sample_row(const SampleRow& p, const std::string& where) {
  if (!(p.temperature >= 0) || std::isinf(p.temperature))
    bad_setting(where, "temperature", p.temperature, "0 (greedy) or a finite value > 0");
  if (p.top_k < 0) bad_setting(where, "top_k", p.top_k, "0 (off) or a positive count");
  if (!(p.top_p >= 0 && p.top_p <= 1)) bad_setting(where, "top_p", p.top_p, "in [0, 1] (1 = off)");
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad_setting(where, "min_p", p.min_p, "in [0, 1] (0 = off)");
  if (!(p.penalty > 0) || std::isinf(p.penalty))
    bad_setting(where, "repetition_penalty", p.penalty, "a finite value > 0 (1 = off)");
}

SampleRow sample_row(float temperature, int top_k, float top_p, float min_p, float penalty, uint64_t seed,
                     uint64_t draws, const std::string& field) {
  SampleRow r;
  r.temperature = temperature;
  r.top_k = top_k;
  r.top_p = top_p;
  r.min_p = min_p;
  r.penalty = penalty;
  check_sample_row(r, field);
  r.top_p_cut = top_p < 1.0f ? one_minus_decimal(top_p) : 0.0f;
  r.seed_lo = static_cast<uint32_t>(seed);
  r.seed_hi = static_cast<uint32_t>(seed >> 32);
  r.set_draws(draws);
  return r;
}

Tensor sample_rows_tensor(const std::vector<SampleRow>& rows, Device dev) {
  Tensor t = Tensor::empty({static_cast<int64_t>(rows.size()), kSampleRowWords}, DType::I32, Device::cpu());
  if (!rows.empty()) std::memcpy(t.data<int32_t>(), rows.data(), rows.size() * sizeof(SampleRow));
  return dev.is_cpu() ? t : t.to(dev);
}

std::vector<SampleRow> sample_rows_of(const Tensor& params) {
  const Tensor h = params.device().is_cpu() ? params : params.to(Device::cpu());
  std::vector<SampleRow> rows(static_cast<size_t>(h.dim(0)));
  if (!rows.empty()) std::memcpy(static_cast<void*>(rows.data()), h.data<int32_t>(), rows.size() * sizeof(SampleRow));
  return rows;
}

void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids) {
  static const char* op = "greedy_tokens";
  const Arg L{"logits", &logits}, S{"seen", seen}, I{"ids", &ids};
  const Device dev = ops_detail::one_device(op, seen ? ops_detail::Args{L, S, I} : ops_detail::Args{L, I});
  ops_detail::need_rank(op, L, 2, "[R, V]");
  ops_detail::need_dtype(op, L, DType::F32);
  ops_detail::need_dtype(op, I, DType::I32);
  ops_detail::need_shape(op, {L, I}, I, {logits.dim(0)}, "[R]");
  if (!(penalty > 0.0f) || !std::isfinite(penalty))
    fail(op, {L}, "the repetition penalty must be a positive finite number (1 = off), got " + std::to_string(penalty));
  if (seen) {
    ops_detail::need_dtype(op, S, DType::I32);
    ops_detail::need_shape(op, {L, S}, S, logits.shape(), "logits' shape [R, V]");
  } else if (penalty != 1.0f) {
    fail(op, {L}, "a repetition penalty needs the history: pass seen [R, V]");
  }
  if (logits.dim(1) <= 0 || logits.dim(1) > 0x7fffffffLL)
    fail(op, {L}, "the vocabulary V must be in [1, 2^31 - 1]");
  WICK_OP_DISPATCH(op, dev, greedy_tokens, logits, seen, penalty, ids);
}

void ops_detail::check_sampling_args(const char* op, Arg L, Arg P, Arg I) {
  ops_detail::need_rank(op, L, 2, "[R, V]");
  ops_detail::need_dtype(op, L, DType::F32);
  ops_detail::need_dtype(op, P, DType::I32);
  ops_detail::need_shape(op, {L, P}, P, {L.t->dim(0), kSampleRowWords}, "[R, kSampleRowWords] (one SampleRow a row)");
  ops_detail::need_dtype(op, I, DType::I32);
  ops_detail::need_shape(op, {L, I}, I, {L.t->dim(0)}, "[R]");
  if (L.t->dim(1) <= 0 || L.t->dim(1) > 0x7fffffffLL) fail(op, {L}, "the vocabulary V must be in [1, 2^31 - 1]");
}

void sample_tokens(const Tensor& logits, Tensor* seen, Tensor& params, Tensor& ids, Tensor* report) {
  static const char* op = "sample_tokens";
  const Arg L{"logits", &logits}, S{"seen", seen}, P{"params", &params}, I{"ids", &ids}, Rp{"report", report};
  ops_detail::Args all{L, P, I};
  if (seen) all.push_back(S);
  if (report) all.push_back(Rp);
  const Device dev = ops_detail::one_device(op, all);
  ops_detail::check_sampling_args(op, L, P, I);
  if (seen) {
    ops_detail::need_dtype(op, S, DType::I32);
    ops_detail::need_shape(op, {L, S}, S, logits.shape(), "logits' shape [R, V]");
  }
  if (report) {
    ops_detail::need_dtype(op, Rp, DType::I32);
    ops_detail::need_shape(op, {L, Rp}, Rp, {logits.dim(0), 2}, "[R, 2] (a token or code and a logit's bits a row)");
  }
  WICK_OP_DISPATCH(op, dev, sample_tokens, logits, seen, params, ids, report);
}

}  // namespace wick
