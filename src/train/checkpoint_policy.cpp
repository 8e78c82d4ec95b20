#include "train/checkpoint_policy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "train/checkpoint_dir.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {

std::vector<CheckpointEntry> list_checkpoints(const std::string& out_dir) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out_dir, ec)) {
    const auto step = checkpoint_step(e.path().filename().string());
    // Complete: trainer_state.json is in it (CheckpointWriter renames only complete folders to this name).
    if (!step || !e.is_directory() || !fs::is_regular_file(e.path() / "trainer_state.json")) continue;
    out.push_back({*step, e.path().string(), std::nullopt});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

CheckpointPolicy::CheckpointPolicy(std::string out_dir, int64_t save_every, int64_t total_limit)
    : out_(std::move(out_dir)), every_(save_every), limit_(total_limit) {
  std::ifstream m(fs::path(out_) / "metrics.jsonl");
  for (std::string line; std::getline(m, line);) {
    const json r = json::parse(line, nullptr, false);
    if (r.is_object() && r.contains("eval_loss") && r["eval_loss"].is_number() && r.contains("step"))
      eval_[r["step"].get<int64_t>()] = r["eval_loss"].get<double>();
  }
  kept_ = list_checkpoints(out_);
  for (CheckpointEntry& c : kept_)
    if (eval_.count(c.step)) c.eval_loss = eval_[c.step];
}

bool CheckpointPolicy::due(int64_t step, int64_t total_steps) const {
  return every_ > 0 && step % every_ == 0 && step < total_steps;
}

std::string CheckpointPolicy::dir_for(int64_t step) const { return (fs::path(out_) / checkpoint_name(step)).string(); }

void CheckpointPolicy::evaluated(int64_t step, double loss) {
  eval_[step] = loss;
  for (CheckpointEntry& c : kept_)
    if (c.step == step) c.eval_loss = loss;
}

std::optional<CheckpointEntry> CheckpointPolicy::best() const {
  std::optional<CheckpointEntry> b;
  for (const CheckpointEntry& c : kept_)
    if (c.eval_loss && (!b || *c.eval_loss < *b->eval_loss)) b = c;
  return b;
}

std::vector<std::string> CheckpointPolicy::saved(int64_t step) {
  kept_.erase(std::remove_if(kept_.begin(), kept_.end(), [&](const auto& c) { return c.step >= step; }), kept_.end());
  CheckpointEntry e{step, dir_for(step), std::nullopt};
  if (eval_.count(step)) e.eval_loss = eval_[step];
  kept_.push_back(e);
  std::sort(kept_.begin(), kept_.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  std::vector<std::string> deleted;
  if (limit_ <= 0) return deleted;
  const std::optional<CheckpointEntry> b = best();
  for (size_t i = 0; i < kept_.size() && static_cast<int64_t>(kept_.size()) > limit_;) {
    const CheckpointEntry& c = kept_[i];
    if ((b && c.step == b->step) || c.step == step) {
      i++;
      continue;
    }
    std::error_code ec;
    const fs::path aside = fs::path(c.dir).parent_path() / ("." + fs::path(c.dir).filename().string() + ".old");
    fs::rename(c.dir, aside, ec);
    fs::remove_all(ec ? fs::path(c.dir) : aside, ec);
    deleted.push_back(c.dir);
    kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return deleted;
}

}  // namespace wick
