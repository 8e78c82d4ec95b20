// Trainer checkpoints under crashes and bad folders: every state a crash inside save_checkpoint() can leave
// resumes bit-exactly from the newest complete checkpoint, and a folder mixed by hand is refused with a
// wick::Error naming the file - never a silent mix. A save writes .checkpoint-<step>.tmp/, renames it to
// checkpoint-<step>/, switches the top-level adapter links and removes the older checkpoint
// (train/checkpoint_dir.h); the tests rebuild each intermediate state from two real checkpoints of one run.
// tests/cli/test_cli_reliability.cpp kills a real process (SIGKILL) at every point of the save.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <functional>

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

  // A copy of at2 whose optimizer.safetensors comes from the run in `from`: resume's error.
  std::string resume_error_with_optimizer_of(const std::string& from, const std::string& name) {
    const std::string dir = tmp.file(name);
    fs::copy(at2, dir, fs::copy_options::recursive);
    fs::copy_file(ckpt(from) + "/optimizer.safetensors", ckpt(dir) + "/optimizer.safetensors", fs::copy_options::overwrite_existing);
    return resume_error(dir);
  }

  void expect_same_as_ref(const std::string& dir) {
    for (const char* f : kFiles) EXPECT_TRUE(file_bytes(ckpt(ref) + "/" + f) == file_bytes(ckpt(dir) + "/" + f)) << f;
    const auto a = read_metrics(ref), b = read_metrics(dir);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(metrics_core(a[i]), metrics_core(b[i]));
  }
};

// The run folder holds exactly: checkpoint-<step>/, the top-level adapter (the same bytes), metrics.jsonl.
static void expect_clean_run_folder(const std::string& dir, int64_t step) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors",
                                             "checkpoint-" + std::to_string(step), "metrics.jsonl"}))
      << dir;
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
    EXPECT_TRUE(file_bytes(dir + "/" + f) == file_bytes(ckpt(dir) + "/" + f)) << dir << " " << f;
}

TEST_F(TrainCheckpoint, StateFileNamesTheStepAndNoTempRemains) {
  for (auto [dir, step] : std::vector<std::pair<std::string, int64_t>>{{at2, 2}, {at4, 4}, {ref, 6}}) {
    EXPECT_EQ(ckpt(dir), dir + "/checkpoint-" + std::to_string(step));
    const json st = json::parse(file_bytes(ckpt(dir) + "/trainer_state.json"));
    EXPECT_EQ(st.at("step").get<int64_t>(), step) << dir;
    EXPECT_EQ(st.at("total_steps").get<int64_t>(), 6);
    EXPECT_TRUE(st.contains("epoch") && st.contains("index") && st.contains("options"));
    for (const char* f : kFiles) EXPECT_TRUE(fs::is_regular_file(ckpt(dir) + "/" + f)) << dir << "/" << f;
    expect_clean_run_folder(dir, step);
    // The optimizer file names its step too (resume cross-checks the two).
    EXPECT_EQ(io::SafeTensorsFile::open(ckpt(dir) + "/optimizer.safetensors")->metadata().at("step"), std::to_string(step));
  }
  // The checkpoints differ (the crash states below really mix two steps).
  EXPECT_FALSE(file_bytes(ckpt(at2) + "/adapter_model.safetensors") == file_bytes(ckpt(at4) + "/adapter_model.safetensors"));
  EXPECT_FALSE(file_bytes(ckpt(at2) + "/optimizer.safetensors") == file_bytes(ckpt(at4) + "/optimizer.safetensors"));
}

TEST_F(TrainCheckpoint, EveryStateOfASaveResumesBitExactly) {
  // The states a crash during the save of step 4 (over step 2) can leave, in order. Each resumes from the
  // newest complete checkpoint it holds and finishes exactly as the uninterrupted run.
  struct State {
    const char* name;
    std::function<void(const std::string&)> make;  // from a copy of at2 (with at4's metrics.jsonl)
  };
  auto tmp4 = [&](const std::string& d, bool half) {
    fs::create_directories(d + "/.checkpoint-4.tmp");
    for (const char* f : kFiles) {
      std::string bytes = file_bytes(ckpt(at4) + "/" + f);
      if (half) bytes.resize(bytes.size() / 2);
      write_bytes(d + "/.checkpoint-4.tmp/" + f, bytes);
    }
  };
  auto full4 = [&](const std::string& d) { fs::copy(ckpt(at4), d + "/checkpoint-4", fs::copy_options::recursive); };
  auto link = [&](const std::string& d, const char* f) {
    fs::copy_file(ckpt(at4) + "/" + f, d + "/" + f, fs::copy_options::overwrite_existing);
  };
  const std::vector<State> states = {
      {"half-written tmp", [&](const std::string& d) { tmp4(d, true); }},
      {"complete tmp", [&](const std::string& d) { tmp4(d, false); }},
      {"renamed", full4},
      {"model linked", [&](const std::string& d) { full4(d); link(d, "adapter_model.safetensors"); }},
      {"config linked", [&](const std::string& d) { full4(d); link(d, "adapter_model.safetensors"); link(d, "adapter_config.json"); }},
      {"old one renamed aside", [&](const std::string& d) {
         full4(d);
         link(d, "adapter_model.safetensors");
         link(d, "adapter_config.json");
         fs::rename(d + "/checkpoint-2", d + "/.checkpoint-2.old");
       }},
  };
  for (const State& s : states) {
    SCOPED_TRACE(s.name);
    const std::string dir = tmp.file(std::string("state-") + s.name);
    fs::copy(at2, dir, fs::copy_options::recursive);
    fs::copy_file(at4 + "/metrics.jsonl", dir + "/metrics.jsonl", fs::copy_options::overwrite_existing);
    s.make(dir);
    resume_and_finish(dir, base);
    expect_same_as_ref(dir);
    expect_clean_run_folder(dir, 6);
  }
}

TEST_F(TrainCheckpoint, ResumingAnOlderCheckpointAbandonsTheNewerOnes) {
  // --resume run/checkpoint-2 while run/checkpoint-4 exists: the run continues from step 2; its next save
  // replaces checkpoint-4 (never "the highest step" from the abandoned timeline).
  const std::string dir = tmp.file("two");
  fs::copy(at4, dir, fs::copy_options::recursive);
  fs::copy(ckpt(at2), dir + "/checkpoint-2", fs::copy_options::recursive);
  TrainOptions o = base;
  o.lr = 2e-2;  // another timeline: its checkpoint-4 differs from the one on disk
  o.out_dir = dir;
  o.resume = dir + "/checkpoint-2";
  auto m = model();
  Trainer t(*m, data, o);
  EXPECT_EQ(t.step(), 2);
  EXPECT_FALSE(run_trainer(t, 3));
  EXPECT_EQ(ckpt(dir), dir + "/checkpoint-3");
  expect_clean_run_folder(dir, 3);
}

TEST_F(TrainCheckpoint, FailedSaveKeepsThePreviousCheckpoint) {
  // checkpoint-3 cannot be created (a non-empty folder without a trainer state stands in its way): the
  // save fails with a wick::Error, the previous checkpoint stays, no temp folder is left behind.
  const std::string dir = tmp.file("blocked");
  fs::copy(at2, dir, fs::copy_options::recursive);
  fs::create_directories(dir + "/checkpoint-3/x");
  write_bytes(dir + "/checkpoint-3/x/y", "y");
  const std::string before = file_bytes(ckpt(dir) + "/optimizer.safetensors");
  TrainOptions o = base;
  o.out_dir = dir;
  o.resume = dir;
  auto m = model();
  Trainer t(*m, data, o);
  // Stop after step 3: the save that fails. A wick::Error (the CLI reports anything else as an internal error).
  EXPECT_WICK_ERROR(run_trainer(t, 3), "cannot write the checkpoint", "checkpoint-3");
  EXPECT_EQ(ckpt(dir), dir + "/checkpoint-2");
  EXPECT_TRUE(file_bytes(ckpt(dir) + "/optimizer.safetensors") == before);
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  fs::remove_all(dir + "/checkpoint-3");
  resume_and_finish(dir, base);
  expect_same_as_ref(dir);
}

TEST_F(TrainCheckpoint, DiskFullAtSaveKeepsThePreviousCheckpoint) {
  // A real failing write: RLIMIT_FSIZE makes write() fail with EFBIG once a file would pass the limit (as
  // ENOSPC does on a full disk). Limits that fail the first file, and the optimizer file (after the adapter).
  const std::string ck2 = ckpt(at2);
  const auto sz = [&](const char* f) { return static_cast<rlim_t>(fs::file_size(ck2 + "/" + f)); };
  ASSERT_GT(sz("optimizer.safetensors"), sz("adapter_model.safetensors") + 1);
  for (rlim_t limit : {rlim_t{0}, sz("adapter_model.safetensors") + 1}) {
    SCOPED_TRACE("file size limit " + std::to_string(limit));
    const std::string dir = tmp.file("full" + std::to_string(limit));
    fs::copy(at2, dir, fs::copy_options::recursive);
    TrainOptions o = base;
    o.out_dir = dir;
    o.resume = dir;
    auto m = model();
    Trainer t(*m, data, o);
    const std::string before = file_bytes(ckpt(dir) + "/optimizer.safetensors");
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    auto prev = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old;
    lim.rlim_cur = limit;
    setrlimit(RLIMIT_FSIZE, &lim);
    const std::string msg = error_message([&] { t.save_checkpoint(); });
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, prev);
    EXPECT_NE(msg.find("cannot write the checkpoint"), std::string::npos) << msg;
    EXPECT_NE(msg.find("free space"), std::string::npos) << msg;
    EXPECT_EQ(ckpt(dir), dir + "/checkpoint-2");
    EXPECT_TRUE(file_bytes(ckpt(dir) + "/optimizer.safetensors") == before);
    for (const auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
    for (const auto& e : fs::directory_iterator(ckpt(dir))) EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST_F(TrainCheckpoint, StepsOfTheStateFilesMustAgree) {
  // trainer_state.json of step 2 in a folder named checkpoint-4.
  const std::string renamed = tmp.file("renamed");
  fs::create_directories(renamed);
  fs::copy(ckpt(at2), renamed + "/checkpoint-4", fs::copy_options::recursive);
  std::string msg = resume_error(renamed);
  EXPECT_NE(msg.find("step 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("checkpoint-4"), std::string::npos) << msg;
  // Step 4's optimizer state (same shapes) beside step 2's trainer state.
  msg = resume_error_with_optimizer_of(at4, "mixed-steps");
  EXPECT_NE(msg.find("optimizer state of step 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optimizer.safetensors"), std::string::npos) << msg;
}

TEST_F(TrainCheckpoint, TruncatedFilesAreRefusedByName) {
  for (const char* f : kFiles) {
    SCOPED_TRACE(f);
    const std::string dir = tmp.file(std::string("trunc-") + f);
    fs::copy(at2, dir, fs::copy_options::recursive);
    std::string bytes = file_bytes(ckpt(dir) + "/" + f);
    bytes.resize(bytes.size() * 2 / 3);
    write_bytes(ckpt(dir) + "/" + f, bytes);
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
  msg = resume_error_with_optimizer_of(r8, "mixed-rank");
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
  msg = resume_error_with_optimizer_of(fewer, "mixed-targets");
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
