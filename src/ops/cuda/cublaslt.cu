// The cuBLASLt wrapper: handles, workspaces and cached GEMM plans (see cublaslt.h).
//
// Row-major wick matrices are column-major matrices transposed, so c = op(a) op(b) (row-major) is computed
// as the column-major product c^T = op(b)^T op(a)^T: cuBLAS's "A" is our b and its "B" is our a, m = n_ours,
// n = m_ours. The bias epilogue adds a vector over the rows of the column-major D, i.e. our columns.
#include "ops/cuda/cublaslt.h"

#include <cublasLt.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/device.h"
#include "core/env.h"
#include "core/error.h"
#include "ops/cuda/runtime.h"

#define WICK_CUBLAS_CHECK(expr)                                                                        \
  do {                                                                                                 \
    cublasStatus_t wick_s_ = (expr);                                                                   \
    if (wick_s_ != CUBLAS_STATUS_SUCCESS)                                                              \
      ::wick::check_failed(#expr, __FILE__, __LINE__, std::string("cuBLASLt: ") + cublasLtGetStatusString(wick_s_)); \
  } while (0)

namespace wick::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: throw Error(std::string("matmul: CUDA matmul takes float tensors, got ") + dtype_name(t));
  }
}

// Largest power of two (<= 256) dividing the address and, for batches, every item's offset, and, for
// strided rows, every row's offset (a matrix whose rows start misaligned is as misaligned as its pointer).
uint32_t alignment(const void* p, int64_t stride_bytes, int64_t row_bytes) {
  uint64_t x = reinterpret_cast<uintptr_t>(p) | 256u;
  if (stride_bytes) x |= static_cast<uint64_t>(stride_bytes);
  if (row_bytes) x |= static_cast<uint64_t>(row_bytes);
  return static_cast<uint32_t>(x & (~x + 1));
}

struct Key {
  int8_t ab, c;
  bool ta, tb, bias;
  int64_t m, n, k, batch, sa, sb, sc;
  int64_t lda, ldb, ldc;  // row strides, resolved (never 0)
  int64_t ldc_in;         // out of place: c_in's row stride (resolved); 0 = in place
  uint32_t al_a, al_b, al_c, al_bias, al_c_in;
  bool operator==(const Key& o) const {
    return ab == o.ab && c == o.c && ta == o.ta && tb == o.tb && bias == o.bias && m == o.m && n == o.n &&
           k == o.k && batch == o.batch && sa == o.sa && sb == o.sb && sc == o.sc && lda == o.lda &&
           ldb == o.ldb && ldc == o.ldc && ldc_in == o.ldc_in && al_a == o.al_a && al_b == o.al_b &&
           al_c == o.al_c && al_bias == o.al_bias && al_c_in == o.al_c_in;
  }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    mix(k.ab | k.c << 4 | k.ta << 8 | k.tb << 9 | k.bias << 10);
    mix(k.m), mix(k.n), mix(k.k), mix(k.batch), mix(k.sa), mix(k.sb), mix(k.sc);
    mix(k.lda), mix(k.ldb), mix(k.ldc), mix(k.ldc_in), mix(k.al_c_in);
    mix(uint64_t(k.al_a) | uint64_t(k.al_b) << 16 | uint64_t(k.al_c) << 32 | uint64_t(k.al_bias) << 48);
    return static_cast<size_t>(h);
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;  // cuBLAS's A (our b), B (our a), D
  cublasLtMatrixLayout_t lc_in = nullptr;  // cuBLAS's C out of place (our c_in); in place: lc
  cublasLtMatmulAlgo_t algo{};                  // the one used: the heuristic's first until tuned
  std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's answers, first = its choice
  int64_t uses = 0;
  bool tuned = false;
};

// ---- the algorithm choice (see cublaslt.h) ----
constexpr int kCandidates = 8;
constexpr int64_t kTuneAtUse = 3;                  // a shape is tuned on its third call (it recurs)
constexpr double kTuneMinMacs = 1073741824.0;      // and only with >= 2^30 multiply-adds (worth ~10 us or more)

std::atomic<int64_t> tuned_count{0};
std::atomic<int64_t> untuned_calls{0};  // calls of a shape still to be tuned, that brought it closer

bool tuning_on() {
  static const bool on = env_default_on("WICK_GEMM_TUNE");
  return on;
}

// An order-free 64-bit hash of n 16-bit words (the output's bytes): sum of mixed (word, index) modulo 2^64.
__global__ void hash_kernel(const uint16_t* p, int64_t n, unsigned long long* out) {
  unsigned long long acc = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    unsigned long long z = (static_cast<unsigned long long>(i) << 16 | p[i]) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    acc += z ^ (z >> 31);
  }
  atomicAdd(out, acc);
}

// Handles, workspaces and plans live until the process ends (destroying them during static destruction
// could run after the CUDA context is gone).
struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::mutex mu;  // guards plans and the per-call bias attribute of a shared descriptor
  std::unordered_map<Key, std::unique_ptr<Plan>, KeyHash> plans;
};

DeviceState& state(int device) {
  static std::mutex mu;
  static std::vector<DeviceState*> states;
  std::lock_guard<std::mutex> lock(mu);
  if (states.empty()) states.assign(cuda_device_count(), nullptr);
  WICK_CHECK(device >= 0 && device < (int)states.size(), "cuda:" << device);
  if (!states[device]) {
    auto* s = new DeviceState();
    set_device(device);
    WICK_CUBLAS_CHECK(cublasLtCreate(&s->handle));
    WICK_CUDA_CHECK(cudaMalloc(&s->workspace, kWorkspaceBytes));
    states[device] = s;
  }
  return *states[device];
}

void set_batch(cublasLtMatrixLayout_t l, int64_t batch, int64_t stride) {
  if (batch <= 1) return;
  const int32_t count = static_cast<int32_t>(batch);
  WICK_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
  WICK_CUBLAS_CHECK(
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

std::unique_ptr<Plan> make_plan(DeviceState& st, const GemmArgs& g, const Key& key) {
  auto p = std::make_unique<Plan>();
  const cudaDataType_t tab = cuda_type(g.ab_type), tc = cuda_type(g.c_type);
  WICK_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  if (g.bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &tc, sizeof(tc)));
    WICK_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }
  // Stored (pre-op) shapes, column-major: our b [k, n] row-major is [n, k] column-major, and so on; our
  // row strides are cuBLAS's leading dimensions.
  const uint64_t a_rows = g.trans_b ? g.k : g.n, a_cols = g.trans_b ? g.n : g.k;
  const uint64_t b_rows = g.trans_a ? g.m : g.k, b_cols = g.trans_a ? g.k : g.m;
  WICK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, tab, a_rows, a_cols, key.ldb));
  WICK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, tab, b_rows, b_cols, key.lda));
  WICK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, tc, g.n, g.m, key.ldc));
  set_batch(p->la, g.batch, g.stride_b);
  set_batch(p->lb, g.batch, g.stride_a);
  set_batch(p->lc, g.batch, g.stride_c);
  if (key.ldc_in) {
    WICK_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc_in, tc, g.n, g.m, key.ldc_in));
    set_batch(p->lc_in, g.batch, g.stride_c);
  }
  const cublasLtMatrixLayout_t c_layout = p->lc_in ? p->lc_in : p->lc;

  cublasLtMatmulPreference_t pref = nullptr;
  WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspaceBytes;
  WICK_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t al[4] = {key.al_b, key.al_a, key.ldc_in ? key.al_c_in : key.al_c, key.al_c};  // cuBLAS A = our b, B = our a, C, D
  const cublasLtMatmulPreferenceAttributes_t which[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i)
    WICK_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, which[i], &al[i], sizeof(al[i])));
  cublasLtMatmulHeuristicResult_t results[kCandidates]{};
  int returned = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(st.handle, p->desc, p->la, p->lb, c_layout, p->lc, pref,
                                                          kCandidates, results, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || returned == 0) {
    throw Error(std::string("matmul: cuBLASLt has no algorithm for ") + dtype_name(g.ab_type) + " x " +
                    dtype_name(g.ab_type) + " -> " + dtype_name(g.c_type) + " m=" + std::to_string(g.m) +
                    " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) + " batch=" + std::to_string(g.batch) +
                    (g.bias ? " with bias" : "") + " (" + cublasLtGetStatusString(s) + ")",
                "", "supported: f32 x f32 -> f32, bf16 x bf16 -> bf16 or f32, f16 x f16 -> f16 or f32");
  }
  for (int i = 0; i < returned; i++) p->candidates.push_back(results[i].algo);
  p->algo = results[0].algo;
  return p;
}

// Times the plan's candidate algorithms on this very call's operands and keeps the fastest of those whose output
// is bit for bit the first's (its hash equal on these operands: algorithms that split k or sum in another order
// differ; the tiles of one order agree), so that the choice changes the time and never the numbers. In place, c
// is restored when beta != 0 (a saved copy); with beta = 0, or out of place (c_in is only read), the call that
// follows writes it. Runs outside stream capture only; synchronises the stream (once per shape in a process).
void tune(DeviceState& st, Plan& p, const GemmArgs& g, int64_t span, size_t ec, cudaStream_t s) {
  const size_t bytes = static_cast<size_t>(span) * ec;
  void* saved = nullptr;
  unsigned long long* hash = nullptr;
  WICK_CUDA_CHECK(cudaMallocAsync(&hash, sizeof(unsigned long long), s));
  if (g.beta != 0.0f && !g.c_in) {
    WICK_CUDA_CHECK(cudaMallocAsync(&saved, bytes, s));
    WICK_CUDA_CHECK(cudaMemcpyAsync(saved, g.c, bytes, cudaMemcpyDeviceToDevice, s));
  }
  const auto run = [&](const cublasLtMatmulAlgo_t& algo) {
    return cublasLtMatmul(st.handle, p.desc, &g.alpha, g.b, p.la, g.a, p.lb, &g.beta, g.c_in ? g.c_in : g.c,
                          p.lc_in ? p.lc_in : p.lc, g.c, p.lc, &algo, st.workspace, kWorkspaceBytes, s);
  };
  const auto output_hash = [&](const cublasLtMatmulAlgo_t& algo, unsigned long long& h) {
    if (saved) WICK_CUDA_CHECK(cudaMemcpyAsync(g.c, saved, bytes, cudaMemcpyDeviceToDevice, s));
    if (run(algo) != CUBLAS_STATUS_SUCCESS) return false;
    WICK_CUDA_CHECK(cudaMemsetAsync(hash, 0, sizeof(*hash), s));
    hash_kernel<<<264, 256, 0, s>>>(static_cast<const uint16_t*>(g.c), static_cast<int64_t>(bytes / 2), hash);
    WICK_CUDA_CHECK(cudaGetLastError());
    WICK_CUDA_CHECK(cudaMemcpyAsync(&h, hash, sizeof(h), cudaMemcpyDeviceToHost, s));
    WICK_CUDA_CHECK(cudaStreamSynchronize(s));
    return true;
  };
  cudaEvent_t t0, t1;
  WICK_CUDA_CHECK(cudaEventCreate(&t0));
  WICK_CUDA_CHECK(cudaEventCreate(&t1));
  const auto median_ms = [&](const cublasLtMatmulAlgo_t& algo) {
    std::vector<float> ms;
    run(algo);  // warm
    for (int i = 0; i < 5; i++) {
      WICK_CUDA_CHECK(cudaEventRecord(t0, s));
      run(algo);
      WICK_CUDA_CHECK(cudaEventRecord(t1, s));
      WICK_CUDA_CHECK(cudaEventSynchronize(t1));
      float v = 0;
      WICK_CUDA_CHECK(cudaEventElapsedTime(&v, t0, t1));
      ms.push_back(v);
    }
    std::nth_element(ms.begin(), ms.begin() + 2, ms.end());
    return ms[2];
  };
  unsigned long long h0 = 0;
  if (output_hash(p.candidates[0], h0)) {
    float best = median_ms(p.candidates[0]);
    for (size_t i = 1; i < p.candidates.size(); i++) {
      unsigned long long h = 0;
      if (!output_hash(p.candidates[i], h) || h != h0) continue;
      const float t = median_ms(p.candidates[i]);
      if (t < best) best = t, p.algo = p.candidates[i];
    }
  }
  WICK_CUDA_CHECK(cudaEventDestroy(t0));
  WICK_CUDA_CHECK(cudaEventDestroy(t1));
  if (saved) {
    WICK_CUDA_CHECK(cudaMemcpyAsync(g.c, saved, bytes, cudaMemcpyDeviceToDevice, s));
    WICK_CUDA_CHECK(cudaFreeAsync(saved, s));
  }
  WICK_CUDA_CHECK(cudaFreeAsync(hash, s));
  p.tuned = true;
  tuned_count.fetch_add(1, std::memory_order_relaxed);
}

// Whether c's bytes may be rewritten while tuning: not while the stream is being captured into a graph, and not
// when c overlaps an input or the bias. Extents in elements: (batch - 1) stride + (rows - 1) row stride + cols.
bool may_tune(const GemmArgs& g, const Key& key, int64_t span, size_t ec, size_t eab, cudaStream_t s) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone) return false;
  const char* c0 = static_cast<const char*>(g.c);
  const char* c1 = c0 + static_cast<size_t>(span) * ec;
  const auto overlaps = [&](const void* p, int64_t elems, size_t e) {
    const char* q = static_cast<const char*>(p);
    return p && q < c1 && c0 < q + static_cast<size_t>(elems) * e;
  };
  const int64_t batches = g.batch > 1 ? g.batch - 1 : 0;
  const int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
  const int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
  return !overlaps(g.a, batches * key.sa + (a_rows - 1) * key.lda + a_cols, eab) &&
         !overlaps(g.b, batches * key.sb + (b_rows - 1) * key.ldb + b_cols, eab) && !overlaps(g.bias, g.n, ec) &&
         !overlaps(g.c_in, batches * key.sc + (g.m - 1) * key.ldc_in + g.n, ec);
}

}  // namespace

int64_t tuned_shapes() { return tuned_count.load(std::memory_order_relaxed); }
int64_t tuning_progress() {
  return tuned_count.load(std::memory_order_relaxed) + untuned_calls.load(std::memory_order_relaxed);
}

bool gemm_bias_aligned(const void* bias) { return reinterpret_cast<uintptr_t>(bias) % 16 == 0; }

void gemm(const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  WICK_CHECK(g.k > 0, "gemm with k = 0 must be handled by the caller");
  const bool ok_types = (g.ab_type == DType::F32 && g.c_type == DType::F32) ||
                        (g.ab_type != DType::F32 && (g.c_type == g.ab_type || g.c_type == DType::F32));
  if (!ok_types)
    throw Error(std::string("matmul: unsupported CUDA dtypes ") + dtype_name(g.ab_type) + " inputs -> " +
                    dtype_name(g.c_type) + " output",
                "", "use f32 x f32 -> f32, or bf16 x bf16 -> bf16 or f32");
  const size_t eab = dtype_size(g.ab_type), ec = dtype_size(g.c_type);
  Key key{};
  key.ab = static_cast<int8_t>(g.ab_type);
  key.c = static_cast<int8_t>(g.c_type);
  key.ta = g.trans_a, key.tb = g.trans_b, key.bias = g.bias != nullptr;
  key.m = g.m, key.n = g.n, key.k = g.k, key.batch = g.batch;
  key.sa = g.batch > 1 ? g.stride_a : 0;
  key.sb = g.batch > 1 ? g.stride_b : 0;
  key.sc = g.batch > 1 ? g.stride_c : 0;
  // Row strides: packed ones are the stored row lengths (so a packed call keys as it always did).
  const int64_t packed_a = g.trans_a ? g.m : g.k, packed_b = g.trans_b ? g.k : g.n;
  key.lda = g.lda ? g.lda : packed_a;
  key.ldb = g.ldb ? g.ldb : packed_b;
  key.ldc = g.ldc ? g.ldc : g.n;
  WICK_CHECK(key.lda >= packed_a && key.ldb >= packed_b && key.ldc >= g.n,
             "gemm row strides lda=" << key.lda << " ldb=" << key.ldb << " ldc=" << key.ldc << " below the rows");
  const auto row_bytes = [](int64_t ld, int64_t packed, size_t e) { return ld == packed ? 0 : ld * (int64_t)e; };
  key.al_a = alignment(g.a, key.sa * static_cast<int64_t>(eab), row_bytes(key.lda, packed_a, eab));
  key.al_b = alignment(g.b, key.sb * static_cast<int64_t>(eab), row_bytes(key.ldb, packed_b, eab));
  key.al_c = alignment(g.c, key.sc * static_cast<int64_t>(ec), row_bytes(key.ldc, g.n, ec));
  key.al_bias = g.bias ? alignment(g.bias, 0, 0) : 0;
  if (g.c_in) {
    key.ldc_in = g.ldc_in ? g.ldc_in : g.n;
    WICK_CHECK(key.ldc_in >= g.n, "gemm row stride ldc_in=" << key.ldc_in << " below the rows");
    key.al_c_in = alignment(g.c_in, key.sc * static_cast<int64_t>(ec), row_bytes(key.ldc_in, g.n, ec));
  }

  DeviceState& st = state(g.device);
  cudaStream_t s = stream(g.device);
  set_device(g.device);
  std::lock_guard<std::mutex> lock(st.mu);
  auto it = st.plans.find(key);
  if (it == st.plans.end()) it = st.plans.emplace(key, make_plan(st, g, key)).first;
  Plan& p = *it->second;
  if (g.bias)  // this call's bias, for the tuning runs and the call itself
    WICK_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                                     sizeof(g.bias)));
  if (!p.tuned && g.may_tune) {
    const int64_t span = (g.batch > 1 ? (g.batch - 1) * key.sc : 0) + (g.m - 1) * key.ldc + g.n;  // c's elements
    if (!tuning_on() || p.candidates.size() < 2 ||
        static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) * static_cast<double>(g.batch) < kTuneMinMacs) {
      p.tuned = true;  // the heuristic's choice stays
    } else if (may_tune(g, key, span, ec, eab, s)) {  // calls that could tune count: not captured ones
      if (++p.uses >= kTuneAtUse) tune(st, p, g, span, ec, s);
      else untuned_calls.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // cuBLAS's A is our b and its B is our a (see the top of this file).
  WICK_CUBLAS_CHECK(cublasLtMatmul(st.handle, p.desc, &g.alpha, g.b, p.la, g.a, p.lb, &g.beta, g.c_in ? g.c_in : g.c,
                                   p.lc_in ? p.lc_in : p.lc, g.c, p.lc, &p.algo, st.workspace, kWorkspaceBytes, s));
}

}  // namespace wick::cuda
