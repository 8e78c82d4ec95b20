// Bad arguments to the public ops are wick::Errors that name the op, the tensors and what was expected.
#include <gtest/gtest.h>

#include "core/error.h"
#include "ops/attention.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/optim.h"
#include "ops/rope.h"
#include "ops/small_m_linear.h"
#include "ops/softmax.h"
#include "ops/swiglu.h"

using namespace wick;

// Runs stmt, expecting a wick::Error whose message contains `want`.
#define EXPECT_OP_ERROR(stmt, want)                                                        \
  do {                                                                                     \
    try {                                                                                  \
      stmt;                                                                                \
      ADD_FAILURE() << "no wick::Error from " #stmt;                                       \
    } catch (const wick::Error& e) {                                                       \
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << "message: " << e.what(); \
    }                                                                                      \
  } while (0)

static Tensor f32(const Shape& s) { return Tensor::zeros(s, DType::F32); }
static Tensor i32(const Shape& s) { return Tensor::zeros(s, DType::I32); }

TEST(OpValidation, RmsNorm) {
  Tensor x = f32({4, 7}), w = f32({8}), y = f32({4, 7}), r = f32({4});
  EXPECT_OP_ERROR(rms_norm_forward(x, w, 1e-6f, y, r),
                  "rms_norm_forward: x f32[4, 7] cpu and w f32[8] cpu: w must be [C] = [7]");
  Tensor w7 = f32({7}), ybad = f32({4, 8});
  EXPECT_OP_ERROR(rms_norm_forward(x, w7, 1e-6f, ybad, r), "y must be [N, C] = [4, 7]");
  Tensor ri = i32({4});
  EXPECT_OP_ERROR(rms_norm_forward(x, w7, 1e-6f, y, ri), "rstd must be f32");
  Tensor xb = Tensor::zeros({4, 7}, DType::BF16), yb = Tensor::zeros({4, 7}, DType::BF16);
  EXPECT_OP_ERROR(rms_norm_forward(xb, w7, 1e-6f, yb, r), "x must be f32: the CPU backend computes this op in f32");
  Tensor x3 = f32({2, 2, 7});
  EXPECT_OP_ERROR(rms_norm_forward(x3, w7, 1e-6f, y, r), "x must be rank 2 [N, C]");
  Tensor dx = f32({4, 7}), dw = f32({6});
  EXPECT_OP_ERROR(rms_norm_backward(y, x, w7, r, dx, &dw), "dw must be [C] = [7]");
  Tensor undefined;
  EXPECT_OP_ERROR(rms_norm_forward(x, w7, 1e-6f, undefined, r), "y must be a defined tensor");
}

TEST(OpValidation, LayerNormSoftmaxSwiglu) {
  Tensor x = f32({3, 5}), w = f32({5}), b = f32({4}), y = f32({3, 5}), m = f32({3}), r = f32({3});
  EXPECT_OP_ERROR(layer_norm_forward(x, w, b, 1e-5f, y, m, r), "b must be [C] = [5]");
  Tensor m2 = f32({2});
  Tensor b5 = f32({5});
  EXPECT_OP_ERROR(layer_norm_forward(x, w, b5, 1e-5f, y, m2, r), "mean must be [N] = [3]");
  Tensor ys = f32({3, 4});
  EXPECT_OP_ERROR(softmax_forward(x, ys), "softmax_forward");
  Tensor up = f32({3, 6});
  EXPECT_OP_ERROR(swiglu_forward(x, up, y), "up must be [N, C] = [3, 5]");
  Tensor yi = i32({3, 5});
  EXPECT_OP_ERROR(softmax_backward(x, x, yi), "dx must have y's dtype (f32)");
}

TEST(OpValidation, Matmul) {
  Tensor a = f32({4, 7}), b = f32({8, 3}), c = f32({4, 3});
  EXPECT_OP_ERROR(matmul(a, b, c), "matmul: a f32[4, 7] cpu and b f32[8, 3] cpu: inner dimensions differ");
  Tensor b7 = f32({7, 3}), cbad = f32({4, 4});
  EXPECT_OP_ERROR(matmul(a, b7, cbad), "c must be op(a) @ op(b) = [4, 3]");
  Tensor bias = f32({3});
  EXPECT_OP_ERROR(matmul(a, b7, c, false, false, 1.0f, 0.5f, &bias), "a bias needs beta == 0 or beta == 1");
  Tensor bias4 = f32({4});
  EXPECT_OP_ERROR(matmul(a, b7, c, false, false, 1.0f, 0.0f, &bias4), "bias must be [N] = [3]");
  Tensor a3 = f32({2, 7, 4});
  EXPECT_OP_ERROR(matmul(a3, b7, c, true), "trans_a needs a rank 2 a when b is rank 2");
  Tensor bb = f32({3, 7, 3}), cb = f32({2, 4, 3}), ab = f32({2, 4, 7});
  EXPECT_OP_ERROR(matmul(ab, bb, cb), "the same batch size");
  Tensor bbf = Tensor::zeros({7, 3}, DType::BF16);
  EXPECT_OP_ERROR(matmul(a, bbf, c), "b must have a's dtype (f32)");
  Tensor ai = i32({4, 7}), bi = i32({7, 3});
  EXPECT_OP_ERROR(matmul(ai, bi, c), "a must be f32 or bf16");
}

TEST(OpValidation, Linear) {
  Tensor x = f32({5, 7}), w = f32({3, 6}), y = f32({5, 3});
  EXPECT_OP_ERROR(linear_forward(x, w, nullptr, y), "linear_forward: x f32[5, 7] cpu and w f32[3, 6] cpu: w must be [out, in] with in = 7");
  Tensor w7 = f32({3, 7}), b = f32({4});
  EXPECT_OP_ERROR(linear_forward(x, w7, &b, y), "b must be [out] = [3]");
  Tensor dy = f32({5, 4}), dx = f32({5, 7});
  EXPECT_OP_ERROR(linear_backward(dy, x, w7, &dx, nullptr, nullptr), "dy must be [N, out] = [5, 3]");
  Tensor dy3 = f32({5, 3}), dw = f32({7, 3});
  EXPECT_OP_ERROR(linear_backward(dy3, x, w7, nullptr, &dw, nullptr), "dw must be w's shape [out, in] = [3, 7]");
}

TEST(OpValidation, EmbeddingAndIdRange) {
  Tensor table = f32({10, 4}), out = f32({3, 4});
  Tensor idsf = f32({3});
  EXPECT_OP_ERROR(embedding_forward(idsf, table, out), "ids must be i32 or i64");
  Tensor ids = Tensor::from_i32({1, 10, 2}, {3});
  EXPECT_OP_ERROR(embedding_forward(ids, table, out), "ids[1] = 10 is outside the table's rows [0, 10)");
  Tensor neg = Tensor::from_i64({1, -1, 2}, {3});
  EXPECT_OP_ERROR(embedding_backward(neg, out, table), "ids[1] = -1 is outside");
  Tensor out5 = f32({3, 5});
  Tensor ok_ids = Tensor::from_i32({1, 2, 3}, {3});
  EXPECT_OP_ERROR(embedding_forward(ok_ids, table, out5), "out must be [N, C] = [3, 4]");
}

TEST(OpValidation, Rope) {
  Tensor x = f32({1, 3, 2, 5}), pos = i32({1, 3}), y = f32({1, 3, 2, 5});
  EXPECT_OP_ERROR(rope_forward(x, pos, 1e4f, y), "the head dim D must be even");
  Tensor x6 = f32({1, 3, 2, 6}), y6 = f32({1, 3, 2, 6}), pos2 = i32({1, 2});
  EXPECT_OP_ERROR(rope_forward(x6, pos2, 1e4f, y6), "positions must be [B, T] = [1, 3]");
  Tensor pos64 = Tensor::zeros({1, 3}, DType::I64);
  EXPECT_OP_ERROR(rope_forward(x6, pos64, 1e4f, y6), "positions must be i32");
  EXPECT_OP_ERROR(rope_forward(x6, pos, 0.0f, y6), "theta must be a positive finite number");
}

TEST(OpValidation, Attention) {
  Tensor q = f32({1, 4, 6, 8}), k = f32({1, 4, 4, 8}), v = f32({1, 4, 4, 8}), out = f32({1, 4, 6, 8}), lse = f32({1, 6, 4});
  Tensor k2 = f32({1, 4, 2, 8}), v2 = f32({1, 4, 2, 8});
  AttentionArgs a;
  a.kv_len = 4;
  EXPECT_OP_ERROR(attention_forward(q, k2, v2, a, out, &lse), "args.scale must be a positive finite number");
  a.scale = 0.35f;
  EXPECT_OP_ERROR(attention_forward(q, k, v, a, out, &lse), "multiple of the kv heads Hkv");
  a.kv_len = 5;
  EXPECT_OP_ERROR(attention_forward(q, k2, v2, a, out, &lse), "args.kv_len = 5 must be in [T, S] = [4, 4]");
  a.kv_len = 4;
  Tensor lse_bad = f32({1, 4, 6});
  EXPECT_OP_ERROR(attention_forward(q, k2, v2, a, out, &lse_bad), "lse must be [B, H, T] = [1, 6, 4]");
  Tensor kc = f32({1, 9, 2, 8}), vc = f32({1, 9, 2, 8}), seg = i32({1, 4});
  a.kv_len = 6;
  a.segments = &seg;
  EXPECT_OP_ERROR(attention_forward(q, kc, vc, a, out, &lse), "segment ids (packing) need kv_len == T");
  a.segments = nullptr;
  Tensor dq = f32({1, 4, 6, 8}), dk = f32({1, 9, 2, 8}), dv = f32({1, 9, 2, 8});
  EXPECT_OP_ERROR(attention_backward(out, q, kc, vc, out, lse, a, dq, dk, dv), "backward needs kv_len == T");
  Tensor kd = f32({1, 4, 2, 4}), vd = f32({1, 4, 2, 4});
  a.kv_len = 4;
  EXPECT_OP_ERROR(attention_forward(q, kd, vd, a, out, &lse), "k must be [B, S, Hkv, D] with B = 1 and D = 8");
}

TEST(OpValidation, CrossEntropy) {
  Tensor logits = f32({3, 5}), losses = f32({3}), lse = f32({3});
  Tensor t2 = Tensor::from_i32({1, 2}, {2});
  EXPECT_OP_ERROR(cross_entropy_forward(logits, t2, losses, lse), "targets must be [N] = [3]");
  Tensor bad = Tensor::from_i32({1, 5, -100}, {3});
  EXPECT_OP_ERROR(cross_entropy_forward(logits, bad, losses, lse), "targets[1] = 5 is neither -100 (ignored) nor in [0, 5)");
  Tensor neg = Tensor::from_i32({1, -3, -100}, {3});
  Tensor d = f32({3, 5});
  EXPECT_OP_ERROR(cross_entropy_backward(logits, neg, lse, 1.0f, d), "targets[1] = -3");
  Tensor ok = Tensor::from_i32({1, 2, -100}, {3});
  Tensor db = Tensor::zeros({3, 5}, DType::BF16);
  EXPECT_OP_ERROR(cross_entropy_backward(logits, ok, lse, 1.0f, db), "dlogits must have logits' dtype (f32)");
}

TEST(OpValidation, OptimizerAndElementwise) {
  Tensor p = f32({4}), g = f32({5}), m = f32({4}), v = f32({4});
  EXPECT_OP_ERROR(adamw_step(p, g, m, v, AdamWConfig{}, 1), "grad must be param's shape = [4]");
  Tensor g4 = f32({4});
  EXPECT_OP_ERROR(adamw_step(p, g4, m, v, AdamWConfig{}, 0), "step is 1-based");
  Tensor mb = Tensor::zeros({4}, DType::BF16);
  EXPECT_OP_ERROR(adamw_step(p, g4, mb, v, AdamWConfig{}, 1), "m must be f32");
  EXPECT_OP_ERROR(sum_squares({p, mb}), "tensors[1] must be f32");
  Tensor a = f32({3}), b = f32({4}), out = f32({3});
  EXPECT_OP_ERROR(add(a, b, out), "add: a f32[3] cpu and b f32[4] cpu: b must be a's shape = [3]");
  Tensor ai = i32({3});
  EXPECT_OP_ERROR(scale(ai, 2.0f, ai), "x must be f32 or bf16");
  EXPECT_OP_ERROR(cast(ai, a), "src must be a float tensor");
  Tensor h = Tensor::zeros({3}, DType::F16);
  EXPECT_OP_ERROR(fill(h, 1.0f), "t must be f32, bf16 or i32");
}

TEST(OpValidation, SmallMResidual) {
  Tensor x = f32({2, 6}), w = f32({5, 6}), w2 = f32({3, 6}), y = f32({2, 5}), y2 = f32({2, 3});
  Tensor res = f32({2, 5}), res_bad = f32({2, 4}), res_b = Tensor::zeros({2, 5}, DType::BF16);
  SmallMOptions opt;
  opt.residual = &res;
  EXPECT_OP_ERROR(small_m_linear(x, {&w, &w2}, {}, {&y, &y2}, opt), "a residual needs exactly one weight; got 2");
  opt.residual = &res_bad;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "residual must be [M, out] (y's shape) = [2, 5]");
  opt.residual = &res_b;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "residual must have y's dtype (f32)");
  opt.residual = &res;
  Tensor s = f32({2, 5}), wg = f32({5, 6}), wu = f32({5, 6});
  EXPECT_OP_ERROR(small_m_glu(x, wg, wu, nullptr, nullptr, GluAct::Silu, s, opt), "small_m_glu");
  EXPECT_OP_ERROR(small_m_glu(x, wg, wu, nullptr, nullptr, GluAct::Silu, s, opt), "takes no residual");
}

TEST(OpValidation, SmallMInputNorm) {
  Tensor x = f32({2, 6}), w = f32({5, 6}), y = f32({2, 5}), nw_bad = f32({5}), nw_b = Tensor::zeros({6}, DType::BF16);
  Tensor nw = f32({6}), s = f32({2, 5});
  SmallMNorm norm{&nw_bad, 1e-6f, RmsWeight::Scale};
  SmallMOptions opt;
  opt.input_norm = &norm;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "input_norm.w f32[5] cpu: input_norm.w must be [in] = [6]");
  EXPECT_OP_ERROR(small_m_glu(x, w, w, nullptr, nullptr, GluAct::Silu, s, opt), "input_norm.w must be [in] = [6]");
  norm.w = &nw_b;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "input_norm.w must have x's dtype");
  norm.w = &nw;
  norm.eps = -1.0f;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "input_norm.eps must be finite and >= 0");
  norm.w = nullptr;
  EXPECT_OP_ERROR(small_m_linear(x, {&w}, {}, {&y}, opt), "input_norm needs its weight");
}

TEST(OpValidation, RopeQkCacheWrite) {
  Tensor q = f32({1, 2, 4, 8}), k = f32({1, 2, 2, 8}), v = f32({1, 2, 2, 8}), vbad = f32({1, 2, 2, 4});
  Tensor kc = f32({1, 5, 16}), vc = f32({1, 5, 16}), kc_bad = f32({1, 5, 12});
  Tensor pos = Tensor::from_i32({0, 1}, {1, 2}), far = Tensor::from_i32({0, 5}, {1, 2});
  EXPECT_OP_ERROR(rope_qk_cache_write(q, k, vbad, pos, 1e4f, kc, vc), "v must be k's shape [B, T, Hkv, D]");
  EXPECT_OP_ERROR(rope_qk_cache_write(q, k, v, pos, 1e4f, kc_bad, vc), "rope_qk_cache_write");
  EXPECT_OP_ERROR(rope_qk_cache_write(q, k, v, far, 1e4f, kc, vc), "positions[1] = 5 is outside the cache's [0, 5)");
}

// rope_cache_attention checks both ops' arguments before anything runs (the caches are not touched on error).
TEST(OpValidation, RopeCacheAttention) {
  Tensor q = f32({1, 2, 4, 8}), k = f32({1, 2, 2, 8}), v = f32({1, 2, 2, 8}), vbad = f32({1, 2, 2, 4});
  Tensor kc = f32({1, 5, 16}), vc = f32({1, 5, 16}), out = f32({1, 2, 4, 8}), out_bad = f32({1, 2, 4, 4});
  Tensor pos = Tensor::from_i32({0, 1}, {1, 2}), far = Tensor::from_i32({0, 5}, {1, 2});
  AttentionArgs args;
  args.scale = 0.35f;
  args.kv_len = 2;
  EXPECT_OP_ERROR(rope_cache_attention(q, k, vbad, pos, 1e4f, kc, vc, args, out, nullptr), "v must be k's shape");
  EXPECT_OP_ERROR(rope_cache_attention(q, k, v, far, 1e4f, kc, vc, args, out, nullptr),
                  "positions[1] = 5 is outside the cache's [0, 5)");
  EXPECT_OP_ERROR(rope_cache_attention(q, k, v, pos, 1e4f, kc, vc, args, out_bad, nullptr), "rope_cache_attention");
  AttentionArgs long_args = args;
  long_args.kv_len = 6;
  EXPECT_OP_ERROR(rope_cache_attention(q, k, v, pos, 1e4f, kc, vc, long_args, out, nullptr), "args.kv_len = 6");
}
