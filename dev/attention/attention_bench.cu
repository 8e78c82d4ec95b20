// Standalone harness for the tensor-core flash attention kernels (llm.c style): builds the very kernels wick
// runs (src/ops/cuda/flash_attention_*.cuh, header-only), checks them against a CPU f64 reference, and times
// them with CUDA events. No wick library, no cuBLAS.
//
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
//        -cudart static -Xcompiler -pthread -I src -o attention_bench dev/attention/attention_bench.cu
//   ./attention_bench [variant ...]      (no argument: every variant)
//
// Variants (numbered; each a forward and a backward):
//   1  FA2 mma.sync m16n8k16, cp.async double-buffered tiles, deterministic two-pass backward
//      (delta, dQ query-major, dK/dV key-major summing the whole GQA group in one block).
//   2  as 1, but the dK/dV pass splits the group's heads over blocks when its grid is small (f32 partials,
//      then an ordered reduce: still deterministic), every head its own block. What wick runs.
//   3  as 2 with the fewest splits that give 6 blocks an SM (fewer partials to write and sum).
// The variants share the kernels as they are now (delta inside the dQ launch, ex2.approx exponentials) and
// differ in the dK/dV split only; the versions measured on the way are in dev/attention/NOTES.md and git.
// wick dispatches to variant 2 (flash_bwd_plan's default).
//
// Checks: ||out - ref|| / ||ref|| for out, lse, dq, dk, dv on random inputs (fresh per check), outputs
// poisoned with NaN first (an unwritten element fails). Full f64 reference on small odd shapes (T not a
// multiple of the tile, GQA 1/2/7, D 64/128, packed segments with length-1 segments, a kv_len offset into a
// larger cache whose unused rows hold NaN), and on the 0.5B layer shape; on the large timing shapes, rows
// and keys are sampled. Timing: median of many reps with CUDA events, rotating over 3 input sets.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ops/cuda/flash_attention_bwd.cuh"
#include "ops/cuda/flash_attention_fwd.cuh"

using wick::flash::bf16;
using wick::flash::FlashParams;

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #x); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

static int g_sms = 132;

// v1: the dK/dV pass sums the whole GQA group in one block (no split, no partials)
static cudaError_t bwd_v1(const FlashParams& p, cudaStream_t s, int parts) {
  FlashParams q = p;
  q.dkv_split = 1;
  return wick::flash::flash_backward(q, s, parts);
}
// v2: the group's heads split over blocks when the grid is small (f32 partials + ordered reduce)
static cudaError_t bwd_v2(const FlashParams& p, cudaStream_t s, int parts) {
  FlashParams q = p;
  wick::flash::flash_bwd_plan(q, g_sms);
  return wick::flash::flash_backward(q, s, parts);
}

// v3: as v2, but the fewest head splits that give the dK/dV pass 6 blocks an SM (fewer partials)
static cudaError_t bwd_v3(const FlashParams& p, cudaStream_t s, int parts) {
  FlashParams q = p;
  wick::flash::flash_bwd_plan(q, g_sms, 6);
  return wick::flash::flash_backward(q, s, parts);
}

struct Variant {
  int id;
  const char* name;
  cudaError_t (*fwd)(const FlashParams&, cudaStream_t);
  cudaError_t (*bwd)(const FlashParams&, cudaStream_t, int parts);
};
static const Variant kVariants[] = {
    {1, "fa2-mma-det", wick::flash::flash_forward, bwd_v1},
    {2, "fa2-mma-det-split", wick::flash::flash_forward, bwd_v2},
    {3, "fa2-mma-det-split-few", wick::flash::flash_forward, bwd_v3},
};

struct Shape {
  const char* name;
  int B, T, H, Hkv, D;
  int kv_len = 0, S = 0;  // 0: = T
  bool seg = false;
  bool bwd = true;
  int sample = 0;  // 0: full reference; else check this many sampled rows / keys
};

static float bf(float x) { return __bfloat162float(__float2bfloat16(x)); }

// Host copies (f32 values of the bf16 data) and device buffers of one problem.
struct Problem {
  Shape s;
  int kv_len, S, kv_start;
  std::vector<float> q, k, v, dout;
  std::vector<int32_t> seg;
  bf16 *dq_ = nullptr, *dk_ = nullptr, *dv_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *o_ = nullptr,
       *do_ = nullptr;
  float *lse_ = nullptr, *scratch_ = nullptr;
  int32_t* seg_ = nullptr;
  size_t nq, nk;
};

static void fill_problem(Problem& p, const Shape& s, uint64_t seed) {
  p.s = s;
  p.kv_len = s.kv_len ? s.kv_len : s.T;
  p.S = s.S ? s.S : p.kv_len;
  p.kv_start = p.kv_len - s.T;
  p.nq = size_t(s.B) * s.T * s.H * s.D;
  p.nk = size_t(s.B) * p.S * s.Hkv * s.D;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto gen = [&](std::vector<float>& x, size_t n) {
    x.resize(n);
    for (auto& e : x) e = bf(nd(rng));
  };
  gen(p.q, p.nq), gen(p.k, p.nk), gen(p.v, p.nk), gen(p.dout, p.nq);
  // cache rows past kv_len hold NaN: reading them poisons the output
  for (int b = 0; b < s.B; ++b)
    for (size_t j = size_t(p.kv_len) * s.Hkv * s.D; j < size_t(p.S) * s.Hkv * s.D; ++j)
      p.k[size_t(b) * p.S * s.Hkv * s.D + j] = p.v[size_t(b) * p.S * s.Hkv * s.D + j] = NAN;
  if (s.seg) {  // increasing ids; segment lengths 1..~T/3, with length-1 segments
    p.seg.resize(size_t(s.B) * s.T);
    for (int b = 0; b < s.B; ++b) {
      int id = 0, left = 1;
      for (int t = 0; t < s.T; ++t) {
        if (--left <= 0 && t > 0) {
          ++id;
          const int r = int(rng() % 4);
          left = r == 0 ? 1 : r == 1 ? 1 + int(rng() % 5) : 1 + int(rng() % std::max(1, s.T / 3));
        }
        if (t == 0) left = 1 + int(rng() % std::max(1, s.T / 3));
        p.seg[size_t(b) * s.T + t] = id;
      }
    }
  }
  auto up = [](const std::vector<float>& x, bf16** d) {
    std::vector<bf16> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) h[i] = __float2bfloat16(x[i]);
    CK(cudaMalloc(d, h.size() * sizeof(bf16)));
    CK(cudaMemcpy(*d, h.data(), h.size() * sizeof(bf16), cudaMemcpyHostToDevice));
  };
  up(p.q, &p.q_), up(p.k, &p.k_), up(p.v, &p.v_), up(p.dout, &p.do_);
  CK(cudaMalloc(&p.o_, p.nq * sizeof(bf16)));
  CK(cudaMalloc(&p.dq_, p.nq * sizeof(bf16)));
  CK(cudaMalloc(&p.dk_, size_t(s.B) * s.T * s.Hkv * s.D * sizeof(bf16)));
  CK(cudaMalloc(&p.dv_, size_t(s.B) * s.T * s.Hkv * s.D * sizeof(bf16)));
  CK(cudaMalloc(&p.lse_, size_t(s.B) * s.H * s.T * sizeof(float)));
  {  // scratch for the largest split (every head its own block)
    FlashParams f;
    f.B = s.B, f.T = s.T, f.H = s.H, f.Hkv = s.Hkv, f.D = s.D, f.n_rep = s.H / s.Hkv;
    wick::flash::flash_bwd_plan(f, 1 << 20);  // as if the GPU were huge: split = n_rep
    CK(cudaMalloc(&p.scratch_, wick::flash::flash_bwd_plan(f, 1 << 20)));
  }
  if (s.seg) {
    CK(cudaMalloc(&p.seg_, p.seg.size() * sizeof(int32_t)));
    CK(cudaMemcpy(p.seg_, p.seg.data(), p.seg.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  }
}

static void free_problem(Problem& p) {
  for (void* x : {(void*)p.q_, (void*)p.k_, (void*)p.v_, (void*)p.o_, (void*)p.do_, (void*)p.dq_, (void*)p.dk_,
                  (void*)p.dv_, (void*)p.lse_, (void*)p.scratch_, (void*)p.seg_})
    if (x) CK(cudaFree(x));
}

static FlashParams params(const Problem& p) {
  FlashParams f;
  f.q = p.q_, f.k = p.k_, f.v = p.v_, f.out = p.o_, f.dout = p.do_, f.o = p.o_, f.lse = p.lse_;
  f.dq = p.dq_, f.dk = p.dk_, f.dv = p.dv_, f.scratch = p.scratch_, f.seg = p.seg_;
  f.B = p.s.B, f.T = p.s.T, f.H = p.s.H, f.Hkv = p.s.Hkv, f.D = p.s.D, f.n_rep = p.s.H / p.s.Hkv;
  f.kv_len = p.kv_len, f.kv_start = p.kv_start, f.S = p.S, f.dkv_rows = p.s.T;
  f.scale = 1.0f / std::sqrt(float(p.s.D));
  return f;
}

// ---- CPU f64 reference ----
struct Ref {
  const Problem& p;
  int D, H, Hkv, T, n_rep;
  double scale;
  explicit Ref(const Problem& pr)
      : p(pr), D(pr.s.D), H(pr.s.H), Hkv(pr.s.Hkv), T(pr.s.T), n_rep(pr.s.H / pr.s.Hkv),
        scale(1.0 / std::sqrt(double(pr.s.D))) {}
  const float* qrow(int b, int t, int h) const { return &p.q[((size_t(b) * T + t) * H + h) * D]; }
  const float* dorow(int b, int t, int h) const { return &p.dout[((size_t(b) * T + t) * H + h) * D]; }
  const float* krow(int b, int j, int g) const { return &p.k[((size_t(b) * p.S + j) * Hkv + g) * D]; }
  const float* vrow(int b, int j, int g) const { return &p.v[((size_t(b) * p.S + j) * Hkv + g) * D]; }
  bool sees(int b, int t, int j) const {
    if (j > p.kv_start + t) return false;
    return !p.s.seg || p.seg[size_t(b) * T + t] == p.seg[size_t(b) * T + j];
  }
  double dot(const float* a, const float* c) const {
    double s = 0;
    for (int d = 0; d < D; ++d) s += double(a[d]) * c[d];
    return s;
  }
  // out row, lse
  void fwd_row(int b, int h, int t, double* out, double& lse) const {
    const int g = h / n_rep;
    const float* qr = qrow(b, t, h);
    double m = -INFINITY;
    for (int j = 0; j <= p.kv_start + t; ++j)
      if (sees(b, t, j)) m = std::max(m, dot(qr, krow(b, j, g)) * scale);
    double l = 0;
    for (int d = 0; d < D; ++d) out[d] = 0;
    for (int j = 0; j <= p.kv_start + t; ++j) {
      if (!sees(b, t, j)) continue;
      const double e = std::exp(dot(qr, krow(b, j, g)) * scale - m);
      l += e;
      const float* vr = vrow(b, j, g);
      for (int d = 0; d < D; ++d) out[d] += e * vr[d];
    }
    for (int d = 0; d < D; ++d) out[d] /= l;
    lse = m + std::log(l);
  }
  // dq row given this row's out and lse
  void dq_row(int b, int h, int t, const double* out, double lse, double* dq) const {
    const int g = h / n_rep;
    const float* qr = qrow(b, t, h);
    const float* gr = dorow(b, t, h);
    double delta = 0;
    for (int d = 0; d < D; ++d) delta += double(gr[d]) * out[d];
    for (int d = 0; d < D; ++d) dq[d] = 0;
    for (int j = 0; j <= p.kv_start + t; ++j) {
      if (!sees(b, t, j)) continue;
      const double pr = std::exp(dot(qr, krow(b, j, g)) * scale - lse);
      const double ds = pr * (dot(gr, vrow(b, j, g)) - delta);
      const float* kr = krow(b, j, g);
      for (int d = 0; d < D; ++d) dq[d] += ds * kr[d] * scale;
    }
  }
  // dk, dv of key j of kv head g; lse and delta [B, H, T] of every row
  void dkdv_key(int b, int g, int j, const std::vector<double>& lse, const std::vector<double>& delta, double* dk,
                double* dv) const {
    for (int d = 0; d < D; ++d) dk[d] = dv[d] = 0;
    const float* kr = krow(b, j, g);
    const float* vr = vrow(b, j, g);
    for (int hr = 0; hr < n_rep; ++hr) {
      const int h = g * n_rep + hr;
      for (int t = std::max(0, j - p.kv_start); t < T; ++t) {
        if (!sees(b, t, j)) continue;
        const size_t st = (size_t(b) * H + h) * T + t;
        const float* qr = qrow(b, t, h);
        const float* gr = dorow(b, t, h);
        const double pr = std::exp(dot(qr, kr) * scale - lse[st]);
        const double ds = pr * (dot(gr, vr) - delta[st]);
        for (int d = 0; d < D; ++d) {
          dv[d] += pr * gr[d];
          dk[d] += ds * qr[d] * scale;
        }
      }
    }
  }
};

template <class F> static void parallel_for(long long n, F f) {
  const int nt = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  for (int w = 0; w < nt; ++w)
    th.emplace_back([&, w] {
      for (long long i = w; i < n; i += nt) f(i);
    });
  for (auto& t : th) t.join();
}

struct Err {
  double num = 0, den = 0, maxabs = 0;
  long long nonfinite = 0;
  void add(double got, double ref) {
    if (!std::isfinite(got)) {
      ++nonfinite;
      return;
    }
    num += (got - ref) * (got - ref), den += ref * ref, maxabs = std::max(maxabs, std::fabs(got - ref));
  }
  double rel() const { return nonfinite ? INFINITY : std::sqrt(num / std::max(den, 1e-300)); }
};

static std::vector<float> down_bf16(const bf16* d, size_t n) {
  std::vector<bf16> h(n);
  CK(cudaMemcpy(h.data(), d, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
  return f;
}
static std::vector<float> down_f32(const float* d, size_t n) {
  std::vector<float> f(n);
  CK(cudaMemcpy(f.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  return f;
}

// Runs variant v on a fresh problem, compares with the reference. Returns false on failure.
static bool check(const Variant& v, const Shape& s, uint64_t seed, FILE* log) {
  Problem p;
  fill_problem(p, s, seed);
  const FlashParams f = params(p);
  const size_t nkv = size_t(s.B) * s.T * s.Hkv * s.D, nst = size_t(s.B) * s.H * s.T;
  CK(cudaMemset(p.o_, 0xff, p.nq * sizeof(bf16)));  // NaN
  CK(cudaMemset(p.lse_, 0xff, nst * sizeof(float)));
  CK(v.fwd(f, 0));
  if (s.bwd) {
    CK(cudaMemset(p.dq_, 0xff, p.nq * sizeof(bf16)));
    CK(cudaMemset(p.dk_, 0xff, nkv * sizeof(bf16)));
    CK(cudaMemset(p.dv_, 0xff, nkv * sizeof(bf16)));
    CK(v.bwd(f, 0, 7));
  }
  CK(cudaDeviceSynchronize());
  const auto out = down_bf16(p.o_, p.nq);
  const auto lse = down_f32(p.lse_, nst);
  std::vector<float> dq, dk, dv;
  if (s.bwd) dq = down_bf16(p.dq_, p.nq), dk = down_bf16(p.dk_, nkv), dv = down_bf16(p.dv_, nkv);

  Ref ref(p);
  const int D = s.D;
  const bool full = s.sample == 0;
  // rows to check
  std::vector<long long> rows;  // (b, h, t) flattened as ((b * H + h) * T + t)
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  if (full) {
    for (long long i = 0; i < (long long)nst; ++i) rows.push_back(i);
  } else {
    for (int i = 0; i < s.sample; ++i) rows.push_back((long long)(rng() % nst));
    rows.push_back((long long)nst - 1);
  }
  std::vector<double> ro(rows.size() * D), rl(rows.size()), rdq(s.bwd ? rows.size() * D : 0);
  parallel_for((long long)rows.size(), [&](long long i) {
    const long long r = rows[i];
    const int t = int(r % s.T), h = int((r / s.T) % s.H), b = int(r / (s.T * (long long)s.H));
    ref.fwd_row(b, h, t, &ro[i * D], rl[i]);
    if (s.bwd) ref.dq_row(b, h, t, &ro[i * D], rl[i], &rdq[i * D]);
  });
  Err eo, el, edq, edk, edv;
  for (size_t i = 0; i < rows.size(); ++i) {
    const long long r = rows[i];
    const int t = int(r % s.T), h = int((r / s.T) % s.H), b = int(r / (s.T * (long long)s.H));
    const size_t qo = ((size_t(b) * s.T + t) * s.H + h) * D;
    for (int d = 0; d < D; ++d) eo.add(out[qo + d], ro[i * D + d]);
    el.add(lse[r], rl[i]);
    if (s.bwd)
      for (int d = 0; d < D; ++d) edq.add(dq[qo + d], rdq[i * D + d]);
  }
  if (s.bwd && full) {
    // lse, delta of every row from the reference, then every key
    std::vector<double> lse_all(nst), delta_all(nst);
    for (size_t i = 0; i < rows.size(); ++i) {
      const long long r = rows[i];
      const int t = int(r % s.T), h = int((r / s.T) % s.H), b = int(r / (s.T * (long long)s.H));
      lse_all[r] = rl[i];
      double dl = 0;
      const float* gr = ref.dorow(b, t, h);
      for (int d = 0; d < D; ++d) dl += double(gr[d]) * ro[i * D + d];
      delta_all[r] = dl;
    }
    const long long nkeys = (long long)s.B * s.Hkv * s.T;
    std::vector<double> rk(nkeys * D), rv(nkeys * D);
    parallel_for(nkeys, [&](long long i) {
      const int j = int(i % s.T), g = int((i / s.T) % s.Hkv), b = int(i / (s.T * (long long)s.Hkv));
      ref.dkdv_key(b, g, j, lse_all, delta_all, &rk[i * D], &rv[i * D]);
    });
    for (long long i = 0; i < nkeys; ++i) {
      const int j = int(i % s.T), g = int((i / s.T) % s.Hkv), b = int(i / (s.T * (long long)s.Hkv));
      const size_t o = ((size_t(b) * s.T + j) * s.Hkv + g) * D;
      for (int d = 0; d < D; ++d) edk.add(dk[o + d], rk[i * D + d]), edv.add(dv[o + d], rv[i * D + d]);
    }
  }
  if (s.bwd && full) {  // every element written
    for (float x : dq) if (!std::isfinite(x)) ++edq.nonfinite;
  }
  for (float x : out) if (!std::isfinite(x)) ++eo.nonfinite;
  const double tol_o = 1e-2, tol_g = 2e-2;
  bool ok = eo.rel() < tol_o && el.rel() < 1e-3;
  if (s.bwd) ok = ok && edq.rel() < tol_g && (!full || (edk.rel() < tol_g && edv.rel() < tol_g));
  char line[512];
  std::snprintf(line, sizeof line,
                "check v%d %-34s B%d T%d H%d Hkv%d D%d kv%d S%d%s%s: out %.2e lse %.2e dq %.2e dk %.2e dv %.2e "
                "(max|out-ref| %.2e) %s\n",
                v.id, s.name, s.B, s.T, s.H, s.Hkv, s.D, p.kv_len, p.S, s.seg ? " seg" : "",
                full ? "" : " sampled", eo.rel(), el.rel(), edq.rel(), edk.rel(), edv.rel(), eo.maxabs,
                ok ? "ok" : "FAIL");
  std::fputs(line, stdout);
  if (log) std::fputs(line, log);
  free_problem(p);
  return ok;
}

static double median(std::vector<float> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

// Times fwd, bwd, fwd+bwd of variant v on shape s (3 input sets rotated). Prints one line a stage.
static void timing(const Variant& v, const Shape& s, int reps, FILE* log) {
  Problem ps[3];
  for (int i = 0; i < 3; ++i) fill_problem(ps[i], s, 1000 + i);
  FlashParams f[3];
  for (int i = 0; i < 3; ++i) f[i] = params(ps[i]);
  for (int i = 0; i < 3; ++i) {  // warm up; lse for bwd
    CK(v.fwd(f[i], 0));
    CK(v.bwd(f[i], 0, 7));
  }
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  const double n_rep = s.H / s.Hkv;
  (void)n_rep;
  // causal FLOPs: QK^T and PV over T(T+1)/2 pairs (kv_start 0)
  const double pairs = double(s.B) * s.H * (double(s.T) * (s.T + 1) / 2);
  const double fl_fwd = 4.0 * pairs * s.D, fl_bwd = 10.0 * pairs * s.D;  // the 5-product count
  // stages 3, 4: the backward's launches one by one (dQ with delta; dK/dV with its reduce)
  const char* names[5] = {"fwd", "bwd", "fwd+bwd", "bwd:dq", "bwd:dkdv"};
  const int parts[5] = {0, 7, 7, 2, 4};
  for (int stage = 0; stage < 5; ++stage) {
    std::vector<float> ms;
    for (int r = 0; r < reps; ++r) {
      const FlashParams& fp = f[r % 3];
      CK(cudaEventRecord(a));
      if (stage == 0 || stage == 2) CK(v.fwd(fp, 0));
      if (stage != 0) CK(v.bwd(fp, 0, parts[stage]));
      CK(cudaEventRecord(b));
      CK(cudaEventSynchronize(b));
      float t;
      CK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    const double med = median(ms);
    const double fl = stage == 0 ? fl_fwd : stage == 1 ? fl_bwd : stage == 2 ? fl_fwd + fl_bwd
                    : stage == 3 ? 6.0 * pairs * s.D : 8.0 * pairs * s.D;
    char line[256];
    std::snprintf(line, sizeof line, "time  v%d %-10s %-8s %8.3f ms  %6.1f TFLOP/s (min %.3f, max %.3f, %d reps)\n",
                  v.id, s.name, names[stage], med, fl / (med * 1e-3) / 1e12, *std::min_element(ms.begin(), ms.end()),
                  *std::max_element(ms.begin(), ms.end()), reps);
    std::fputs(line, stdout);
    if (log) std::fputs(line, log);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  for (auto& p : ps) free_problem(p);
}

int main(int argc, char** argv) {
  std::vector<int> want;
  bool do_check = true, do_time = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-check")) do_check = false;
    else if (!std::strcmp(argv[i], "--no-time")) do_time = false;
    else want.push_back(std::atoi(argv[i]));
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  g_sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs, L2 %d MB, cc %d.%d\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20,
              prop.major, prop.minor);
  const char* out_dir = std::getenv("OUT");
  std::string log_path = std::string(out_dir ? out_dir : ".") + "/attention_bench.log";
  FILE* log = std::fopen(log_path.c_str(), "w");

  const Shape checks[] = {
      {"T17_gqa1_D64", 1, 17, 4, 4, 64},
      {"T130_gqa7_D128", 3, 130, 7, 1, 128},
      {"T300_gqa2_D64_seg", 2, 300, 4, 2, 64, 0, 0, true},
      {"T300_gqa7_D128_seg", 2, 300, 14, 2, 128, 0, 0, true},
      {"T16_gqa2_D64", 2, 16, 4, 2, 64},
      {"T77_kv200_S256_D128_fwd", 2, 77, 8, 4, 128, 200, 256, false, false},
      {"T100_kv1000_S1100_D64_fwd", 1, 100, 14, 2, 64, 1000, 1100, false, false},
      {"qwen05b_B8_T1024", 8, 1024, 14, 2, 64},
      {"long16k_sampled", 1, 16384, 14, 2, 64, 0, 0, false, true, 256},
      {"qwen7b_B4_T2048_sampled", 4, 2048, 28, 4, 128, 0, 0, false, true, 256},
      {"long16k_seg_sampled", 1, 16384, 14, 2, 64, 0, 0, true, true, 256},
  };
  const Shape times[] = {
      {"qwen05b", 8, 1024, 14, 2, 64},
      {"long16k", 1, 16384, 14, 2, 64},
      {"qwen7b", 4, 2048, 28, 4, 128},
  };
  int fails = 0;
  for (const Variant& v : kVariants) {
    if (!want.empty() && std::find(want.begin(), want.end(), v.id) == want.end()) continue;
    if (do_check)
      for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); ++i) fails += !check(v, checks[i], 42 + i, log);
    if (do_time)
      for (const Shape& s : times) timing(v, s, s.T >= 8192 ? 20 : 50, log);
  }
  if (log) std::fclose(log);
  std::printf("%s\n", fails ? "SOME CHECKS FAILED" : "all checks passed");
  return fails ? 1 : 0;
}
