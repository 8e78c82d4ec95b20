// Bit-exact resume with the default (or any) thread count (issue 10): the grad-norm sum behind clipping
// has the same bits whatever the number of threads and their order, so a resumed run repeats the
// uninterrupted one with several threads, not only with one.
#include <gtest/gtest.h>
#include <omp.h>

#include "ops/optim.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

TrainOptions small_options() {
  TrainOptions o;
  o.lora.r = 4;
  o.lora.alpha = 8;
  o.max_steps = 3;
  o.batch_size = 2;
  return o;
}

TEST(Determinism, GradNormHasTheSameBitsForAnyThreadCount) {
  // The grad norm decides clipping, so its last bit reaches every update: it must not depend on how many
  // threads there are or in which order they finish (an OpenMP reduction's order is unspecified).
  Rng rng(9);
  std::vector<Tensor> g;
  for (int64_t n : {300001, 70000, 5}) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = rng.normal() * (rng.uniform() < 0.01 ? 1e3f : 1e-3f);
    g.push_back(Tensor::from_f32(v, {n}));
  }
  const int saved = omp_get_max_threads();
  float coef = 0;
  omp_set_num_threads(1);
  const double want = grad_norm(g, 1.0, &coef);
  for (int rep = 0; rep < 5; rep++)
    for (int threads : {2, 3, 4, 7, 8}) {
      omp_set_num_threads(threads);
      EXPECT_EQ(grad_norm(g, 1.0, &coef), want) << threads << " threads";
    }
  omp_set_num_threads(saved);
}

TEST(Determinism, ResumeIsBitExactWithManyThreads) {
  // Stopped after step 2 and resumed, with 4 threads (more than this machine has cores, so the threads'
  // order varies): the same adapter and optimizer bytes as the uninterrupted 4-thread run.
  TempDir tmp;
  Rng rng(4);
  const ModelConfig c = tiny_config();
  const Dataset data = write_and_load(random_examples(rng, 12, 20, 40, c.vocab_size), tmp.file("d.jsonl"), c.vocab_size);
  TrainOptions o = small_options();
  o.lora.target_modules = {"q_proj", "v_proj", "up_proj", "down_proj"};
  o.lora.r = 640;  // lora_A [640, 32]: more elements than one serial chunk of the grad-norm sum
  o.lora.dropout = 0.1;
  o.max_steps = 5;
  o.batch_size = 3;
  o.max_grad_norm = 0.01;  // clipping on: the norm's bits matter
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);
  auto run = [&](const std::string& dir, int64_t stop_after, bool resume) {
    TrainOptions x = o;
    x.out_dir = dir;
    if (resume) x.resume = dir;
    auto m = CausalLM::random(c, Device::cpu(), DType::F32, 3);
    Trainer t(*m, data, x);
    run_trainer(t, stop_after);
  };
  run(tmp.file("ref"), -1, false);
  run(tmp.file("cut"), 2, false);
  run(tmp.file("cut"), -1, true);
  omp_set_num_threads(saved);
  for (const char* f : {"adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    EXPECT_TRUE(file_bytes(ckpt(tmp.file("ref")) + "/" + f) == file_bytes(ckpt(tmp.file("cut")) + "/" + f)) << f;
}

}  // namespace
}  // namespace wick::test
