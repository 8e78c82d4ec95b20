// The CUDA twins: same signatures and semantics as the public ops (ops/*.h), called after the public op
// validated shapes, dtypes and devices. Kernels run on wick::cuda::stream(device); every launch is checked.
// Plain C++ header (no CUDA types) so the dispatch layer compiles without nvcc.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "ops/matmul.h"
#include "ops/embedding.h"
#include "ops/norm.h"
#include "ops/softmax.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "ops/attention.h"
#include "ops/paged_attention.h"
#include "ops/cross_entropy.h"
#include "ops/optim.h"
#include "ops/sampling.h"
#include "ops/elementwise.h"
#include "ops/low_rank.h"
#include "ops/weight_grads.h"
#include "ops/segmented_lora.h"
#include "ops/small_m_linear.h"

namespace wick::cuda_ops {

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta, const Tensor* bias);
void matmul(const MatrixView& a, const MatrixView& b, const MatrixView& c, bool trans_a, bool trans_b, float alpha,
            float beta, const Tensor* bias);  // views checked by ops/matmul.cpp
void matmul_into(const MatrixView& a, const MatrixView& b, const MatrixView& c, const MatrixView& d, bool trans_a,
                 bool trans_b, float alpha, float beta);  // checked by ops/matmul.cpp
int64_t gemm_tuned_shapes();  // ops/matmul.h matmul_tuned_shapes
int64_t gemm_tuning_progress();  // ops/matmul.h matmul_tuning_progress
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, const MatrixView& y, Tensor& rstd, RmsWeight kind);
void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, const MatrixView& y, Tensor& rstd, RmsWeight kind);
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx, Tensor* dw, RmsWeight kind, bool accumulate);
void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean, Tensor& rstd);
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd, Tensor& dx, Tensor* dw, Tensor* db);
void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx);
void rope_forward(const Tensor& x, const Tensor& positions, const RopeFreqs& f, Tensor& y);
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeFreqs& f, Tensor& dx);
void rope_forward_qk(Tensor& q, Tensor& k, const Tensor& positions, const RopeFreqs& f);
void rope_backward_qk(Tensor& dq, Tensor& dk, const Tensor& positions, const RopeFreqs& f);
void rope_qk_cache_write(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                         Tensor& k_cache, Tensor& v_cache);
void glu_forward(const Tensor& gate, const Tensor& up, GluAct act, Tensor& out);
void glu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, GluAct act, Tensor& dgate, Tensor& dup,
                  Tensor* out);
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out, Tensor* lse);
// The one-launch decode form of ops/attention.h's rope_cache_attention (arguments checked); false: not taken
// (nothing launched), the caller runs the two ops.
bool rope_cache_attention(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                          Tensor& k_cache, Tensor& v_cache, const AttentionArgs& args, Tensor& out, Tensor* lse);
// The device copy of rope_inv_freq(f, D) (ops/rope.h), uploaded once per (device, f, D) and kept.
const float* rope_inv_freq_device(int device, const RopeFreqs& f, int D);
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk, Tensor& dv);
void kv_cache_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions, Tensor& k_cache, Tensor& v_cache);
void paged_attention_forward(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const PagedKvBatch& batch, float scale, int64_t window, Tensor& out);
void greedy_tokens(const Tensor& logits, Tensor* seen, float penalty, Tensor& ids);
void sample_tokens(const Tensor& logits, Tensor* seen, Tensor& params, Tensor& ids, Tensor* report);
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, float grad_scale, Tensor& dlogits);
void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& lse,
                                    float grad_scale, Tensor& dlogits);
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step, float grad_scale);
void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step, float grad_scale);
double sum_squares(const std::vector<Tensor>& tensors);
void clip_state(const std::vector<Tensor>& grads, double max_norm, Tensor& state);
void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step, const Tensor& clip);
void add(const Tensor& a, const Tensor& b, Tensor& out);
void add_inplace(Tensor& acc, const Tensor& b);
void scale(const Tensor& x, float s, Tensor& out);
void axpy(float alpha, const Tensor& x, Tensor& y);
void cast(const Tensor& src, Tensor& dst);
void copy_matrix(const MatrixView& src, const MatrixView& dst, float scale);
void copy_matrices(const std::vector<MatrixCopy>& copies);  // checked by ops/elementwise.cpp
void fill(Tensor& t, float value);
void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate);
void weight_grad_products(const std::vector<WeightGradProduct>& products);  // checked by ops/weight_grads.cpp
// Every segment has 1 <= r <= kSegmentedLoraMaxRank and rows >= 1 (the public op routes the rest).
void segmented_lora_add(const Tensor& x, const std::vector<LoraSegment>& segments, Tensor& y);
void small_m_linear(const Tensor& x, const std::vector<const Tensor*>& w, const std::vector<const Tensor*>& bias,
                    const std::vector<Tensor*>& y, const SmallMOptions& opt);
void small_m_glu(const Tensor& x, const Tensor& w_gate, const Tensor& w_up, const Tensor* b_gate, const Tensor* b_up,
                 GluAct act, Tensor& s, const SmallMOptions& opt);

}  // namespace wick::cuda_ops
