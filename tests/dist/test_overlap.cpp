// The Trainer's side of the data-parallel reduction, in process, through a communicator of one rank that
// records its calls (sums over one rank change nothing): during the step's last micro-batch each layer's
// LoRA gradients are started as that layer's backward finishes (overlap), last layer first; when the last
// micro-batch has no counted token (no backward), everything is reduced after backward instead; either
// way the adapter has the bytes of the plain run.
#include <gtest/gtest.h>

#include <stdexcept>

#include "lora/lora.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

struct RecordingComm final : dist::Communicator {
  std::vector<size_t> started;   // tensors per start_allreduce_sum
  std::vector<size_t> blocking;  // tensors per allreduce_sum
  int finishes = 0;
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "recording"; }
  void allreduce_sum(const std::vector<Tensor*>& t) override { blocking.push_back(t.size()); }
  void start_allreduce_sum(const std::vector<Tensor*>& t) override { started.push_back(t.size()); }
  void finish_allreduces() override { finishes++; }
  void allreduce_sum(double*, size_t) override {}
  void allreduce_sum(int64_t*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why, int) override { throw std::runtime_error(why); }
};

struct Overlap : ::testing::Test {
  TempDir tmp;
  TrainOptions opt;
  void SetUp() override {
    opt.lora.r = 4;
    opt.lora.alpha = 8;
    opt.lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    opt.lr = 5e-3;
    opt.batch_size = 1;
    opt.grad_accum = 2;
    opt.max_steps = 3;
    opt.shuffle = false;
    opt.seed = 11;
  }
  // Runs 3 steps on data (with comm, or plain); returns the adapter's bytes.
  std::string train(const std::vector<Example>& ex, const std::string& name, dist::Communicator* comm) {
    const Dataset d = write_and_load(ex, tmp.file(name + ".jsonl"), tiny_config().vocab_size);
    auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 5);
    TrainOptions o = opt;
    o.out_dir = tmp.file(name);
    Trainer t(*m, d, o, nullptr, comm);
    EXPECT_TRUE(run_trainer(t));
    return file_bytes(o.out_dir + "/adapter_model.safetensors");
  }
};

TEST_F(Overlap, EachLayerStartsAsItsBackwardEndsInTheStepsLastMicroBatch) {
  Rng rng(3);
  const std::vector<Example> ex = random_examples(rng, 6, 4, 12, tiny_config().vocab_size);  // all counted
  RecordingComm comm;
  const std::string with = train(ex, "overlap", &comm);
  const int64_t layers = tiny_config().num_layers;
  ASSERT_EQ(static_cast<int64_t>(comm.started.size()), 3 * layers);  // per step, once per layer
  for (size_t n : comm.started) EXPECT_EQ(n, 7u * 2u);               // 7 projections x (A, B)
  EXPECT_TRUE(comm.blocking.empty());
  EXPECT_EQ(comm.finishes, 3);
  EXPECT_EQ(with, train(ex, "plain", nullptr));
}

TEST_F(Overlap, ALastMicroBatchWithoutTokensReducesAfterBackward) {
  Rng rng(4);
  std::vector<Example> ex = random_examples(rng, 6, 4, 12, tiny_config().vocab_size);
  for (size_t i = 1; i < ex.size(); i += 2)  // every step's second micro-batch counts nothing
    for (auto& l : ex[i].labels) l = -100;
  RecordingComm comm;
  const std::string with = train(ex, "after", &comm);
  EXPECT_TRUE(comm.started.empty());
  ASSERT_EQ(comm.blocking.size(), 3u);
  for (size_t n : comm.blocking) EXPECT_EQ(n, static_cast<size_t>(tiny_config().num_layers) * 14u);
  EXPECT_EQ(with, train(ex, "plain", nullptr));
}

}  // namespace
}  // namespace wick::test
