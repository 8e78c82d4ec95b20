// Trainer checkpoints under crashes and bad folders: every state a crash inside save_checkpoint() can leave
// either resumes to the consistent state it names or is refused with a wick::Error naming the file - never a
// silent mix. save_checkpoint() writes the four files into .checkpoint-tmp, removes trainer_state.json, then
// renames adapter_config.json, adapter_model.safetensors, optimizer.safetensors and trainer_state.json into
// place in that order; the tests rebuild each intermediate state from two real checkpoints of one run.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/peft_adapter.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kFiles[] = {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"};

struct TrainCheckpoint : ::testing::Test {
  TempDir tmp;
  Dataset data;
  TrainOptions base;
  std::string ref, at2, at4;  // an uninterrupted run; copies of its checkpoints after steps 2 and 4

  void SetUp() override {
    Rng rng(3);
    data = write_and_load(random_examples(rng, 6, 3, 12, tiny_config().vocab_size), tmp.file("train.jsonl"),
                          tiny_config().vocab_size);
    base.lora.r = 4;
    base.lora.alpha = 8;
    base.lora.dropout = 0.05;
    base.lora.target_modules = {"q_proj", "v_proj", "up_proj"};
    base.lr = 1e-2;
    base.max_steps = 6;
    base.warmup_steps = 1;
    base.batch_size = 2;
    base.seed = 11;
    base.save_every = 2;
    ref = tmp.file("ref");
    at2 = tmp.file("at2");
    at4 = tmp.file("at4");
    TrainOptions o = base;
    o.out_dir = ref;
    auto m = model();
    Trainer t(*m, data, o);
    // on_step of step k + 1 runs after the save_every checkpoint of step k.
    ASSERT_TRUE(t.run([&](const StepReport& r) {
      if (r.step == 3) fs::copy(ref, at2, fs::copy_options::recursive);
      if (r.step == 5) fs::copy(ref, at4, fs::copy_options::recursive);
    }));
  }

  static std::unique_ptr<CausalLM> model(const ModelConfig& c = tiny_config()) {
    return CausalLM::random(c, Device::cpu(), DType::F32, 21);
  }

  // Resumes dir into itself and runs to the end.
  void resume_and_finish(const std::string& dir, TrainOptions o) {
    o.out_dir = dir;
    o.resume = dir;
    auto m = model();
    Trainer t(*m, data, o);
    EXPECT_TRUE(run_trainer(t));
  }

  std::string resume_error(const std::string& dir, const ModelConfig& c = tiny_config()) {
    TrainOptions o = base;
    o.out_dir = dir;
    o.resume = dir;
    return error_message([&] {
      auto m = model(c);
      Trainer t(*m, data, o);
    });
  }

  void expect_same_as_ref(const std::string& dir) {
    for (const char* f : kFiles) EXPECT_TRUE(file_bytes(ref + "/" + f) == file_bytes(dir + "/" + f)) << f;
    const auto a = read_metrics(ref), b = read_metrics(dir);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(metrics_core(a[i]), metrics_core(b[i]));
  }
};

TEST_F(TrainCheckpoint, StateFileNamesTheStepAndNoTempRemains) {
  for (auto [dir, step] : std::vector<std::pair<std::string, int64_t>>{{at2, 2}, {at4, 4}, {ref, 6}}) {
    const json st = json::parse(file_bytes(dir + "/trainer_state.json"));
    EXPECT_EQ(st.at("step").get<int64_t>(), step) << dir;
    EXPECT_EQ(st.at("total_steps").get<int64_t>(), 6);
    EXPECT_TRUE(st.contains("epoch") && st.contains("index") && st.contains("options"));
    EXPECT_FALSE(fs::exists(dir + "/.checkpoint-tmp")) << dir;
    for (const char* f : kFiles) EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << dir << "/" << f;
  }
  // The checkpoints differ (the crash states below really mix two steps).
  EXPECT_FALSE(file_bytes(at2 + "/adapter_model.safetensors") == file_bytes(at4 + "/adapter_model.safetensors"));
  EXPECT_FALSE(file_bytes(at2 + "/optimizer.safetensors") == file_bytes(at4 + "/optimizer.safetensors"));
}

TEST_F(TrainCheckpoint, CrashBeforeTheSwapResumesTheOldCheckpoint) {
  // A crash while .checkpoint-tmp is written leaves the old checkpoint whole plus a stale temp folder
  // (here: the complete next checkpoint, and a half-written one). Resume uses the old one, bit-exactly.
  for (int variant = 0; variant < 2; variant++) {
    SCOPED_TRACE(variant ? "half-written temp" : "complete temp");
    const std::string dir = tmp.file("stale" + std::to_string(variant));
    fs::copy(at2, dir, fs::copy_options::recursive);
    fs::create_directories(dir + "/.checkpoint-tmp");
    for (const char* f : kFiles) {
      std::string bytes = file_bytes(at4 + "/" + f);
      if (variant) bytes.resize(bytes.size() / 2);
      write_bytes(dir + "/.checkpoint-tmp/" + f, bytes);
    }
    resume_and_finish(dir, base);
    expect_same_as_ref(dir);
    EXPECT_FALSE(fs::exists(dir + "/.checkpoint-tmp"));
  }
}

TEST_F(TrainCheckpoint, CrashDuringTheSwapIsRefused) {
  // After trainer_state.json is removed and the first `moved` files of step 4 are renamed over step 2's
  // (metrics.jsonl, appended every step, already holds step 4's record): no state file, no mixed resume.
  for (int moved = 0; moved < 4; moved++) {
    SCOPED_TRACE(std::to_string(moved) + " files moved");
    const std::string dir = tmp.file("swap" + std::to_string(moved));
    fs::copy(at2, dir, fs::copy_options::recursive);
    fs::copy_file(at4 + "/metrics.jsonl", dir + "/metrics.jsonl", fs::copy_options::overwrite_existing);
    fs::remove(dir + "/trainer_state.json");
    for (int i = 0; i < moved; i++) fs::copy_file(at4 + "/" + kFiles[i], dir + "/" + kFiles[i], fs::copy_options::overwrite_existing);
    const std::string msg = resume_error(dir);
    EXPECT_NE(msg.find("trainer_state.json"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<no error>"), std::string::npos) << msg;
  }
  // All four moved: the complete step-4 checkpoint, which resumes bit-exactly.
  const std::string dir = tmp.file("swap4");
  fs::copy(at2, dir, fs::copy_options::recursive);
  fs::copy_file(at4 + "/metrics.jsonl", dir + "/metrics.jsonl", fs::copy_options::overwrite_existing);
  for (const char* f : kFiles) fs::copy_file(at4 + "/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  resume_and_finish(dir, base);
  expect_same_as_ref(dir);
}

TEST_F(TrainCheckpoint, FailedSwapThrowsAndLeavesNoResumableMix) {
  // optimizer.safetensors cannot be replaced (a non-empty folder stands in its way; file permissions do
  // not stop root): the save fails with an error naming the file, and the folder then refuses to resume.
  const std::string dir = tmp.file("blocked");
  fs::copy(at2, dir, fs::copy_options::recursive);
  fs::remove(dir + "/optimizer.safetensors");
  fs::create_directories(dir + "/optimizer.safetensors/x");
  write_bytes(dir + "/optimizer.safetensors/x/y", "y");
  // The run resumes from an intact copy of the same checkpoint and saves into the blocked folder.
  const std::string src = tmp.file("blocked-src");
  fs::copy(at2, src, fs::copy_options::recursive);
  TrainOptions o = base;
  o.out_dir = dir;
  o.resume = src;
  auto m = model();
  Trainer t(*m, data, o);
  // Stop after step 3: the save that fails. A wick::Error (the CLI reports anything else as an internal error).
  EXPECT_WICK_ERROR(run_trainer(t, 3), "cannot write the checkpoint", "optimizer.safetensors");
  EXPECT_FALSE(fs::exists(dir + "/trainer_state.json"));
  const std::string msg = resume_error(dir);
  EXPECT_NE(msg.find("trainer_state.json"), std::string::npos) << msg;
}

TEST_F(TrainCheckpoint, TruncatedFilesAreRefusedByName) {
  for (const char* f : kFiles) {
    SCOPED_TRACE(f);
    const std::string dir = tmp.file(std::string("trunc-") + f);
    fs::copy(at2, dir, fs::copy_options::recursive);
    std::string bytes = file_bytes(dir + "/" + f);
    bytes.resize(bytes.size() * 2 / 3);
    write_bytes(dir + "/" + f, bytes);
    const std::string msg = resume_error(dir);
    EXPECT_NE(msg.find(f), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("<no error>"), std::string::npos) << msg;
  }
}

TEST_F(TrainCheckpoint, MismatchedShapesAreRefused) {
  // The model differs from the one the checkpoint was trained on (hidden 48 instead of 32).
  ModelConfig wide = tiny_config();
  wide.hidden_size = 48;
  wide.head_dim = 12;
  std::string msg = resume_error(at2, wide);
  EXPECT_NE(msg.find("lora_A"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 48]"), std::string::npos) << msg;  // the shape A must have on this model
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;

  // The optimizer state comes from a run of another rank (r 8), the adapter from r 4.
  const std::string r8 = tmp.file("r8");
  {
    TrainOptions o = base;
    o.lora.r = 8;
    o.max_steps = 1;
    o.out_dir = r8;
    auto m = model();
    Trainer t(*m, data, o);
    ASSERT_TRUE(run_trainer(t));
  }
  const std::string mixed = tmp.file("mixed-rank");
  fs::copy(at2, mixed, fs::copy_options::recursive);
  fs::copy_file(r8 + "/optimizer.safetensors", mixed + "/optimizer.safetensors", fs::copy_options::overwrite_existing);
  msg = resume_error(mixed);
  EXPECT_NE(msg.find("optimizer state"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 32]"), std::string::npos) << msg;  // expected lora_A moment shape [r, hidden]
  EXPECT_NE(msg.find("optimizer.safetensors"), std::string::npos) << msg;

  // The optimizer state misses modules the adapter has (another target list).
  const std::string fewer = tmp.file("fewer");
  {
    TrainOptions o = base;
    o.lora.target_modules = {"q_proj"};
    o.max_steps = 1;
    o.out_dir = fewer;
    auto m = model();
    Trainer t(*m, data, o);
    ASSERT_TRUE(run_trainer(t));
  }
  const std::string mixed2 = tmp.file("mixed-targets");
  fs::copy(at2, mixed2, fs::copy_options::recursive);
  fs::copy_file(fewer + "/optimizer.safetensors", mixed2 + "/optimizer.safetensors", fs::copy_options::overwrite_existing);
  msg = resume_error(mixed2);
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("v_proj"), std::string::npos) << msg;
}

TEST_F(TrainCheckpoint, ResumeTakesTheLoraSettingsOfTheCheckpoint) {
  // Resume continues the checkpoint's adapter: other LoRA options given at resume (rank, targets,
  // dropout) do not apply, and the run equals the uninterrupted one.
  const std::string dir = tmp.file("other-opts");
  fs::copy(at2, dir, fs::copy_options::recursive);
  TrainOptions o = base;
  o.lora.r = 16;
  o.lora.target_modules = {"down_proj"};
  o.lora.dropout = 0.5;
  resume_and_finish(dir, o);
  expect_same_as_ref(dir);
}

TEST_F(TrainCheckpoint, NotACheckpointFolder) {
  const std::string empty = tmp.file("empty");
  fs::create_directories(empty);
  const std::string msg = resume_error(empty);
  EXPECT_EQ(msg.find("<not a wick::Error"), std::string::npos) << msg;
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;
}

}  // namespace
}  // namespace wick::test
