// The seven projections of one Qwen2.5-0.5B decoder layer at 8 x 1024 tokens, forward + backward through the
// linear groups of model/linear.h (q k v | o | gate up | down), with LoRA r 16 on all seven and without: the
// difference of the two rows is what the adapters cost per layer (x 24 layers per training step). CUDA, bf16.
//   linear_layer/base_bf16/cuda, linear_layer/lora_r16_bf16/cuda
#include <memory>
#include <string>

#include "bench_util.h"
#include "model/linear.h"

namespace wick::bench {

namespace {

struct LayerLinears {
  static constexpr int64_t N = 8 * 1024, C = 896, KV = 128, I = 4864, r = 16;
  Linear q, k, v, o, gate, up, down;
  std::vector<std::vector<Linear*>> groups;
  std::vector<Tensor> x, dx, saved;          // per group: input [N, in], its gradient, saved adapter products
  std::vector<std::vector<Tensor>> y, dy;    // per group member: [N, out]
  LinearScratch scratch;
  Device dev;

  LayerLinears(bool lora, Device d) : dev(d) {
    Rng rng(7);
    auto make = [&](Linear& l, int64_t in, int64_t out, bool bias) {
      l.w = randn({out, in}, rng, dev, 0.03f).to(DType::BF16);
      if (bias) l.b = randn({out}, rng, dev, 0.1f).to(DType::BF16);
      if (lora) {
        l.lora.A = randn({r, in}, rng, dev, 0.03f);
        l.lora.B = randn({out, r}, rng, dev, 0.01f);
        l.lora.scale = 2.0f;
      }
    };
    make(q, C, C, true), make(k, C, KV, true), make(v, C, KV, true), make(o, C, C, false);
    make(gate, C, I, false), make(up, C, I, false), make(down, I, C, false);
    groups = {{&q, &k, &v}, {&o}, {&gate, &up}, {&down}};
    for (auto& g : groups) {
      pack_lora_group(g);
      pack_lora_grads(g);
      const int64_t in = g[0]->in(), R = lora_group_rank(g);
      x.push_back(randn({N, in}, rng, dev).to(DType::BF16));
      dx.push_back(Tensor::empty({N, in}, DType::BF16, dev));
      saved.push_back(R ? Tensor::empty({R, N}, DType::BF16, dev) : Tensor());
      y.emplace_back();
      dy.emplace_back();
      for (Linear* l : g) {
        y.back().push_back(Tensor::empty({N, l->out()}, DType::BF16, dev));
        dy.back().push_back(randn({N, l->out()}, rng, dev, 0.01f).to(DType::BF16));
      }
    }
  }

  void step() {
    for (size_t i = 0; i < groups.size(); i++) {
      std::vector<Tensor*> yp;
      for (Tensor& t : y[i]) yp.push_back(&t);
      linear_group_forward(groups[i], x[i], yp, saved[i], scratch);
    }
    for (size_t i = groups.size(); i-- > 0;) {
      std::vector<const Tensor*> dyp;
      for (const Tensor& t : dy[i]) dyp.push_back(&t);
      linear_group_backward(groups[i], dyp, x[i], saved[i], dx[i], false, scratch);
    }
  }
};

}  // namespace

void register_linear_benchmarks(const std::vector<Device>& devices) {
  for (Device dev : devices) {
    if (!dev.is_cuda()) continue;  // 8192-row GEMMs: GPU rows only
    for (bool lora : {false, true}) {
      const std::string name = std::string("linear_layer/") + (lora ? "lora_r16_bf16" : "base_bf16") + dev_suffix(dev);
      benchmark::RegisterBenchmark(name.c_str(), [lora, dev](benchmark::State& st) {
        auto L = std::make_unique<LayerLinears>(lora, dev);
        timed_loop(st, dev, [&] { L->step(); });
      })->UseManualTime()->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace wick::bench
