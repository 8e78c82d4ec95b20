// Paged attention and the paged K/V write: validation and dispatch (ops/paged_attention.h).
#include "ops/paged_attention.h"

#include <cmath>
#include <string>

#include "ops/attention.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

namespace {

// The batch tensors' contents, when the host can read them (CPU): every range the kernels rely on.
void check_batch_contents(const char* op, const PagedKvBatch& b, Arg q, Arg table, int64_t N, int64_t BS, int64_t NB) {
  const Arg qs{"batch.query_start", &b.query_start}, kl{"batch.kv_len", &b.kv_len};
  const int64_t S = b.kv_len.dim(0), MB = b.block_table.dim(1);
  const int32_t* start = b.query_start.data<int32_t>();
  const int32_t* len = b.kv_len.data<int32_t>();
  const int32_t* tab = b.block_table.data<int32_t>();
  if (start[0] != 0) fail(op, {qs}, "batch.query_start[0] must be 0, got " + std::to_string(start[0]));
  if (start[S] != N)
    fail(op, {q, qs}, "batch.query_start[S] must be q's rows N = " + std::to_string(N) + ", got " + std::to_string(start[S]));
  for (int64_t s = 0; s < S; s++) {
    const int64_t T = start[s + 1] - start[s];
    if (T < 1 || T > b.max_query_len)
      fail(op, {qs}, "sequence " + std::to_string(s) + " has " + std::to_string(T) + " query rows; each needs 1 to " +
                         "batch.max_query_len = " + std::to_string(b.max_query_len));
    if (b.max_kv_len > 0 && len[s] > b.max_kv_len)
      fail(op, {kl}, "batch.kv_len[" + std::to_string(s) + "] = " + std::to_string(len[s]) + " exceeds batch.max_kv_len = " +
                         std::to_string(b.max_kv_len));
    if (len[s] < T || len[s] > MB * BS)
      fail(op, {kl, table}, "batch.kv_len[" + std::to_string(s) + "] = " + std::to_string(len[s]) + " must be in [T_s, MB * BS] = [" +
                                std::to_string(T) + ", " + std::to_string(MB * BS) + "]");
    for (int64_t j = 0; j < (len[s] + BS - 1) / BS; j++)
      if (tab[s * MB + j] < 0 || tab[s * MB + j] >= NB)
        fail(op, {table}, "block_table[" + std::to_string(s) + ", " + std::to_string(j) + "] = " +
                              std::to_string(tab[s * MB + j]) + " is not a block of the pool [0, " + std::to_string(NB) + ")");
  }
}

}  // namespace

void paged_attention_forward(const Tensor& q, const Tensor& k_pool, const Tensor& v_pool, const PagedKvBatch& batch,
                             float scale, int64_t window, Tensor& out) {
  static const char* op = "paged_attention_forward";
  const Arg Q{"q", &q}, K{"k_pool", &k_pool}, V{"v_pool", &v_pool}, O{"out", &out};
  const Arg qs{"batch.query_start", &batch.query_start}, kl{"batch.kv_len", &batch.kv_len},
      bt{"batch.block_table", &batch.block_table};
  const Device dev = ops_detail::one_device(op, {Q, K, V, O, qs, kl, bt});
  ops_detail::need_rank(op, Q, 3, "[N, H, D]");
  ops_detail::need_rank(op, K, 4, "[NB, BS, Hkv, D]");
  ops_detail::need_act(op, Q);
  ops_detail::need_same_dtype(op, K, Q);
  ops_detail::need_same_dtype(op, V, Q);
  ops_detail::need_same_dtype(op, O, Q);
  ops_detail::need_shape(op, {K, V}, V, k_pool.shape(), "k_pool's shape [NB, BS, Hkv, D]");
  ops_detail::need_shape(op, {Q, O}, O, q.shape(), "q's shape [N, H, D]");
  const int64_t N = q.dim(0), H = q.dim(1), D = q.dim(2), NB = k_pool.dim(0), BS = k_pool.dim(1), Hkv = k_pool.dim(2);
  if (k_pool.dim(3) != D) fail(op, {Q, K}, "k_pool must be [NB, BS, Hkv, D] with D = " + std::to_string(D));
  if (Hkv <= 0 || H % Hkv != 0)
    fail(op, {Q, K}, "the query heads H must be a multiple of the kv heads Hkv (grouped-query attention)");
  for (const Arg& a : {qs, kl, bt}) ops_detail::need_index(op, a, false);
  ops_detail::need_rank(op, kl, 1, "[S]");
  ops_detail::need_rank(op, bt, 2, "[S, MB]");
  const int64_t S = batch.kv_len.dim(0);
  ops_detail::need_shape(op, {kl, qs}, qs, {S + 1}, "[S + 1]");
  if (batch.block_table.dim(0) != S) fail(op, {kl, bt}, "batch.block_table must be [S, MB] with S = " + std::to_string(S));
  if (!(scale > 0.0f) || !std::isfinite(scale))
    fail(op, {Q}, "scale must be a positive finite number (usually 1/sqrt(D)), got " + std::to_string(scale));
  if (window < 0) fail(op, {Q}, "window must be >= 0 (0: no sliding window), got " + std::to_string(window));
  if (batch.max_query_len < 1 || (S > 0 && batch.max_query_len > N))
    fail(op, {Q}, "batch.max_query_len = " + std::to_string(batch.max_query_len) + " must be in [1, N = " +
                      std::to_string(N) + "]");
  if (dev.is_cpu()) check_batch_contents(op, batch, Q, bt, N, BS, NB);
  if (N == 0 || S == 0) return;
  WICK_OP_DISPATCH(op, dev, paged_attention_forward, q, k_pool, v_pool, batch, scale, window, out);
}

void paged_kv_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& slots, Tensor& k_pool, Tensor& v_pool) {
  static const char* op = "paged_kv_write";
  const Arg R{"k_rows", &k_rows}, RV{"v_rows", &v_rows}, P{"slots", &slots}, C{"k_pool", &k_pool}, CV{"v_pool", &v_pool};
  ops_detail::one_device(op, {R, RV, P, C, CV});
  ops_detail::need_rank(op, R, 2, "[N, X]");
  ops_detail::need_rank(op, C, 4, "[NB, BS, Hkv, D]");
  ops_detail::need_rank(op, P, 1, "[N]");
  ops_detail::need_shape(op, {C, CV}, CV, k_pool.shape(), "k_pool's shape [NB, BS, Hkv, D]");
  ops_detail::need_shape(op, {R, RV}, RV, k_rows.shape(), "k_rows' shape [N, X]");
  const int64_t N = k_rows.dim(0), X = k_rows.dim(1), rows = k_pool.dim(0) * k_pool.dim(1);
  ops_detail::need_shape(op, {R, P}, P, {N}, "[N]");
  if (k_pool.dim(2) * k_pool.dim(3) != X)
    fail(op, {R, C}, "k_rows must be [N, X] with X = Hkv * D = " + std::to_string(k_pool.dim(2) * k_pool.dim(3)));
  // kv_cache_write checks the rest (dtypes, slots in range on the CPU) over these views.
  Tensor kc = k_pool.view({1, rows, X}), vc = v_pool.view({1, rows, X});
  kv_cache_write(k_rows.view({1, N, X}), v_rows.view({1, N, X}), slots.view({1, N}), kc, vc);
}

}  // namespace wick
