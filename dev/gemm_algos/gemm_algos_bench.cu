// Does cuBLASLt's first heuristic leave time on the table for the frozen GEMMs of a LoRA training step?
//
// wick's matmul (src/ops/cuda/cublaslt.cu) takes cublasLtMatmulAlgoGetHeuristic's first answer for every shape.
// The frozen GEMMs are ~55% of a 0.5B training step (docs/benchmarks.md section 8e), the large ones at ~600
// TFLOP/s and the narrow ones (k/v: 128 columns) near 200. This harness asks cuBLASLt for up to 16 algorithms on
// each of the step's GEMM shapes, described exactly as wick describes them (row-major operands as transposed
// column-major ones, beta = 1 where wick accumulates, the bias epilogue where it adds one), times every one
// (median of CUDA-event-timed calls, operands larger than L2 are not cycled: a training step's operands are
// warm only in part, so these are best cases for every algorithm alike), and says whether each algorithm's
// output equals the first's bit for bit (a different algorithm that changed the bits would change training's
// results between builds and cuBLAS versions, so it matters which ones keep them).
// Build (here or on the GPU machine):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -o build-gpu/gemm_algos_bench.bin \
//     dev/gemm_algos/gemm_algos_bench.cu -lcublasLt
// Run: build-gpu/gemm_algos_bench.bin [0.5b|1.5b|7b]   (default 0.5b: 8 x 1024 tokens; 7b: 4 x 1024)
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../common/cuda_check.cuh"
#include "../common/median_us.cuh"

#define CL(x)                                                                                        \
  do {                                                                                               \
    cublasStatus_t st_ = (x);                                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                              \
      std::printf("cuBLASLt error %s at %s:%d\n", cublasLtGetStatusString(st_), __FILE__, __LINE__); \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)

using bf16 = __nv_bfloat16;

// One of the step's GEMMs, in wick's (row-major) terms: c [m, n] (= or +=) op(a) [m, k] op(b) [k, n] (+ bias).
struct Shape {
  const char* name;
  long long m, n, k;
  bool ta, tb, accumulate, bias;
  int per_step;  // how many a training step runs (layers, lm_head chunks)
};

__global__ void fill(bf16* p, size_t n, unsigned seed, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed * 40503u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    p[i] = __float2bfloat16_rn(scale * ((float)(h & 0xffff) / 32768.0f - 1.0f));
  }
}

bf16* random_device(size_t n, unsigned seed, float scale) {
  bf16* p = nullptr;
  CK(cudaMalloc(&p, n * sizeof(bf16)));
  fill<<<1024, 256>>>(p, n, seed, scale);
  CK(cudaGetLastError());
  return p;
}

// The Qwen2.5 models' sizes: hidden, intermediate, k/v width, vocabulary, layers; the training rows' tokens a step.
struct Preset {
  const char* name;
  long long H, I, KV, V, L, N;
};
const Preset kPresets[] = {{"0.5b", 896, 4864, 128, 151936, 24, 8192},
                           {"1.5b", 1536, 8960, 256, 151936, 28, 8192},
                           {"7b", 3584, 18944, 512, 152064, 28, 4096}};

int main(int argc, char** argv) {
  const Preset* pre = &kPresets[0];
  for (const Preset& p : kPresets)
    if (argc > 1 && std::strcmp(argv[1], p.name) == 0) pre = &p;
  if (argc > 1 && pre == &kPresets[0] && std::strcmp(argv[1], "0.5b") != 0) {
    std::printf("usage: %s [0.5b|1.5b|7b]\n", argv[0]);
    return 2;
  }
  const long long N = pre->N, H = pre->H, I = pre->I, KV = pre->KV, V = pre->V, C = 1024;  // lm_head in 1,024-row chunks
  const int L = (int)pre->L, chunks = (int)(N / C);
  const std::vector<Shape> shapes = {
      // forward: y = x W^T (+ b), beta = 1 after the adapter term is written into y (model/linear.cpp forward16)
      {"fwd q (bias)", N, H, H, false, true, true, true, L},
      {"fwd k|v (bias)", N, KV, H, false, true, true, true, 2 * L},
      {"fwd o", N, H, H, false, true, true, false, L},
      {"fwd gate|up", N, I, H, false, true, true, false, 2 * L},
      {"fwd down", N, H, I, false, true, true, false, L},
      // backward: dx (+)= dy W
      {"dx q (=)", N, H, H, false, false, false, false, L},
      {"dx k|v (+=)", N, H, KV, false, false, true, false, 2 * L},
      {"dx o (=)", N, H, H, false, false, false, false, L},
      {"dx gate (=)", N, H, I, false, false, false, false, L},
      {"dx up (+=)", N, H, I, false, false, true, false, L},
      {"dx down (=)", N, I, H, false, false, false, false, L},
      // lm_head (tied embedding [V, H]) over one chunk of rows: logits, and dx from dlogits
      {"lm_head fwd", C, V, H, false, true, false, false, chunks},
      {"lm_head dx", C, H, V, false, false, false, false, chunks},
  };
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const int ver = (int)cublasLtGetVersion();
  std::printf("%s, cuBLASLt %d, Qwen2.5-%s, N = %lld rows; per algorithm: median us, TFLOP/s, same bits as #0\n",
              prop.name, ver, pre->name, N);
  cublasLtHandle_t lt;
  CL(cublasLtCreate(&lt));
  const size_t ws_bytes = size_t(32) << 20;  // wick's workspace
  void* ws = nullptr;
  CK(cudaMalloc(&ws, ws_bytes));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  double total_first = 0, total_best = 0, total_best_same = 0;
  for (const Shape& sh : shapes) {
    const size_t na = (size_t)sh.m * sh.k, nb = (size_t)sh.k * sh.n, nc = (size_t)sh.m * sh.n;
    bf16* a = random_device(na, 1, 1.0f);
    bf16* b = random_device(nb, 2, 0.05f);
    bf16* c0 = random_device(nc, 3, 1.0f);  // the accumulated-into values, kept to restore c before a bit check
    bf16* bias = random_device((size_t)sh.n, 4, 0.5f);
    bf16* c = nullptr;
    CK(cudaMalloc(&c, nc * sizeof(bf16)));
    // As cublaslt.cu: cuBLAS's A is our b, its B our a; column-major c^T [n, m].
    cublasLtMatmulDesc_t desc;
    CL(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_a = sh.tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = sh.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    CL(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
    CL(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
    if (sh.bias) {
      const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      const cudaDataType_t bt = CUDA_R_16BF;
      CL(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      CL(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
      CL(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    const unsigned long long a_rows = sh.tb ? sh.k : sh.n, a_cols = sh.tb ? sh.n : sh.k;
    const unsigned long long b_rows = sh.ta ? sh.m : sh.k, b_cols = sh.ta ? sh.k : sh.m;
    cublasLtMatrixLayout_t la, lb, lc;
    CL(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, a_rows, a_cols, a_rows));
    CL(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, b_rows, b_cols, b_rows));
    CL(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, sh.n, sh.m, sh.n));
    cublasLtMatmulPreference_t pref;
    CL(cublasLtMatmulPreferenceCreate(&pref));
    CL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                            sizeof(ws_bytes)));
    cublasLtMatmulHeuristicResult_t res[16];
    int got = 0;
    CL(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 16, res, &got));
    const float alpha = 1.0f, beta = sh.accumulate ? 1.0f : 0.0f;
    const double flop = 2.0 * sh.m * sh.n * sh.k;
    std::printf("\n%-16s m %lld n %lld k %lld%s%s, %d a step, %d algorithms\n", sh.name, sh.m, sh.n, sh.k,
                sh.accumulate ? ", beta 1" : "", sh.bias ? ", bias" : "", sh.per_step, got);
    double first = 0, best = 1e30, best_same = 1e30;
    std::vector<unsigned short> h_ref(nc), h(nc);
    for (int i = 0; i < got; i++) {
      auto run = [&] {
        CL(cublasLtMatmul(lt, desc, &alpha, b, la, a, lb, &beta, c, lc, c, lc, &res[i].algo, ws, ws_bytes, s));
      };
      CK(cudaMemcpyAsync(c, c0, nc * sizeof(bf16), cudaMemcpyDeviceToDevice, s));
      run();
      CK(cudaStreamSynchronize(s));
      CK(cudaMemcpy(h.data(), c, nc * sizeof(bf16), cudaMemcpyDeviceToHost));
      if (i == 0) h_ref = h;
      const bool same = h == h_ref;
      // beta = 1 keeps adding into c while timed; the values drift, the work does not.
      const double us = median_us(s, run, 50);
      if (i == 0) first = us;
      best = std::min(best, us);
      if (same) best_same = std::min(best_same, us);
      int tile = 0, stages = 0, splitk = 0, red = 0;
      size_t w = 0;
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof(red), &w);
      std::printf("  #%-2d %9.2f us %7.1f TFLOP/s  %s  tile %d stages %d splitK %d red %d ws %zu\n", i, us,
                  flop / us * 1e-6, same ? "same bits" : "DIFFERENT", tile, stages, splitk, red,
                  res[i].workspaceSize);
    }
    if (got > 0) {
      std::printf("  first %.2f us, best %.2f (%.1f%%), best with #0's bits %.2f; a step: %.0f -> %.0f us\n", first,
                  best, 100.0 * (first - best) / first, best_same, first * sh.per_step, best * sh.per_step);
      total_first += first * sh.per_step;
      total_best += best * sh.per_step;
      total_best_same += best_same * sh.per_step;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaFree(c0));
    CK(cudaFree(c));
    CK(cudaFree(bias));
  }
  std::printf("\nper %s step (these shapes x their counts): first heuristic %.2f ms, best %.2f ms, best keeping the "
              "bits %.2f ms\n", pre->name, total_first * 1e-3, total_best * 1e-3, total_best_same * 1e-3);
  return 0;
}
