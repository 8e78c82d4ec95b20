#include "common/op_cases.h"

namespace wick::test {

using namespace opcheck;

// low_rank_product: M 1, 3 (decode), 64 (the seed suite), 129 and r 72 (CUDA: the two-matmul fallback); r 1..64;
// in, out off multiples of 4 and 8; accumulate on and off. On CUDA the rule (ops/low_rank.h, low_rank_rule)
// sends each fused shape to one of three kernels, by in, out (narrow: both <= 1,024) and r (<= 8); each kernel
// gets shapes at and past those edges, accumulate on and off (tests/ops/test_low_rank_rule.cpp checks that), and
// tests/cuda/test_low_rank_cuda.cpp runs every shape on each kernel forced.
const std::vector<LowRankShape>& low_rank_shapes() {
  static const std::vector<LowRankShape> shapes = {
      // narrow, r <= 8: kRecompute
      {.M = 1, .in = 7, .r = 4, .out = 5},
      {.M = 3, .in = 33, .r = 8, .out = 17, .accumulate = true},
      {.M = 64, .in = 1024, .r = 4, .out = 1024},
      {.M = 64, .in = 512, .r = 8, .out = 512, .accumulate = true, .scale = 2.0f},
      {.M = 2, .in = 1024, .r = 1, .out = 1000},
      // narrow, r > 8: kSplitK
      {.M = 1, .in = 896, .r = 16, .out = 128, .accumulate = true, .scale = 2.0f},
      {.M = 3, .in = 1000, .r = 64, .out = 999, .scale = 0.5f},
      {.M = 17, .in = 100, .r = 63, .out = 70, .accumulate = true},
      {.M = 64, .in = 513, .r = 16, .out = 1023, .accumulate = true, .scale = 2.0f},
      {.M = 33, .in = 1024, .r = 9, .out = 1024, .accumulate = true},
      {.M = 64, .in = 1024, .r = 32, .out = 1024},
      // in or out past 1,024: kCooperative
      {.M = 7, .in = 4864, .r = 16, .out = 896, .scale = 2.0f},
      {.M = 5, .in = 3000, .r = 12, .out = 77, .accumulate = true},
      {.M = 64, .in = 2048, .r = 64, .out = 2048},
      {.M = 64, .in = 1025, .r = 8, .out = 64, .accumulate = true},
      {.M = 1, .in = 64, .r = 16, .out = 1025},
      // not fused on CUDA (M > 64, r > 64): two matmuls
      {.M = 129, .in = 65, .r = 8, .out = 33},
      {.M = 129, .in = 65, .r = 8, .out = 33, .accumulate = true, .scale = 2.0f},
      {.M = 8, .in = 40, .r = 72, .out = 24, .accumulate = true},
  };
  return shapes;
}

static std::vector<CasePtr> build() {
  std::vector<CasePtr> c;
  const float kQwenTheta = 1e6f;

  // matmul: transposes, batches, alpha/beta, bias, folded leading dims; Qwen projections [N, C] @ W^T
  c.push_back(make_matmul({.M = 1, .N = 1, .K = 1}));
  c.push_back(make_matmul({.M = 7, .N = 13, .K = 5}));
  c.push_back(make_matmul({.M = 7, .N = 13, .K = 5, .c_f32 = true}));
  c.push_back(make_matmul({.M = 127, .N = 33, .K = 65, .tb = true}));
  c.push_back(make_matmul({.M = 9, .N = 31, .K = 17, .ta = true}));
  c.push_back(make_matmul({.M = 9, .N = 31, .K = 17, .ta = true, .tb = true, .alpha = 0.5f}));
  c.push_back(make_matmul({.M = 7, .N = 13, .K = 5, .beta = 0.5f}));
  c.push_back(make_matmul({.M = 7, .N = 13, .K = 5, .alpha = -2.0f, .beta = 1.0f, .bias = true}));
  c.push_back(make_matmul({.M = 33, .N = 7, .K = 19, .tb = true, .bias = true}));
  c.push_back(make_matmul({.batch = 3, .M = 7, .N = 5, .K = 9}));
  c.push_back(make_matmul({.batch = 2, .M = 7, .N = 5, .K = 9, .ta = true, .tb = true, .beta = 1.0f}));
  c.push_back(make_matmul({.lead = {2, 3}, .M = 6, .N = 5, .K = 7, .tb = true}));
  c.push_back(make_matmul({.M = 7, .N = 896, .K = 896, .tb = true, .bias = true}));   // q_proj
  c.push_back(make_matmul({.M = 7, .N = 128, .K = 896, .tb = true, .bias = true}));   // k_proj, v_proj
  c.push_back(make_matmul({.M = 7, .N = 4864, .K = 896, .tb = true}));               // gate, up
  c.push_back(make_matmul({.M = 7, .N = 896, .K = 4864, .tb = true}));               // down
  c.push_back(make_matmul({.M = 896, .N = 128, .K = 7, .ta = true, .beta = 1.0f, .c_f32 = true}));  // dW += dY^T X
  // The bf16 LoRA path (model/linear.h), r 16, q k v stacked (3r = 48), 7 tokens:
  c.push_back(make_matmul({.M = 48, .N = 7, .K = 896, .tb = true}));                               // u^T = A x^T
  c.push_back(make_matmul({.M = 7, .N = 896, .K = 16, .ta = true, .tb = true, .alpha = 2.0f}));     // y = s u B^T
  c.push_back(make_matmul({.M = 7, .N = 128, .K = 896, .tb = true, .beta = 1.0f, .bias = true}));  // y += x W^T + b
  c.push_back(make_matmul({.M = 128, .N = 16, .K = 7, .ta = true, .tb = true, .alpha = 2.0f, .beta = 1.0f,
                           .c_f32 = true}));                                                        // dB += s dy^T u
  c.push_back(make_matmul({.M = 16, .N = 7, .K = 128, .ta = true, .tb = true, .alpha = 2.0f}));    // du^T = s B^T dy^T
  c.push_back(make_matmul({.M = 48, .N = 896, .K = 7, .beta = 1.0f, .c_f32 = true}));              // dA += du^T x
  c.push_back(make_matmul({.M = 7, .N = 896, .K = 48, .ta = true, .beta = 1.0f}));                 // dx += du A

  // low_rank_product (the adapter term in one op): low_rank_shapes() above
  for (const LowRankShape& sh : low_rank_shapes()) c.push_back(make_low_rank(sh));

  // weight_grad_products (a LoRA group's dB_j and dA in one op): the kernel's rank tiles 16..64 with R below the
  // tile (8, 24, 40), M off the 128-column tile, K off the 64-row stage and long enough to split; transposed and
  // plain outputs, accumulate and set; CUDA's cuBLASLt fallback (M 13, R 12, R 72) beside kernel products
  c.push_back(make_weight_grads(7, {{.M = 8, .R = 8}}));
  c.push_back(make_weight_grads(1000, {{.M = 136, .R = 16}, {.M = 24, .R = 16}, {.M = 64, .R = 48, .transposed = true}}));
  c.push_back(make_weight_grads(2053, {{.M = 896, .R = 16}, {.M = 128, .R = 16, .accumulate = false},
                                       {.M = 256, .R = 32, .transposed = true, .accumulate = false}}));
  c.push_back(make_weight_grads(517, {{.M = 40, .R = 24}, {.M = 200, .R = 40, .transposed = true}, {.M = 16, .R = 64},
                                      {.M = 13, .R = 12}, {.M = 32, .R = 72, .transposed = true}}));

  // segmented_lora_add (many adapters in one serving batch): one segment; decode rows of 8 adapters with rows
  // between them untouched; mixed ranks up to 64 and one above (CUDA: that segment by GEMMs); a prefill-long
  // segment with in and out off the kernel's 128 / 256 tiles; 40 one-row segments (two launches on CUDA)
  c.push_back(make_segmented_lora(1, 7, 5, {{0, 1, 4, 1.0f}}));
  {
    std::vector<LoraSegmentSpec> decode;
    for (int64_t s = 0; s < 8; s++) decode.push_back({1 + 8 * s, 6 + s % 2, 16, 2.0f});
    c.push_back(make_segmented_lora(66, 896, 128, decode));
  }
  c.push_back(make_segmented_lora(13, 4864, 896, {{0, 3, 4, 0.5f}, {3, 4, 16, 2.0f}, {7, 2, 64, 1.0f}, {10, 3, 72, 2.0f}}));
  c.push_back(make_segmented_lora(300, 129, 300, {{5, 290, 8, 2.0f}}));
  {
    std::vector<LoraSegmentSpec> many;
    for (int64_t s = 0; s < 40; s++) many.push_back({s + s / 8, 1, 1 + s % 5, 1.0f + 0.25f * static_cast<float>(s % 3)});
    c.push_back(make_segmented_lora(45, 33, 17, many));
  }

  // small_m_linear (decode projections, M <= 8): M 1, 3, 5, 8; in and out on and off multiples of 8 (bf16's
  // 16-byte loads; f32's at multiples of 4: in 36); 1-3 members (q|k|v); bias on/off; 1, 2 or 4 warps per row
  // (>= 4096, >= 2048, fewer rows); f32 logits from bf16 (lm_head)
  c.push_back(make_small_m_linear({.M = 1, .in = 7, .outs = {5}}));
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {896, 128, 128}, .bias = true}));  // q, k, v
  c.push_back(make_small_m_linear({.M = 3, .in = 33, .outs = {17, 9, 40}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 2, .in = 36, .outs = {7, 1}}));
  c.push_back(make_small_m_linear({.M = 5, .in = 264, .outs = {130}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 8, .in = 896, .outs = {4864}}));                       // gate | up
  c.push_back(make_small_m_linear({.M = 3, .in = 896, .outs = {2500, 3}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 1, .in = 4864, .outs = {896}}));                       // down
  c.push_back(make_small_m_linear({.M = 8, .in = 4864, .outs = {33}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 8, .in = 40, .outs = {24, 8}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {5000}, .y_f32 = true}));        // lm_head
  c.push_back(make_small_m_linear({.M = 3, .in = 33, .outs = {70}, .y_f32 = true}));
  // ... with SmallMOptions: the residual add (down_proj + the layer's residual; odd sizes; f32 logits plus an f32
  // residual) and settled weights (read before the previous kernel ends on CUDA)
  c.push_back(make_small_m_linear({.M = 1, .in = 4864, .outs = {896}, .residual = true, .settled = true}));
  c.push_back(make_small_m_linear({.M = 3, .in = 33, .outs = {17}, .bias = true, .residual = true}));
  c.push_back(make_small_m_linear({.M = 2, .in = 896, .outs = {300}, .y_f32 = true, .residual = true}));
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {896, 128, 128}, .bias = true, .settled = true}));
  // the default tuning's exceptions (small_m_linear.cuh default_tuning): 8 warps and 8 loads a lane for long rows
  // (also off multiples of 8: one-element loads), a warp a row and 8 loads for one member of 1024..4095 rows
  c.push_back(make_small_m_linear({.M = 5, .in = 18944, .outs = {64}, .settled = true}));
  c.push_back(make_small_m_linear({.M = 3, .in = 8963, .outs = {20}, .bias = true}));
  c.push_back(make_small_m_linear({.M = 1, .in = 8960, .outs = {40}, .residual = true, .settled = true}));
  c.push_back(make_small_m_linear({.M = 1, .in = 1536, .outs = {1536}, .settled = true}));
  c.push_back(make_small_m_linear({.M = 2, .in = 1544, .outs = {1030}, .bias = true, .residual = true}));
  // ... the bias and the residual read before the previous kernel ends (settled): lane m's row m for M up to 8,
  // f32 outputs and residual, one-element loads
  c.push_back(make_small_m_linear({.M = 8, .in = 1544, .outs = {1030}, .bias = true, .residual = true, .settled = true}));
  c.push_back(make_small_m_linear({.M = 3, .in = 33, .outs = {17}, .bias = true, .y_f32 = true, .residual = true,
                                   .settled = true}));
  // ... with adapter terms (SmallMOptions::low_rank: decode with a LoRA adapter): q|k|v with all three adapted
  // (r 16) and with only some (and odd ranks), the down projection with the residual after its term, odd shapes
  // on the one-element loads, M up to 8, f32 too
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {896, 128, 128}, .bias = true, .settled = true,
                                   .ranks = {16, 16, 16}}));
  c.push_back(make_small_m_linear({.M = 3, .in = 33, .outs = {17, 9, 40}, .bias = true, .ranks = {0, 5, 3}}));
  c.push_back(make_small_m_linear({.M = 1, .in = 4864, .outs = {896}, .residual = true, .settled = true, .ranks = {16}}));
  c.push_back(make_small_m_linear({.M = 8, .in = 264, .outs = {130, 8}, .ranks = {1, 0}}));
  c.push_back(make_small_m_linear({.M = 5, .in = 1544, .outs = {1030}, .bias = true, .residual = true, .ranks = {64}}));
  // ... with the input's RMSNorm (SmallMOptions::input_norm: decode's norm in the projection's launch): both weight
  // kinds; widths on and off multiples of 8 (vector and one-element loads); K warps a row 1 to 8 (the partial
  // sums of squares reduced with the dot products); M up to 8; with adapters and a residual
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {896, 128, 128}, .bias = true, .settled = true, .norm = 1}));
  c.push_back(make_small_m_linear({.M = 3, .in = 1536, .outs = {300}, .norm = 2}));
  c.push_back(make_small_m_linear({.M = 8, .in = 3584, .outs = {64, 8}, .bias = true, .norm = 1}));
  c.push_back(make_small_m_linear({.M = 2, .in = 33, .outs = {17, 9, 40}, .norm = 1}));
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {896, 128, 128}, .bias = true, .ranks = {16, 16, 16},
                                   .norm = 1}));
  c.push_back(make_small_m_linear({.M = 5, .in = 1544, .outs = {1030}, .residual = true, .ranks = {8}, .norm = 2}));
  c.push_back(make_small_m_linear({.M = 1, .in = 896, .outs = {5000}, .y_f32 = true, .norm = 1}));  // lm_head
  // small_m_glu (gate/up + GLU): both activations, bias on/off, M 1, 2, 3, 8
  c.push_back(make_small_m_glu(1, 896, 4864, false, false));
  c.push_back(make_small_m_glu(8, 896, 4864, true, false));
  c.push_back(make_small_m_glu(3, 33, 17, true, true));
  c.push_back(make_small_m_glu(1, 896, 4864, false, true, /*settled*/ true));
  c.push_back(make_small_m_glu(8, 40, 24, false, true));
  c.push_back(make_small_m_glu(2, 4864, 100, true, false));
  c.push_back(make_small_m_glu(1, 1536, 2100, false, true));
  c.push_back(make_small_m_glu(1, 896, 4864, false, false, /*settled*/ true, /*ranks*/ {16, 16}));
  c.push_back(make_small_m_glu(3, 33, 17, true, true, false, {0, 7}));
  c.push_back(make_small_m_glu(8, 40, 24, false, true, false, {4, 0}));
  c.push_back(make_small_m_glu(1, 1536, 8960, false, false, /*settled*/ true, {}, /*norm*/ 1));
  c.push_back(make_small_m_glu(4, 1152, 700, true, false, false, {}, /*norm*/ 2));
  c.push_back(make_small_m_glu(3, 35, 17, false, true, false, {0, 7}, /*norm*/ 1));

  // linear (forward, and backward through matmul)
  c.push_back(make_linear({1}, 7, 5, true));
  c.push_back(make_linear({7}, 33, 17, true));
  c.push_back(make_linear({2, 7}, 31, 9, false));
  c.push_back(make_linear({127}, 13, 3, true));
  c.push_back(make_linear({7}, 896, 128, true));
  c.push_back(make_linear({2}, 4864, 33, false));  // down_proj's reduction length

  // embedding
  c.push_back(make_embedding(1, 3, 7, DType::I32));
  c.push_back(make_embedding(7, 11, 5, DType::I32));
  c.push_back(make_embedding(127, 50, 33, DType::I64));
  c.push_back(make_embedding(7, 1000, 896, DType::I32));

  // norms, softmax, swiglu, geglu
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 7}, {2, 3}, {7, 896}, {127, 33}, {3, 4864}}) c.push_back(make_rms_norm(N, C));
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 7}, {7, 1152}, {33, 256}}) c.push_back(make_rms_norm(N, C, 1e-6f, true));
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 7}, {7, 896}, {127, 33}}) c.push_back(make_layer_norm(N, C));
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {127, 127}, {3, 1000}, {2, 4864}}) c.push_back(make_softmax(N, C));
  for (auto [N, I] : {std::pair<int64_t, int64_t>{1, 7}, {127, 33}, {7, 4864}}) c.push_back(make_swiglu(N, I));
  for (auto [N, I] : {std::pair<int64_t, int64_t>{1, 7}, {127, 33}, {7, 6912}}) c.push_back(make_geglu(N, I));  // Gemma 3 1B

  // rope: Qwen (theta 1e6, positions up to 32767), packed rows, in place, odd head counts
  c.push_back(make_rope(1, 1, 1, 2, 1e4f, 10, false, false));
  c.push_back(make_rope(1, 7, 14, 64, kQwenTheta, 32767, false, false));
  c.push_back(make_rope(1, 7, 2, 64, kQwenTheta, 32767, false, true));
  c.push_back(make_rope(2, 127, 2, 128, kQwenTheta, 4096, true, false));
  c.push_back(make_rope(1, 7, 3, 10, 1e4f, 100, false, true));
  c.push_back(make_rope(3, 67, 5, 8, 1e4f, 500, false, true));  // CUDA's 4-pair kernel: 102 tokens a block, the last partial
  c.push_back(make_rope(2, 5, 2, 64, 1e4f, 100, true, true));

  // attention: training (GQA 1, 2, 6, 7, 8; D 8..128; packing) and decode (KV cache with NaN past kv_len)
  c.push_back(make_attention({.B = 1, .T = 1, .H = 1, .Hkv = 1, .D = 8}));
  c.push_back(make_attention({.B = 2, .T = 7, .H = 4, .Hkv = 2, .D = 16}));
  c.push_back(make_attention({.B = 1, .T = 7, .H = 14, .Hkv = 2, .D = 64}));
  c.push_back(make_attention({.B = 1, .T = 7, .H = 12, .Hkv = 2, .D = 128}));
  c.push_back(make_attention({.B = 1, .T = 33, .H = 4, .Hkv = 4, .D = 128}));
  c.push_back(make_attention({.B = 1, .T = 127, .H = 8, .Hkv = 1, .D = 16}));
  c.push_back(make_attention({.B = 2, .T = 17, .H = 4, .Hkv = 2, .D = 16, .segments = true}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 14, .Hkv = 2, .D = 64, .kv_len = 9, .S = 16}));
  c.push_back(make_attention({.B = 2, .T = 3, .H = 4, .Hkv = 1, .D = 32, .kv_len = 11}));
  c.push_back(make_attention({.B = 1, .T = 5, .H = 2, .Hkv = 2, .D = 8, .lse = false}));
  // the bf16 tensor-core path (tags end in _fa2bf16; f32 runs of the same shapes keep the CUDA-core kernels):
  // D 64 / 128, GQA 1, 2, 7, T off the 64-row tiles, B > 1, packed rows (short and long segments), chunked
  // prefill into a cache with S > kv_len
  c.push_back(make_attention({.B = 2, .T = 17, .H = 4, .Hkv = 4, .D = 64}));
  c.push_back(make_attention({.B = 3, .T = 65, .H = 7, .Hkv = 1, .D = 128}));
  c.push_back(make_attention({.B = 2, .T = 130, .H = 14, .Hkv = 2, .D = 64, .segments = true}));
  c.push_back(make_attention({.B = 2, .T = 300, .H = 4, .Hkv = 2, .D = 128, .segments = true}));
  c.push_back(make_attention({.B = 2, .T = 40, .H = 4, .Hkv = 2, .D = 64, .kv_len = 100, .S = 128}));
  c.push_back(make_attention({.B = 1, .T = 16, .H = 14, .Hkv = 2, .D = 128, .kv_len = 300, .S = 320}));

  // sliding window (Gemma 3's sliding layers; the CUDA-core kernels in bf16 too): odd T, GQA, window < T over
  // several key tiles, window >= T (no effect), packing + window, decode and chunked prefill into a cache
  // (NaN past kv_len) with the window inside the cache, split-key decode (window > 256 keys), Gemma 3 1B's D 256
  c.push_back(make_attention({.B = 2, .T = 13, .H = 4, .Hkv = 2, .D = 16, .window = 4}));
  c.push_back(make_attention({.B = 1, .T = 7, .H = 2, .Hkv = 1, .D = 32, .window = 9}));
  c.push_back(make_attention({.B = 2, .T = 77, .H = 6, .Hkv = 1, .D = 64, .window = 37}));
  c.push_back(make_attention({.B = 2, .T = 17, .H = 4, .Hkv = 2, .D = 16, .segments = true, .window = 6}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 4, .Hkv = 1, .D = 32, .kv_len = 50, .S = 64, .window = 12}));
  c.push_back(make_attention({.B = 2, .T = 3, .H = 4, .Hkv = 2, .D = 16, .kv_len = 20, .S = 24, .window = 6}));
  c.push_back(make_attention({.B = 2, .T = 40, .H = 4, .Hkv = 2, .D = 64, .kv_len = 100, .S = 128, .window = 45}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 4, .Hkv = 1, .D = 256, .kv_len = 700, .S = 720, .window = 512}));
  // decode with the query positions on the device and the capacity as kv_len (a replayed decode graph): the
  // rows past the positions hold NaN; split-key planning over the whole capacity (most splits empty), window
  c.push_back(make_attention({.B = 1, .T = 1, .H = 14, .Hkv = 2, .D = 64, .kv_len = 9, .S = 16, .positions = true}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 14, .Hkv = 2, .D = 64, .kv_len = 300, .S = 2048, .positions = true}));
  c.push_back(make_attention({.B = 2, .T = 3, .H = 4, .Hkv = 2, .D = 16, .kv_len = 20, .S = 24, .window = 6, .positions = true}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 4, .Hkv = 1, .D = 256, .kv_len = 700, .S = 2000, .window = 512, .positions = true}));
  // decode attention's one-launch kernel (ops/cuda/decode_attention.cu: T = 1, D 64 or 128, a block a query head,
  // <= 1024 keys): 1 to 7 heads a group, more keys than its 16 warps take in one pass (512), a window, B > 1,
  // the largest span it takes (1024) with positions on the device, the 7B shape without lse
  c.push_back(make_attention({.B = 2, .T = 1, .H = 12, .Hkv = 2, .D = 128, .kv_len = 300, .S = 320}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 4, .Hkv = 4, .D = 128, .kv_len = 1000, .S = 1024, .positions = true}));
  c.push_back(make_attention({.B = 3, .T = 1, .H = 8, .Hkv = 2, .D = 64, .kv_len = 70, .S = 80, .window = 40}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 28, .Hkv = 4, .D = 128, .kv_len = 385, .S = 512, .lse = false, .positions = true}));

  // cross entropy: ignored rows, in place, Qwen's vocabulary
  c.push_back(make_cross_entropy(1, 7, false, 1.0f, false));
  c.push_back(make_cross_entropy(7, 1000, true, 0.2f, false));
  c.push_back(make_cross_entropy(5, 33, false, 0.25f, true));
  c.push_back(make_cross_entropy(3, 151936, true, 0.5f, false));

  // optimizer
  c.push_back(make_adamw({7}, 1, 0.01f, 1.0f));
  c.push_back(make_adamw({33, 17}, 5, 0.1f, 0.5f));
  c.push_back(make_adamw({512, 512}, 3, 0.01f, 1.0f));
  c.push_back(make_sum_squares({{7}}));
  c.push_back(make_sum_squares({{33, 17}, {1}, {512, 512}}));

  // elementwise, casts, fills
  c.push_back(make_elementwise("add", {7}));
  c.push_back(make_elementwise("add", {127, 33}));
  c.push_back(make_elementwise("add_inplace", {4864}));
  c.push_back(make_elementwise("scale", {7, 13}));
  c.push_back(make_elementwise("axpy", {1}));
  c.push_back(make_elementwise("axpy", {896, 7}));
  // dropout: the seed read from an i64 on the device; p 0 keeps every value (scaled by 1); in place and
  // accumulating; on CUDA, sizes a multiple of 16 bytes take the vector kernel, the others (7 x 13, 1, 9 x 7) not
  c.push_back(make_dropout({7, 13}, 0.25f, 1, false, false));
  c.push_back(make_dropout({127, 896}, 0.1f, 7 * 23 + 5, true, false));
  c.push_back(make_dropout({1}, 0.5f, 3, false, false));
  c.push_back(make_dropout({33, 4864}, 0.0f, 9, true, false));
  c.push_back(make_dropout({64, 896}, 0.05f, 11, false, true));
  c.push_back(make_dropout({9, 7}, 0.3f, 12, false, true));
  c.push_back(make_cast({127}, DType::F32, DType::BF16));
  c.push_back(make_cast({33}, DType::BF16, DType::F32));
  c.push_back(make_cast({127}, DType::F32, DType::F16));
  c.push_back(make_cast({7}, DType::F16, DType::F32));
  c.push_back(make_cast({9}, DType::BF16, DType::F16));
  c.push_back(make_fill({7}, DType::F32, 1.5f));
  c.push_back(make_fill({33}, DType::BF16, 0.1f));
  c.push_back(make_fill({5}, DType::I32, 3.0f));
  return c;
}

const std::vector<CasePtr>& op_cases() {
  static const std::vector<CasePtr> cases = build();
  return cases;
}

std::vector<size_t> op_case_ids(Stage s) {
  std::vector<size_t> ids;
  const auto& cs = op_cases();
  for (size_t i = 0; i < cs.size(); i++) {
    const Case& c = *cs[i];
    const bool take = s == Stage::Fwd || (s == Stage::FwdBf16Cpu && c.cpu_bf16()) ||
                      (s == Stage::Bwd && c.has_backward()) ||
                      (s == Stage::Accumulate && c.has_backward()) || (s == Stage::DeviceBf16 && c.device_bf16());
    if (take) ids.push_back(i);
  }
  return ids;
}

uint64_t op_case_seed(size_t id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the case's name
  for (char ch : op_cases()[id]->name("case")) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return h;
}

}  // namespace wick::test
