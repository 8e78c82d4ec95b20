// What a decode step replayed as a CUDA graph rests on, checked on one device:
//  - kv_cache_write (ops/attention.h) puts each row where its position says and touches nothing else;
//  - greedy_tokens (ops/sampling.h) makes infer/sampler.cpp's greedy choice (penalty, ties, non-finite logits)
//    and marks the history;
//  - DecodeLoop (infer/decode_loop.h) gives, token by token, the logits of the plain cached forward.
#pragma once
#include "core/tensor.h"
#include "model/config.h"

namespace wick::test {

// A small GQA model (hidden 128, 4 / 2 heads of 64: bf16 prefill takes the tensor-core kernels, decode the
// split-key ones) of `layers` layers, `vocab` tokens, 2048 positions.
ModelConfig decode_test_config(int64_t layers, int64_t vocab);

// Random rows and a random cache (f32; bf16 on CUDA), positions scattered per batch row; bit for bit.
void check_kv_cache_write(Device dev, DType dt);
// rope_qk_cache_write (ops/rope.h) on dev against rope_forward_qk then kv_cache_write on dev, bit for bit, and
// the cache rows against the rotated keys and the values; untouched rows keep their values. Head dims 64 and 128
// (CUDA's one-launch kernel) and 6 (its two-launch fallback).
void check_rope_qk_cache_write(Device dev, DType dt);
// rope_cache_attention (ops/attention.h) on dev against rope_qk_cache_write then attention_forward on dev, bit for
// bit (q, both caches, out, lse; k is the op's scratch), for decode steps (T = 1, positions on the device: CUDA's one-launch kernel;
// head dims 64 and 128, 1 to 8 query heads a kv head; head dim 6 and positions off the device take the two ops),
// and a prefill chunk (T = 3). On CUDA in f32 also against the CPU's two ops within 1e-5 (sincosf and the CPU's
// cosf/sinf differ in the last bit at some angles). Cache rows past every position hold NaN.
void check_rope_cache_attention(Device dev, DType dt);
// Random logits of V columns with planted ties, with and without a repetition penalty and history; one row with
// a NaN, one with +inf. Against greedy_token row by row.
void check_greedy_tokens(Device dev, int64_t V);
// A small random model in dt: a prompt, then tokens fed one at a time through CausalLM::forward with a cache and
// through a DecodeLoop (graphs as given). The logits agree to max |diff| <= tol * max |logit| (0: exactly), and
// on CUDA each token the loop sampled on the device (every processor on) is the host Sampler's draw from the
// logits the loop hands back.
void check_decode_loop_matches_forward(Device dev, DType dt, bool graphs, double tol);

}  // namespace wick::test
