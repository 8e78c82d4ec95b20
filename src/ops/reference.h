// Double-precision reference math for every op, written as plain loops over std::vector<double>, apart
// from (and simpler than) the CPU twins. Used by the op tests and `wick selfcheck` as ground truth for
// forward passes and, through central finite differences, for backward passes.
// Shapes are as in the op headers; index inputs (ids, positions, targets, segments) are passed as doubles.
#pragma once
#include <cstdint>
#include <vector>

namespace wick::ref {

using Vec = std::vector<double>;

// c [batch, M, N] = alpha * op(a) @ op(b) + beta * c0 + bias; a [batch, M, K] (or [batch, K, M] when ta),
// b [batch, K, N] (or [batch, N, K] when tb); b_batched = false: one b for every batch.
Vec matmul(const Vec& a, const Vec& b, const Vec* c0, const Vec* bias, int64_t batch, int64_t M, int64_t N, int64_t K,
           bool ta, bool tb, bool b_batched, double alpha, double beta);
// ids [N], table [V, C] -> [N, C]
Vec embedding(const Vec& ids, const Vec& table, int64_t C);
// x [N, C], w [C] -> y = w * x / sqrt(mean(x^2) + eps), rstd [N]
void rms_norm(const Vec& x, const Vec& w, int64_t C, double eps, Vec& y, Vec& rstd);
// x [N, C], w, b [C] -> y, mean [N], rstd [N] (biased variance)
void layer_norm(const Vec& x, const Vec& w, const Vec& b, int64_t C, double eps, Vec& y, Vec& mean, Vec& rstd);
// softmax over rows of C
Vec softmax(const Vec& x, int64_t C);
// x [B, T, H, D], pos [B, T] -> rotate-half RoPE. The angle pos * inv_freq[i] is formed in f32 exactly as
// Hugging Face forms it (that rounding is part of the model's definition); cos, sin and the rotation in f64.
Vec rope(const Vec& x, const Vec& pos, int64_t B, int64_t T, int64_t H, int64_t D, float theta);
// silu(gate) * up, elementwise
Vec swiglu(const Vec& gate, const Vec& up);
// gelu_tanh(gate) * up, gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
Vec geglu(const Vec& gate, const Vec& up);

struct AttnDims {
  int64_t B, T, H, D, S, Hkv, kv_len;
  int64_t window = 0;  // > 0: query at position p sees keys in (p - window, p] only
};
// q [B, T, H, D], k, v [B, S, Hkv, D], seg [B, T] or null -> out [B, T, H, D], lse [B, H, T].
// Keys at positions >= kv_len are never read (they may hold anything, NaN included).
void attention(const Vec& q, const Vec& k, const Vec& v, const Vec* seg, const AttnDims& d, double scale, Vec& out,
               Vec& lse);
// logits [N, V], targets [N] (-100 ignored) -> losses [N] (0 when ignored), lse [N]
void cross_entropy(const Vec& logits, const Vec& targets, int64_t V, Vec& losses, Vec& lse);
// One AdamW step in f64 with the textbook formula (torch.optim.AdamW semantics), in place.
void adamw(Vec& p, const Vec& g, Vec& m, Vec& v, double lr, double beta1, double beta2, double eps, double wd,
           int64_t step, double grad_scale);
double sum_squares(const std::vector<Vec>& xs);
// x rounded to nearest, ties to even, to a binary float with `mant_bits` explicit mantissa bits
// (f32: 23, f16: 10, bf16: 7). Normal range only (what the tests feed it).
double round_mantissa(double x, int mant_bits);

}  // namespace wick::ref
