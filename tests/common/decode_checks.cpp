#include "common/decode_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "infer/decode_loop.h"
#include "infer/sampler.h"
#include "model/causal_lm.h"
#include "ops/attention.h"
#include "ops/rope.h"
#include "ops/sampling.h"

namespace wick::test {

ModelConfig decode_test_config(int64_t layers, int64_t vocab) {
  ModelConfig c;
  c.hidden_size = 128;
  c.intermediate_size = 256;
  c.num_layers = layers;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = vocab;
  c.max_position_embeddings = 2048;
  return c;
}

void check_kv_cache_write(Device dev, DType dt) {
  Rng rng(11);
  // X = 24 bf16 values is 48 bytes (16-byte copies); 7 values are not (element copies)
  for (int64_t X : {24, 7}) {
    const int64_t B = 2, T = 3, S = 11;
    Tensor k_rows = randn({B, T, X}, rng).to(dt), v_rows = randn({B, T, X}, rng).to(dt);
    Tensor k0 = randn({B, S, X}, rng).to(dt), v0 = randn({B, S, X}, rng).to(dt);
    std::vector<int32_t> pos = {4, 5, 6, 0, 9, 10};  // row 1: not contiguous
    Tensor positions = Tensor::from_i32(pos, {B, T});
    Tensor kc = k0.to(dev), vc = v0.to(dev);
    if (dev.is_cpu()) kc = k0.clone(), vc = v0.clone();
    kv_cache_write(k_rows.to(dev), v_rows.to(dev), positions.to(dev), kc, vc);
    for (int which = 0; which < 2; which++) {
      Tensor got = (which ? vc : kc).to(Device::cpu()).to(DType::F32);
      Tensor want = (which ? v0 : k0).to(DType::F32), r = (which ? v_rows : k_rows).to(DType::F32);
      for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
          std::memcpy(want.data<float>() + (b * S + pos[b * T + t]) * X, r.data<float>() + (b * T + t) * X, X * sizeof(float));
      for (int64_t i = 0; i < want.numel(); i++)
        ASSERT_EQ(got.data<float>()[i], want.data<float>()[i]) << "X " << X << (which ? " values" : " keys") << " element " << i;
    }
  }
  // A position outside the cache: the CPU says which
  if (dev.is_cpu()) {
    Tensor rows = randn({1, 1, 4}, rng), kc = randn({1, 5, 4}, rng), vc = randn({1, 5, 4}, rng);
    const std::string msg = error_of([&] { kv_cache_write(rows, rows, Tensor::from_i32({5}, {1, 1}), kc, vc); });
    EXPECT_NE(msg.find("positions[0] = 5 is outside the cache's [0, 5)"), std::string::npos) << msg;
  }
}

namespace {
// A copy of t on d (a fresh one on the CPU too: the ops write their outputs in place).
Tensor on(const Tensor& t, Device d) { return d.is_cpu() ? t.to(Device::cpu()).clone() : t.to(d); }

// got and want hold the same bits, element by element (as f32; a NaN matches any NaN).
void expect_same(const Tensor& got, const Tensor& want, const std::string& what) {
  const Tensor g = got.to(Device::cpu()).to(DType::F32), w = want.to(Device::cpu()).to(DType::F32);
  ASSERT_EQ(g.numel(), w.numel()) << what;
  for (int64_t i = 0; i < g.numel(); i++) {
    const float a = g.data<float>()[i], b = w.data<float>()[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    ASSERT_EQ(std::memcmp(&a, &b, sizeof(float)), 0) << what << " element " << i << ": " << a << " against " << b;
  }
}
}  // namespace

void check_rope_qk_cache_write(Device dev, DType dt) {
  Rng rng(13);
  for (int64_t D : {64, 128, 6}) {
    const int64_t B = 2, T = 3, H = 7, Hkv = 2, S = 11, X = Hkv * D;
    const Tensor q = randn({B, T, H, D}, rng).to(dt), k = randn({B, T, Hkv, D}, rng).to(dt);
    const Tensor v = randn({B, T, Hkv, D}, rng).to(dt);
    const Tensor k0 = randn({B, S, X}, rng).to(dt), v0 = randn({B, S, X}, rng).to(dt);
    const std::vector<int32_t> pos = {4, 5, 6, 0, 9, 10};  // row 1: not contiguous
    const Tensor positions = Tensor::from_i32(pos, {B, T});
    const RopeFreqs f(1000000.0f);
    const std::string what = "D " + std::to_string(D) + " " + dtype_name(dt);
    // the op
    Tensor q1 = on(q, dev), k1 = on(k, dev), kc1 = on(k0, dev), vc1 = on(v0, dev);
    rope_qk_cache_write(q1, k1, on(v, dev), on(positions, dev), f, kc1, vc1);
    // the two ops it stands for, on the same device (CUDA's sincosf and the CPU's differ in the last bit at some
    // angles: the rope op cases compare the devices within a tolerance)
    Tensor q2 = on(q, dev), k2 = on(k, dev), kc2 = on(k0, dev), vc2 = on(v0, dev);
    const Tensor p2 = on(positions, dev);
    rope_forward_qk(q2, k2, p2, f);
    kv_cache_write(k2.view({B, T, X}), on(v, dev).view({B, T, X}), p2, kc2, vc2);
    const std::string w = what + " against the two ops";
    expect_same(q1, q2, w + ": q");
    expect_same(k1, k2, w + ": k");
    expect_same(kc1, kc2, w + ": k_cache");
    expect_same(vc1, vc2, w + ": v_cache");
    // and directly: rows at the positions hold the rotated k and v, the others what was there
    const Tensor kc = kc1.to(Device::cpu()).to(DType::F32), vc = vc1.to(Device::cpu()).to(DType::F32);
    const Tensor kr = k1.to(Device::cpu()).to(DType::F32), vr = v.to(DType::F32);
    const Tensor ko = k0.to(DType::F32), vo = v0.to(DType::F32);
    for (int64_t b = 0; b < B; b++)
      for (int64_t s = 0; s < S; s++) {
        int64_t t = -1;
        for (int64_t i = 0; i < T; i++)
          if (pos[b * T + i] == s) t = i;
        const float* kw = t >= 0 ? kr.data<float>() + (b * T + t) * X : ko.data<float>() + (b * S + s) * X;
        const float* vw = t >= 0 ? vr.data<float>() + (b * T + t) * X : vo.data<float>() + (b * S + s) * X;
        ASSERT_EQ(std::memcmp(kc.data<float>() + (b * S + s) * X, kw, X * sizeof(float)), 0) << what << " k row " << b << ", " << s;
        ASSERT_EQ(std::memcmp(vc.data<float>() + (b * S + s) * X, vw, X * sizeof(float)), 0) << what << " v row " << b << ", " << s;
      }
  }
}

void check_rope_cache_attention(Device dev, DType dt) {
  Rng rng(17);
  struct Case {
    int64_t T, H, Hkv, D;
    bool device_positions;
    int64_t S = 300;                   // the caches' capacity
    std::vector<int32_t> positions{};  // [B, T]; empty: the defaults below
  };
  // The last shape: positions past the 512 keys the decode kernel's warps take in one step (the appended row in a
  // warp's second step), and the cache's last row.
  for (const Case& sh : {Case{1, 14, 2, 64, true}, Case{1, 4, 4, 128, true}, Case{1, 12, 4, 64, true},
                           Case{1, 16, 2, 128, true}, Case{1, 7, 1, 6, true}, Case{1, 14, 2, 64, false},
                           Case{3, 14, 2, 64, false}, Case{1, 12, 2, 128, true, 1024, {700, 1023}}}) {
    const int64_t B = 2, T = sh.T, H = sh.H, Hkv = sh.Hkv, D = sh.D, S = sh.S, X = Hkv * D;
    const Tensor q = randn({B, T, H, D}, rng).to(dt), k = randn({B, T, Hkv, D}, rng).to(dt);
    const Tensor v = randn({B, T, Hkv, D}, rng).to(dt);
    // rows 0..kv_len-1 random, later rows NaN (never read: the keys past a query's position are masked)
    // positions on the device: each row its own; on the host: the last T of kv_len, as attention_forward places them
    const std::vector<int32_t> pos = !sh.positions.empty() ? sh.positions
                                     : T == 3              ? std::vector<int32_t>{40, 41, 42, 40, 41, 42}
                                     : sh.device_positions ? std::vector<int32_t>{257, 3}
                                                           : std::vector<int32_t>{257, 257};
    const int64_t kv_len = sh.device_positions ? S : pos[T - 1] + 1;
    Tensor k0 = randn({B, S, X}, rng).to(DType::F32), v0 = randn({B, S, X}, rng).to(DType::F32);
    // for the CPU, whose masked keys still multiply v
    const Tensor k0_finite = k0.clone().to(dt), v0_finite = v0.clone().to(dt);
    for (int64_t b = 0; b < B; b++) {
      int32_t last = 0;
      for (int64_t t = 0; t < T; t++) last = std::max(last, pos[b * T + t]);
      for (int64_t j = (last + 1) * X; j < S * X; j++)
        k0.data<float>()[b * S * X + j] = v0.data<float>()[b * S * X + j] = std::numeric_limits<float>::quiet_NaN();
    }
    k0 = k0.to(dt), v0 = v0.to(dt);
    const Tensor positions = Tensor::from_i32(pos, {B, T});
    const RopeFreqs f(1000000.0f);
    const std::string what = "T " + std::to_string(T) + " H " + std::to_string(H) + " Hkv " + std::to_string(Hkv) +
                             " D " + std::to_string(D) + (sh.device_positions ? " positions " : " ") + dtype_name(dt);
    const auto run = [&](Device d, bool fused, bool nan_rows, Tensor& q1, Tensor& kc, Tensor& vc, Tensor& out,
                         Tensor& lse) {
      q1 = on(q, d), kc = on(nan_rows ? k0 : k0_finite, d), vc = on(nan_rows ? v0 : v0_finite, d);
      Tensor k1 = on(k, d);
      const Tensor p = on(positions, d), v1 = on(v, d);
      out = Tensor::empty({B, T, H, D}, dt, d), lse = Tensor::empty({B, H, T}, DType::F32, d);
      AttentionArgs args;
      args.scale = 1.0f / std::sqrt(static_cast<float>(D));
      args.kv_len = kv_len;
      args.positions = sh.device_positions ? &p : nullptr;
      if (fused) {
        rope_cache_attention(q1, k1, v1, p, f, kc, vc, args, out, &lse);
      } else {
        rope_qk_cache_write(q1, k1, v1, p, f, kc, vc);
        attention_forward(q1, kc.view({B, S, Hkv, D}), vc.view({B, S, Hkv, D}), args, out, &lse);
      }
    };
    Tensor q1, kc1, vc1, out1, lse1, q2, kc2, vc2, out2, lse2;
    run(dev, true, true, q1, kc1, vc1, out1, lse1);
    run(dev, false, true, q2, kc2, vc2, out2, lse2);
    const std::string w = what + " against the two ops";
    expect_same(q1, q2, w + ": q");
    expect_same(kc1, kc2, w + ": k_cache");
    expect_same(vc1, vc2, w + ": v_cache");
    expect_same(out1, out2, w + ": out");
    expect_same(lse1, lse2, w + ": lse");
    if (dev.is_cuda() && dt == DType::F32) {
      Tensor q3, kc3, vc3, out3, lse3, q4, kc4, vc4, out4, lse4;
      run(dev, true, false, q3, kc3, vc3, out3, lse3);
      run(Device::cpu(), false, false, q4, kc4, vc4, out4, lse4);
      EXPECT_LE(max_abs_diff(out3.to(Device::cpu()), out4), 1e-5) << what << ": out against the CPU";
      EXPECT_LE(max_abs_diff(q3.to(Device::cpu()), q4), 1e-5) << what << ": q against the CPU";
      EXPECT_LE(max_abs_diff(kc3.to(Device::cpu()), kc4), 1e-5) << what << ": k_cache against the CPU";
    }
  }
}

void check_greedy_tokens(Device dev, int64_t V) {
  Rng rng(12);
  const int64_t R = 5;
  Tensor logits = randn({R, V}, rng, 3.0f);
  float* L = logits.data<float>();
  // row 0: the maximum twice (the first index wins); row 1: a history entry holds the maximum, and a negative
  // logit in the history (the penalty multiplies it); row 2: all -inf but one equal pair; row 3: NaN; row 4: +inf
  L[0 * V + V / 3] = 50.0f;
  L[0 * V + V / 2] = 50.0f;
  L[1 * V + 7] = 40.0f;
  L[1 * V + 8] = 39.0f;
  L[1 * V + 9] = -0.5f;
  for (int64_t i = 0; i < V; i++) L[2 * V + i] = -std::numeric_limits<float>::infinity();
  L[2 * V + V - 2] = -1.0f;
  L[2 * V + V - 1] = -1.0f;
  L[3 * V + V - 5] = std::numeric_limits<float>::quiet_NaN();
  L[3 * V + V - 1] = std::numeric_limits<float>::quiet_NaN();
  L[4 * V + 3] = std::numeric_limits<float>::infinity();
  std::vector<std::vector<int32_t>> hist(R);
  hist[1] = {7, 9, 7, 3};
  for (int i = 0; i < 30; i++) {
    const int32_t id = static_cast<int32_t>(rng.below(V));
    if (id != V / 2) hist[0].push_back(id);
  }
  hist[0].push_back(static_cast<int32_t>(V / 3));  // the first maximum is in the history: the second wins
  for (float penalty : {1.0f, 1.3f, 0.7f}) {
    Tensor seen = Tensor::zeros({R, V}, DType::I32, Device::cpu());
    for (int64_t r = 0; r < R; r++)
      for (int32_t id : hist[r]) seen.data<int32_t>()[r * V + id] = 1;
    Tensor seen_d = seen.to(dev), ids = Tensor::empty({R}, DType::I32, dev);
    greedy_tokens(logits.to(dev), penalty == 1.0f ? nullptr : &seen_d, penalty, ids);
    Tensor got = ids.to(Device::cpu()), marks = seen_d.to(Device::cpu());
    SamplingWork work;
    for (int64_t r = 0; r < R; r++) {
      const int32_t g = got.data<int32_t>()[r];
      const std::string bad = error_of([&] { greedy_token(L + r * V, V, hist[r], penalty, work); });
      if (!bad.empty()) {  // rows 3 and 4: the first non-finite index, as the host sampler names it
        ASSERT_LT(g, 0) << "row " << r << " penalty " << penalty;
        EXPECT_NE(bad.find("at token " + std::to_string(-1 - g)), std::string::npos) << bad << " vs " << g;
        continue;
      }
      EXPECT_EQ(g, greedy_token(L + r * V, V, hist[r], penalty, work)) << "row " << r << " penalty " << penalty;
      if (penalty != 1.0f) EXPECT_EQ(marks.data<int32_t>()[r * V + g], 1) << "row " << r << ": the choice is marked";
    }
    if (penalty == 1.3f) {
      EXPECT_EQ(got.data<int32_t>()[0], V / 2) << "the penalised first maximum loses to the second";
      EXPECT_EQ(got.data<int32_t>()[1], 8) << "40 / 1.3 < 39";
    }
    EXPECT_EQ(got.data<int32_t>()[2], V - 2);
  }
}

void check_decode_loop_matches_forward(Device dev, DType dt, bool graphs, double tol) {
  const ModelConfig c = decode_test_config(2, 1000);
  auto m = CausalLM::random(c, dev, dt, 21);
  Rng rng(22);
  const int64_t n_prompt = 300, steps = 24, cap = n_prompt + steps + 1;
  std::vector<int32_t> prompt, feed;
  for (int64_t i = 0; i < n_prompt; i++) prompt.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  for (int64_t i = 0; i < steps; i++) feed.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));

  KVCache ref_cache(*m, 1, cap), loop_cache(*m, 1, cap);
  m->forward(Tensor::from_i32(prompt, {1, n_prompt}), &ref_cache, true);
  m->forward(Tensor::from_i32(prompt, {1, n_prompt}), &loop_cache, true);
  // Every processor on: on CUDA the loop samples on the device (inside the graph) and hands back the logits it
  // sampled from; the host Sampler, with the same seed and draw counter, must draw the same token from them.
  SamplingParams sp;
  sp.temperature = 0.9f;
  sp.top_k = 50;
  sp.top_p = 0.9f;
  sp.min_p = 0.02f;
  sp.repetition_penalty = 1.1f;
  sp.seed = 23;
  Sampler host(sp);
  std::vector<int32_t> history = prompt;  // the prompt and the loop's sampled tokens (the device's seen mask)
  DecodeLoopOptions lo;
  lo.graphs = graphs;
  lo.keep_logits = true;
  DecodeLoop loop(*m, loop_cache, sp, prompt, lo);
  int64_t distinct = 0;
  for (int64_t i = 0; i < steps; i++) {
    Tensor ref = m->forward(Tensor::from_i32({feed[i]}, {1, 1}), &ref_cache, true).to(Device::cpu()).view({c.vocab_size});
    const int32_t t = loop.step(feed[i]);
    ASSERT_EQ(t < 0, dev.is_cpu()) << "the loop samples on a GPU, hands logits back on the CPU";
    ASSERT_EQ(loop_cache.length(), ref_cache.length());
    ASSERT_NE(loop.logits(), nullptr);
    double max_ref = 0, max_diff = 0;
    for (int64_t v = 0; v < c.vocab_size; v++) {
      max_ref = std::max(max_ref, std::fabs(double(ref.data<float>()[v])));
      max_diff = std::max(max_diff, std::fabs(double(ref.data<float>()[v]) - loop.logits()[v]));
    }
    ASSERT_LE(max_diff, tol * max_ref) << "step " << i << " (cache length " << ref_cache.length() << ")";
    const int32_t want = host.sample(loop.logits(), c.vocab_size, history);
    if (dev.is_cuda()) {
      ASSERT_EQ(t, want) << "step " << i << ": the device's draw against the host Sampler's from the same logits";
      distinct += std::find(history.begin() + n_prompt, history.end(), t) == history.end();
    }
    history.push_back(dev.is_cuda() ? t : want);
  }
  if (dev.is_cuda()) EXPECT_GT(distinct, 3) << "the device is really sampling";
  EXPECT_EQ(loop.replaying(), graphs && dev.is_cuda()) << "a CUDA graph replays the steps exactly when asked on a GPU";
}

}  // namespace wick::test
