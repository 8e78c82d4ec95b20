// Checkpoint folders (src/train/checkpoint_policy.h) on fake folders with random eval losses: at most
// save_total_limit kept (plus the best when it is old), the oldest go first, the best and the newest never
// go, and --resume picks the complete checkpoint of the highest step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "train/checkpoint_dir.h"
#include "train/checkpoint_policy.h"

namespace fs = std::filesystem;

namespace wick {
namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("wick_ckpt_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void fake_checkpoint(const fs::path& dir, int64_t step) {
  fs::create_directories(dir);
  std::ofstream(dir / "adapter_model.safetensors") << "x";
  std::ofstream(dir / "trainer_state.json") << nlohmann::json{{"step", step}}.dump();
}

TEST(CheckpointPolicy, RetentionKeepsTheNewestAndTheBest) {
  Rng rng(3);
  for (int trial = 0; trial < 30; trial++) {
    const fs::path out = fresh_dir("ret");
    const int64_t every = 1 + static_cast<int64_t>(rng.below(4)), limit = static_cast<int64_t>(rng.below(4));
    const int64_t total = every * (2 + static_cast<int64_t>(rng.below(10))) + 1;
    CheckpointPolicy p(out.string(), every, limit);
    std::map<int64_t, double> losses;
    for (int64_t step = 1; step <= total; step++) {
      if (!p.due(step, total)) continue;
      const double loss = rng.uniform();
      losses[step] = loss;
      p.evaluated(step, loss);
      fake_checkpoint(p.dir_for(step), step);
      p.saved(step);
      // The folders on disk are exactly the kept ones.
      const std::vector<CheckpointEntry> on_disk = list_checkpoints(out.string());
      ASSERT_EQ(on_disk.size(), p.kept().size());
      for (size_t i = 0; i < on_disk.size(); i++) EXPECT_EQ(on_disk[i].step, p.kept()[i].step);
      // The newest stays; the best so far stays; the count is within the limit (+1 for an old best).
      EXPECT_EQ(p.kept().back().step, step);
      int64_t best_step = -1;
      for (const auto& [s, l] : losses)
        if (best_step < 0 || l < losses[best_step]) best_step = s;
      ASSERT_TRUE(p.best().has_value());
      EXPECT_EQ(p.best()->step, best_step);
      EXPECT_TRUE(fs::exists(p.dir_for(best_step)));
      if (limit > 0) EXPECT_LE(static_cast<int64_t>(p.kept().size()), std::max<int64_t>(limit, 2));
      else EXPECT_EQ(p.kept().size(), losses.size());
      // What was deleted is older than every kept folder but the best.
      for (const auto& [s, l] : losses)
        if (!fs::exists(p.dir_for(s)))
          for (const CheckpointEntry& k : p.kept())
            if (k.step != best_step) EXPECT_LT(s, k.step);
    }
    EXPECT_FALSE(p.due(total, total));  // the final step is the run's own save
    fs::remove_all(out);
  }
}

TEST(CheckpointPolicy, PicksUpEarlierCheckpointsAndTheirEvalLosses) {
  const fs::path out = fresh_dir("pickup");
  fake_checkpoint(out / "checkpoint-2", 2);
  fake_checkpoint(out / "checkpoint-4", 4);
  std::ofstream(out / "metrics.jsonl") << "{\"step\": 2, \"eval_loss\": 0.5}\n{\"step\": 4, \"eval_loss\": 0.7}\n";
  CheckpointPolicy p(out.string(), 2, 2);
  ASSERT_EQ(p.kept().size(), 2u);
  ASSERT_TRUE(p.best().has_value());
  EXPECT_EQ(p.best()->step, 2);
  p.evaluated(6, 0.9);
  fake_checkpoint(p.dir_for(6), 6);
  EXPECT_EQ(p.saved(6), std::vector<std::string>{(out / "checkpoint-4").string()});  // not 2: the best
  fs::remove_all(out);
}

// One layout (train/checkpoint_dir.h): every save is a checkpoint-N folder, so a trainer_state.json at the
// top is only an older flat run, resumed when it has no checkpoint-N folder.
TEST(CheckpointPolicy, LatestCompleteCheckpointIsResumed) {
  const fs::path out = fresh_dir("latest");
  EXPECT_THROW(resolve_resume_dir(out.string()), Error);
  EXPECT_FALSE(latest_checkpoint(out.string()).has_value());
  std::ofstream(out / "trainer_state.json") << "{\"step\": 11}";  // a flat (older) run folder
  EXPECT_EQ(resolve_resume_dir(out.string()), out.string());
  fake_checkpoint(out / "checkpoint-3", 3);
  fake_checkpoint(out / "checkpoint-10", 10);
  fs::create_directories(out / "checkpoint-12");  // a save that crashed: no trainer_state.json
  std::ofstream(out / "checkpoint-12" / "adapter_model.safetensors") << "x";
  fs::create_directories(out / "checkpoint-x");
  EXPECT_EQ(latest_checkpoint(out.string()), (out / "checkpoint-10").string());
  EXPECT_EQ(resolve_resume_dir(out.string()), (out / "checkpoint-10").string());
  EXPECT_EQ(resolve_resume_dir((out / "checkpoint-3").string()), (out / "checkpoint-3").string());
  fs::remove_all(out);
}

}  // namespace
}  // namespace wick
