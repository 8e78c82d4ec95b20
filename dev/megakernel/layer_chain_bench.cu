// Would one persistent kernel (or in-grid counters) beat today's chain of PDL launches for decode's projections? (issue 12: 1.5B decode
// at ~740 tok/s against a goal of 900)
//
// Why. A replayed 1.5B decode step spends ~44 us a layer where its weights (93.6 MB) stream in ~20 us at the
// H200's 4.8 TB/s. Each of the layer's 7 kernels is a latency chain (griddepcontrol.wait, load x, reduce, store)
// of a few microseconds on top of its bytes, and sessions 18-22 found no fusion of two kernels that shortens it
// (docs/benchmarks.md section 10). A persistent kernel - every block resident, the phases separated by grid
// barriers, each block's first weight loads of a phase issued before it waits at that phase's barrier - replaces
// a kernel boundary by a barrier. This harness measures whether that is cheaper, before a decode megakernel is
// written: the layer's four projection phases of Qwen2.5-1.5B (q|k|v with bias; o + the residual; gate/up + GLU;
// down + the residual; no norms, no attention: o reads q in attention's place), over L layers with their own
// weights (28 x 93.6 MB: each layer's weights come from HBM), run two ways with the very block code wick runs
// (src/ops/cuda/small_m_linear.cuh, small_m_block):
//   chain:      one small_m launch a phase under PDL (weights prefetched before griddepcontrol.wait), captured in a
//               CUDA graph and replayed: decode's projections today;
//   persistent: one cooperative launch for all L layers; each phase's blocks (small_m's grid, the same plan) dealt to
//               the resident blocks in turn, a grid barrier (cooperative_groups) where the kernel would call
//               pdl::enter(). Resident blocks: the occupancy (default) or `blocks_per_sm` a multiprocessor.
//   flagged:    (session 33) the full grid of every phase, as the chain, but the phases of a layer (or of all L layers)
//               in ONE launch, in block order; a block waits for the phase before it through a counter in global
//               memory that each finished block of that phase raises (fence, then atomicAdd; the waiter polls with
//               ld.acquire) instead of a kernel boundary, after its prefetched weight loads as in the chain. Blocks
//               are dispatched in index order and an earlier phase never waits on a later one, so the waiting
//               blocks cannot starve the ones they wait for (CUB's decoupled look-back relies on the same order).
//               Two forms: "layer" = one launch a layer, PDL between the launches (a layer's first phase waits in
//               griddepcontrol.wait), in a CUDA graph; "all" = one launch for all L layers. Each with the waiter
//               sleeping 0 or 64 ns between polls.
//               Measured in session 33 (H100, 28 layers): chain 37.9 us a layer, flagged one launch a layer 55.7,
//               one launch for all layers 55.9, sleeping or not; every output bit for bit the chain's.
// All run the same block code in the same order: the final activations must be equal bit for bit (checked), and
// the chain's first layer is checked against a CPU f32 reference (each output within 1% of its scale). Times:
// median of 7 replays / launches, per layer, with the weights' bandwidth.
// Build (here): nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src \
//   -o build-gpu/layer_chain_bench.bin dev/megakernel/layer_chain_bench.cu
// Run: layer_chain_bench.bin [layers (28)]
#include <cooperative_groups.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "ops/cuda/small_m_linear.cuh"

#include "../common/cuda_check.cuh"
#include "../common/median_us.cuh"
#include "../common/projection_layers.cuh"

namespace cg = cooperative_groups;
using bf16 = __nv_bfloat16;
using namespace wick;
using A = ProjectionArgs;
using Layer = ProjectionLayer;  // one layer's four phases (plan() fills in row0, rows, K)

constexpr int kVec = 8;  // bf16 elements a 16-byte load

// The phase's U (loads in flight a lane) as plan() picks it for these shapes, fixed at compile time here: q|k|v 4,
// o 8, gate/up + GLU 4, down 8 (small_m::default_tuning). main() checks that plan() agrees.
constexpr int kUqkv = 4, kUo = 8, kUglu = 4, kUdown = 8;

// One phase in the persistent kernel: virtual blocks v = blockIdx.x, + gridDim.x, ... of small_m's grid, the grid
// barrier before the first one reads x (after its prefetched weight loads); a block without work still arrives.
template <int MODE, int U> __device__ __forceinline__ void phase(const A& a, int blocks, cg::grid_group& grid) {
  bool waited = false;
  for (int v = blockIdx.x; v < blocks; v += gridDim.x) {
    small_m::small_m_block<bf16, bf16, 1, kVec, MODE, U>(a, v, [&] {
      if (!waited) grid.sync();
    });
    waited = true;
    __syncthreads();  // the block's shared scratch is reused by its next virtual block
  }
  if (!waited) grid.sync();
}

struct Blocks {
  int qkv, o, glu, down;
};

// MinBlocks: __launch_bounds__'s blocks an SM (1: the registers the phases want, ~136: one block an SM; 2: at most 128;
// 3: at most 85, three blocks resident, with spills).
template <int MinBlocks>
__global__ void __launch_bounds__(small_m::kThreads, MinBlocks) persistent_layers(const Layer* layers, int L, Blocks nb) {
  cg::grid_group grid = cg::this_grid();
  for (int l = 0; l < L; l++) {
    const Layer& y = layers[l];
    phase<small_m::kPlain, kUqkv>(y.qkv, nb.qkv, grid);
    phase<small_m::kPlain, kUo>(y.o, nb.o, grid);
    phase<small_m::kGluSilu, kUglu>(y.glu, nb.glu, grid);
    phase<small_m::kPlain, kUdown>(y.down, nb.down, grid);
  }
}

// The flagged form: counters done[4 l + p] (zeroed before each run) count the finished blocks of layer l's phase p.
struct FlagArgs {
  const Layer* layers;
  int l0;            // the launch's first layer (its blocks: layers l0, l0 + 1, ... in block order)
  Blocks nb;
  unsigned* done;
  int pdl;           // 1: the launch's first phase waits in griddepcontrol.wait (one launch a layer, under PDL)
  int sleep_ns;      // the waiter's pause between polls (0: spin)
};

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Block v of one phase: wait (after the prefetched weight loads) for `need` blocks of the phase before it (prev),
// or in griddepcontrol.wait (pdl_wait), or not at all (the very first phase); then raise this phase's counter.
template <int MODE, int U>
__device__ __forceinline__ void flagged_phase(const A& a, int v, const unsigned* prev, unsigned need, bool pdl_wait,
                                              unsigned* mine, int sleep_ns) {
  small_m::small_m_block<bf16, bf16, 1, kVec, MODE, U>(a, v, [&] {
    if (pdl_wait) {
      pdl::enter();
      return;
    }
    if (threadIdx.x == 0 && prev)
      while (ld_acquire(prev) < need)
        if (sleep_ns) __nanosleep(sleep_ns);
    __syncthreads();
  });
  __threadfence();  // this thread's stores (the block's outputs) before the count
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(mine, 1u);
}

__global__ void __launch_bounds__(small_m::kThreads, small_m::kMinBlocks) flagged_layers(FlagArgs f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Let the next launch (the next layer, under PDL) be scheduled once every block here has started; its blocks
  // wait in griddepcontrol.wait for this whole grid. (The first phase calls it again in pdl::enter: harmless.)
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  const Blocks& nb = f.nb;
  const int per = nb.qkv + nb.o + nb.glu + nb.down;
  const int li = blockIdx.x / per, l = f.l0 + li;
  int v = blockIdx.x % per;
  const Layer& y = f.layers[l];
  unsigned* d = f.done + 4 * l;
  if (v < nb.qkv) {
    const bool pdl_wait = f.pdl && li == 0;
    flagged_phase<small_m::kPlain, kUqkv>(y.qkv, v, l > 0 ? d - 1 : nullptr, nb.down, pdl_wait, d, f.sleep_ns);
    return;
  }
  v -= nb.qkv;
  if (v < nb.o) {
    flagged_phase<small_m::kPlain, kUo>(y.o, v, d, nb.qkv, false, d + 1, f.sleep_ns);
    return;
  }
  v -= nb.o;
  if (v < nb.glu) {
    flagged_phase<small_m::kGluSilu, kUglu>(y.glu, v, d + 1, nb.o, false, d + 2, f.sleep_ns);
    return;
  }
  v -= nb.glu;
  flagged_phase<small_m::kPlain, kUdown>(y.down, v, d + 2, nb.glu, false, d + 3, f.sleep_ns);
}

int main(int argc, char** argv) {
  const int L = argc > 1 ? std::atoi(argv[1]) : 28;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs; %d layers of Qwen2.5-1.5B's projections (C %d, q|k|v %d, I %d), M 1\n", prop.name,
              prop.multiProcessorCount, L, kC, kQ + 2 * kKV, kI);

  // Weights and activations, per layer.
  std::vector<std::pair<bf16*, size_t>> acts;  // every activation buffer: cleared before a checked run
  bf16* x0 = alloc_fill(kC, 1.0f, 7);
  std::vector<Layer> layers = make_projection_layers(L, x0, acts);
  const bf16* x_last = layers[L - 1].down.y[0];

  // The plans (wick's rule) and the compile-time U the persistent kernel uses.
  Blocks nb;
  const small_m::Plan pq = small_m::plan(layers[0].qkv, small_m::kPlain), po = small_m::plan(layers[0].o, small_m::kPlain),
                      pg = small_m::plan(layers[0].glu, small_m::kGluSilu),
                      pd = small_m::plan(layers[0].down, small_m::kPlain);
  for (Layer& y : layers) {
    small_m::plan(y.qkv, small_m::kPlain), small_m::plan(y.o, small_m::kPlain);
    small_m::plan(y.glu, small_m::kGluSilu), small_m::plan(y.down, small_m::kPlain);
  }
  nb = {pq.blocks, po.blocks, pg.blocks, pd.blocks};
  std::printf("plans (blocks K U vec): qkv %d %d %d %d, o %d %d %d %d, glu %d %d %d %d, down %d %d %d %d\n", pq.blocks,
              layers[0].qkv.K, pq.unroll, pq.vec, po.blocks, layers[0].o.K, po.unroll, po.vec, pg.blocks,
              layers[0].glu.K, pg.unroll, pg.vec, pd.blocks, layers[0].down.K, pd.unroll, pd.vec);
  if (pq.unroll != kUqkv || po.unroll != kUo || pg.unroll != kUglu || pd.unroll != kUdown || !pq.vec || !po.vec ||
      !pg.vec || !pd.vec) {
    std::printf("FAIL: plan() no longer picks the U / widths this harness compiles\n");
    return 1;
  }

  // The chain: a CUDA graph of 4 L PDL launches.
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  for (const Layer& y : layers) {
    CK(small_m::launch(y.qkv, small_m::kPlain, st));
    CK(small_m::launch(y.o, small_m::kPlain, st));
    CK(small_m::launch(y.glu, small_m::kGluSilu, st));
    CK(small_m::launch(y.down, small_m::kPlain, st));
  }
  CK(cudaStreamEndCapture(st, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  CK(cudaGraphLaunch(exec, st));
  CK(cudaStreamSynchronize(st));
  const std::vector<float> chain_out = host(x_last, kC);

  // CPU f32 reference of layer 0's q|k|v (rounded as the kernel rounds: bias in f32, one rounding).
  {
    const std::vector<float> hx = host(x0, kC), hw = host(layers[0].qkv.w[0], (size_t)(kQ + 2 * kKV) * kC),
                             hb = host(layers[0].qkv.b[0], kQ + 2 * kKV), hq = host(layers[0].qkv.y[0], kQ + 2 * kKV);
    double worst = 0, scale = 0;
    for (int o = 0; o < kQ + 2 * kKV; o++) {
      double acc = hb[o];
      for (int i = 0; i < kC; i++) acc += (double)hw[(size_t)o * kC + i] * hx[i];
      worst = std::max(worst, std::fabs(acc - hq[o])), scale = std::max(scale, std::fabs(acc));
    }
    std::printf("layer 0 q|k|v against f64: max |diff| %.4g (scale %.3g) %s\n", worst, scale,
                worst <= 0.01 * scale ? "ok" : "FAIL");
    if (!(worst <= 0.01 * scale)) return 1;
  }

  // The persistent kernel: resident blocks from the occupancy (or WICK_BLOCKS_PER_SM).
  Layer* dl;
  CK(cudaMalloc(&dl, L * sizeof(Layer)));
  CK(cudaMemcpy(dl, layers.data(), L * sizeof(Layer), cudaMemcpyHostToDevice));
  // Median of 7 replays / launches, no warm-up (each form ran once, checked, before it is timed), in ms.
  const auto time_it = [&](auto&& run) { return static_cast<float>(median_us(st, run, 7, 0) / 1e3); };
  const float chain_ms = time_it([&] { CK(cudaGraphLaunch(exec, st)); });
  std::printf("chain (graph of %d PDL launches): %.1f us a layer, %.2f TB/s of weights\n", 4 * L, 1000 * chain_ms / L,
              projection_tb_per_s(L, chain_ms));

  bool all_same = true;
  auto persistent = [&](auto kernel, const char* name) {
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, small_m::kThreads, 0));
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, kernel));
    std::printf("persistent kernel %s: %d registers, %zu bytes local memory, occupancy %d blocks an SM\n", name,
                fa.numRegs, fa.localSizeBytes, occ);
    std::vector<int> per_sm_list = {occ};
    for (int b : {1, 2, 4})
      if (b < occ) per_sm_list.push_back(b);
    for (int per_sm : per_sm_list) {
      const int grid = per_sm * prop.multiProcessorCount;
      int Lv = L;
      void* args[] = {(void*)&dl, (void*)&Lv, (void*)&nb};
      auto run = [&] { CK(cudaLaunchCooperativeKernel((void*)kernel, grid, small_m::kThreads, args, 0, st)); };
      // Every activation NaN first (0xFFFF is a bf16 NaN): a phase that read its input before the barrier let it be
      // written would carry a NaN, or a value of the previous run, to the end.
      for (const auto& [p, n] : acts) CK(cudaMemset(p, 0xFF, n * sizeof(bf16)));
      run();
      CK(cudaStreamSynchronize(st));
      const bool same = host(x_last, kC) == chain_out;
      all_same = all_same && same;
      const float ms = time_it(run);
      std::printf("persistent %s, %d blocks an SM (%d): %.1f us a layer, %.2f TB/s of weights; output %s the chain's\n",
                  name, per_sm, grid, 1000 * ms / L, projection_tb_per_s(L, ms),
                  same ? "bit for bit" : "DIFFERS from (FAIL)");
    }
  };
  persistent(persistent_layers<1>, "<1>");
  persistent(persistent_layers<2>, "<2>");
  persistent(persistent_layers<3>, "<3>");

  // The flagged forms, each captured in a graph (the counters' memset first) and checked as the persistent runs.
  {
    cudaFuncAttributes fa;
    CK(cudaFuncGetAttributes(&fa, flagged_layers));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, flagged_layers, small_m::kThreads, 0));
    std::printf("flagged kernel: %d registers, %zu bytes local memory, occupancy %d blocks an SM\n", fa.numRegs,
                fa.localSizeBytes, occ);
    unsigned* done;
    CK(cudaMalloc(&done, 4 * L * sizeof(unsigned)));
    const int per = nb.qkv + nb.o + nb.glu + nb.down;
    for (int one_launch : {0, 1})
      for (int sleep_ns : {0, 64}) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
        CK(cudaMemsetAsync(done, 0, 4 * L * sizeof(unsigned), st));
        if (one_launch) {
          FlagArgs fa2{dl, 0, nb, done, 0, sleep_ns};
          flagged_layers<<<per * L, small_m::kThreads, 0, st>>>(fa2);
          CK(cudaGetLastError());
        } else {
          for (int l = 0; l < L; l++) {
            FlagArgs fa2{dl, l, nb, done, 1, sleep_ns};
            CK(pdl::launch(flagged_layers, dim3(per), dim3(small_m::kThreads), 0, st, fa2));
          }
        }
        CK(cudaStreamEndCapture(st, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        for (const auto& [p, n] : acts) CK(cudaMemset(p, 0xFF, n * sizeof(bf16)));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaStreamSynchronize(st));
        const bool same = host(x_last, kC) == chain_out;
        all_same = all_same && same;
        const float ms = time_it([&] { CK(cudaGraphLaunch(ge, st)); });
        std::printf("flagged, %s, poll sleep %d ns: %.1f us a layer, %.2f TB/s of weights; output %s the chain's\n",
                    one_launch ? "one launch for all layers" : "one launch a layer (PDL)", sleep_ns, 1000 * ms / L,
                    projection_tb_per_s(L, ms), same ? "bit for bit" : "DIFFERS from (FAIL)");
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(g));
      }
    const float again = time_it([&] { CK(cudaGraphLaunch(exec, st)); });
    std::printf("chain again: %.1f us a layer\n", 1000 * again / L);
  }
  std::printf("%s\n", all_same ? "done: every persistent and flagged run equals the chain" : "FAIL: a run differs");
  return all_same ? 0 : 1;
}
