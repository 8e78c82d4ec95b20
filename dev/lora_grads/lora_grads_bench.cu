// Harness for lora_grads.cuh (a LoRA linear's dB and du^T from one read of dy): checks v1 against an f64 CPU
// reference and run-to-run bit equality, and times it beside what wick runs today (two cuBLAS GEMMs, the
// operations of model/linear.cpp adapter_grads_B16) on the Qwen2.5-0.5B training shapes (N = 8 x 1024) and a
// few odd ones. Median of CUDA-event-timed calls; dy is cycled through copies larger than L2 so that its reads
// are HBM's, as in a training step.
// Build (here or on the GPU machine):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o dev/lora_grads/lora_grads_bench.bin \
//     dev/lora_grads/lora_grads_bench.cu -lcublas
// Run: dev/lora_grads/lora_grads_bench.bin
// First H200 run (session 18; bench/results/2026-12-04-h200-session18.txt): every check passes, same bits run to
// run; v1 22.7 us against the two GEMMs' 26.5 on q/o/down [8192 x 896], 19.2 against 23.0 on k/v [8192 x 128], but
// 73.9 against 56.1 on gate/up [8192 x 4864]. Net ~0.4 ms of a ~54 ms 0.5B step: not integrated.
// v2 (session 23, written without a device) streams the tiles by cp.async; it comes with
// dev/lora_grads/lora_dy_grads.patch as wick's kernel (src/ops/cuda/lora_dy_grads.cuh), which this harness then
// times beside v1.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../common/cuda_check.cuh"
#include "../common/median_us.cuh"
#include "lora_grads.cuh"

using lora_grads::bf16;

#define CB(x)                                                            \
  do {                                                                   \
    cublasStatus_t st_ = (x);                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                  \
      std::printf("cuBLAS error %d at %s:%d\n", (int)st_, __FILE__, __LINE__); \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

std::vector<bf16> random_bf16(size_t n, std::mt19937& g, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<bf16> v(n);
  for (auto& x : v) x = __float2bfloat16_rn(d(g));
  return v;
}
float f(bf16 v) { return __bfloat162float(v); }

template <class T> T* upload(const std::vector<T>& h) {
  T* p = nullptr;
  CK(cudaMalloc(&p, h.size() * sizeof(T)));
  CK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}
template <class T> std::vector<T> download(const T* p, size_t n) {
  std::vector<T> h(n);
  CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

int main() {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  cublasHandle_t h;
  CB(cublasCreate(&h));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  CB(cublasSetStream(h, s));
  const int r = lora_grads::kRank;
  const float scale = 2.0f;
  struct Case {
    const char* name;
    int N, out;
  };
  const Case cases[] = {{"odd_N200_out48", 200, 48},      {"odd_N1000_out272", 1000, 272}, {"q_o_down_8192x896", 8192, 896},
                        {"k_v_8192x128", 8192, 128},      {"gate_up_8192x4864", 8192, 4864},
                        {"odd_N1608_out1040", 1608, 1040}, {"1.5b_q_o_down_8192x1536", 8192, 1536},
                        {"1.5b_gate_up_8192x8960", 8192, 8960}};
  bool all_ok = true;
  for (const Case& c : cases) {
    std::mt19937 g(1234 + c.N + c.out);
    const int N = c.N, out = c.out;
    const auto dy_h = random_bf16((size_t)N * out, g, 1e-3f), uT_h = random_bf16((size_t)r * N, g, 1.0f),
               B_h = random_bf16((size_t)out * r, g, 0.05f);
    std::vector<float> dB0((size_t)out * r);
    std::normal_distribution<float> d(0.0f, 1e-3f);
    for (auto& x : dB0) x = d(g);
    // f64 reference
    std::vector<double> dB_ref(dB0.begin(), dB0.end()), du_ref((size_t)r * N, 0.0);
    for (int n = 0; n < N; n++)
      for (int o = 0; o < out; o++) {
        const double y = f(dy_h[(size_t)n * out + o]);
        for (int j = 0; j < r; j++) {
          dB_ref[(size_t)o * r + j] += scale * y * f(uT_h[(size_t)j * N + n]);
          du_ref[(size_t)j * N + n] += scale * y * f(B_h[(size_t)o * r + j]);
        }
      }
    // dy copies past L2 (two at least), so each timed call reads dy from memory
    const size_t dy_bytes = (size_t)N * out * 2;
    const int copies = std::max<int>(2, (int)((3ull * prop.l2CacheSize) / std::max<size_t>(dy_bytes, 1) + 1));
    std::vector<bf16*> dys;
    for (int i = 0; i < copies; i++) dys.push_back(upload(dy_h));
    bf16 *uT = upload(uT_h), *B = upload(B_h), *duT = nullptr;
    float* dB = upload(dB0);
    CK(cudaMalloc(&duT, (size_t)r * N * 2));
    const lora_grads::Shape sh = lora_grads::plan(N, out, prop.multiProcessorCount);
    float *W1 = nullptr, *W2 = nullptr;
    CK(cudaMalloc(&W1, (size_t)sh.P * out * r * 4));
    CK(cudaMalloc(&W2, (size_t)sh.Q * r * N * 4));
    const long long total = (long long)out * r + (long long)r * N;
    const unsigned reduce_blocks = (unsigned)std::min<long long>((total + 255) / 256, 4096);
    auto fused = [&](const bf16* dyp) {
      lora_grads::lora_grads_v1<<<dim3(sh.P, sh.Q), lora_grads::kThreads, 0, s>>>(dyp, uT, B, W1, W2, sh);
      lora_grads::lora_grads_reduce<<<reduce_blocks, 256, 0, s>>>(W1, W2, scale, dB, duT, sh);
    };
    // what wick runs today: dB^T (col-major 16 x out) += s u^T dy ; du (col-major N x 16) = s dy B
    const float one = 1.0f, zero = 0.0f;
    auto two_gemms = [&](const bf16* dyp) {
      CB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_T, r, out, N, &scale, uT, CUDA_R_16BF, N, dyp, CUDA_R_16BF, out, &one, dB,
                      CUDA_R_32F, r, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      CB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_T, N, r, out, &scale, dyp, CUDA_R_16BF, out, B, CUDA_R_16BF, r, &zero, duT,
                      CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    auto check = [&](const char* what) {
      CK(cudaStreamSynchronize(s));
      const auto dB_h = download(dB, (size_t)out * r);
      const auto du_h = download(duT, (size_t)r * N);
      double e1 = 0, m1 = 0, e2 = 0, m2 = 0;
      for (size_t i = 0; i < dB_h.size(); i++) e1 = std::max(e1, std::fabs(dB_h[i] - dB_ref[i])), m1 = std::max(m1, std::fabs(dB_ref[i]));
      for (size_t i = 0; i < du_h.size(); i++) e2 = std::max(e2, std::fabs(f(du_h[i]) - du_ref[i])), m2 = std::max(m2, std::fabs(du_ref[i]));
      const bool ok = e1 <= 1e-4 * m1 && e2 <= 8e-3 * m2;  // dB f32 sums; du^T rounded to bf16 once
      all_ok = all_ok && ok;
      std::printf("  %-10s dB max|diff|/max|ref| %.2e, du^T %.2e  %s\n", what, e1 / m1, e2 / m2, ok ? "ok" : "FAIL");
      return std::make_pair(dB_h, du_h);
    };
    std::printf("%s: N %d out %d (v1: P %d, Q %d, %d tiles a column group)\n", c.name, N, out, sh.P, sh.Q,
                sh.tiles_per_q);
    // Each variant: checked against the reference, then run again from the same dB and compared bit for bit.
    auto check_variant = [&](const char* what, auto&& run) {
      CK(cudaMemcpy(dB, dB0.data(), dB0.size() * 4, cudaMemcpyHostToDevice));
      run(dys[0]);
      CK(cudaGetLastError());
      const auto first = check(what);
      CK(cudaMemcpy(dB, dB0.data(), dB0.size() * 4, cudaMemcpyHostToDevice));
      run(dys[0]);
      CK(cudaStreamSynchronize(s));
      const bool same = download(dB, (size_t)out * r) == first.first &&
                        std::equal(first.second.begin(), first.second.end(), download(duT, (size_t)r * N).begin(),
                                   [](bf16 a, bf16 b) { return __bfloat16_as_ushort(a) == __bfloat16_as_ushort(b); });
      all_ok = all_ok && same;
      std::printf("  %s run twice: %s\n", what, same ? "same bits" : "DIFFERENT bits");
    };
    check_variant("v1", fused);
    CK(cudaMemcpy(dB, dB0.data(), dB0.size() * 4, cudaMemcpyHostToDevice));
    two_gemms(dys[0]);
    check("cublas");
    int call = 0;  // each call reads the next copy of dy
    // One call between two events (launch latency included, as bench_seed times a row), and 20 calls queued back
    // to back between two events, per call (as in a training step, where the launches run ahead of the GPU).
    auto times = [&](const char* what, auto&& run) {
      const double one = median_us(s, [&] { run(dys[call++ % copies]); }, 100);
      const double queued = median_us(s, [&] { for (int k = 0; k < 20; k++) run(dys[call++ % copies]); }, 20) / 20;
      std::printf("  time %-7s one call %6.1f us, queued %6.1f us a call (dy read at %.0f GB/s)\n", what, one, queued,
                  dy_bytes / queued / 1e3);
    };
    times("v1", fused);
    times("cublas", two_gemms);
    for (bf16* p : dys) CK(cudaFree(p));
    CK(cudaFree(uT));
    CK(cudaFree(B));
    CK(cudaFree(duT));
    CK(cudaFree(dB));
    CK(cudaFree(W1));
    CK(cudaFree(W2));
  }
  std::printf("%s\n", all_ok ? "all checks passed" : "SOME CHECKS FAILED");
  return all_ok ? 0 : 1;
}
