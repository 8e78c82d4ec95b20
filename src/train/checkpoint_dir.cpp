#include "train/checkpoint_dir.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/fs_util.h"
#include "io/safetensors.h"
#include "train/base_model_record.h"

namespace fs = std::filesystem;

namespace wick {

static const char* kPrefix = "checkpoint-";

std::string checkpoint_name(int64_t step) { return kPrefix + std::to_string(step); }

std::optional<int64_t> checkpoint_step(const std::string& name) {
  const size_t n = std::strlen(kPrefix);
  if (name.compare(0, n, kPrefix) != 0 || name.size() == n || name.size() > n + 18) return std::nullopt;
  int64_t v = 0;
  for (size_t i = n; i < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

// step -> folder, for the complete checkpoints directly under run_dir.
static std::map<int64_t, fs::path> complete_checkpoints(const fs::path& run_dir) {
  std::map<int64_t, fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto step = checkpoint_step(it->path().filename().string());
    if (step && io::is_file(it->path() / "trainer_state.json")) out[*step] = it->path();
  }
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.rbegin()->second.string();
}

std::string resolve_resume_dir(const std::string& dir) {
  if (!io::is_dir(dir)) throw Error("no such folder", dir, "resume from a folder wick train wrote");
  if (const auto latest = latest_checkpoint(dir)) return *latest;
  if (io::is_file(fs::path(dir) / "trainer_state.json")) return dir;
  throw Error("holds no complete checkpoint (no checkpoint-<step>/ folder with trainer_state.json, no trainer_state.json)",
              dir, "resume from a folder wick train wrote (--out of an earlier run)");
}

void checkpoint_kill_point(const char* point, int64_t step) {
  const char* want = std::getenv("WICK_TEST_KILL_AT");
  if (!want) return;
  if (std::string(want) == std::string(point) + "@" + std::to_string(step)) {
    std::signal(SIGKILL, SIG_DFL);
    ::kill(::getpid(), SIGKILL);
  }
}

// "." + name (built by appending: GCC 12 warns falsely on const char* + std::string&&).
static std::string hidden(const std::string& name) {
  std::string out = ".";
  out += name;
  return out;
}

static void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Removes every dot-folder a save leaves while it runs (.checkpoint-*.tmp, .checkpoint-*.old): what an
// earlier crash left behind. Never touches a complete checkpoint.
static void remove_stale(const fs::path& run_dir) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind(".checkpoint-", 0) == 0) stale.push_back(it->path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
}

CheckpointWriter::CheckpointWriter(std::string run_dir, int64_t step) : run_(std::move(run_dir)), step_(step) {
  fs::create_directories(run_);
  remove_stale(run_);
  tmp_ = (fs::path(run_) / (hidden(checkpoint_name(step) + ".tmp"))).string();
  fs::create_directories(tmp_);
}

CheckpointWriter::~CheckpointWriter() {
  if (done_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

// dst := src as one rename: a hard link (same inode, no extra space) or a fresh copy, named
// .<name>.link first and renamed over dst.
static void link_over(const fs::path& src, const fs::path& dst) {
  const fs::path tmp = dst.parent_path() / (hidden(dst.filename().string() + ".link"));
  std::error_code ec;
  fs::remove(tmp, ec);
  if (::link(src.c_str(), tmp.c_str()) != 0) {
    io::AtomicFile f(tmp.string());
    const std::string bytes = io::read_file(src.string());
    f.write(bytes.data(), bytes.size());
    f.commit();
  }
  fs::rename(tmp, dst);
  fs::remove(tmp, ec);  // rename() is a no-op when both names already link one file: drop the spare name
}

// The run's record of its base model (train/base_model_record.h), into the checkpoint being written, so that
// the checkpoint names what it was trained on wherever it goes. A run without one (the Trainer used alone) writes
// checkpoints without it, as before.
static void copy_base_model_record(const fs::path& run, const fs::path& tmp) {
  const fs::path src = run / kBaseModelRecord;
  if (io::is_file(src)) io::write_file_atomic((tmp / kBaseModelRecord).string(), io::read_file(src.string()));
}

void CheckpointWriter::commit(int64_t keep) {
  const fs::path run = run_;
  copy_base_model_record(run, tmp_);
  checkpoint_kill_point("tmp-written", step_);
  fsync_dir(tmp_);
  // Checkpoints of this step or later belong to a timeline this run abandoned (it resumed from an older
  // one): moved aside (one rename each), so that "the highest step" is this save from now on.
  for (const auto& [s, path] : complete_checkpoints(run))
    if (s >= step_) fs::rename(path, run / (hidden(path.filename().string() + ".old")));
  checkpoint_kill_point("aside", step_);
  const fs::path final_dir = run / checkpoint_name(step_);
  fs::rename(tmp_, final_dir);
  done_ = true;
  fsync_dir(run);
  checkpoint_kill_point("renamed", step_);
  link_over(final_dir / "adapter_model.safetensors", run / "adapter_model.safetensors");
  checkpoint_kill_point("linked-model", step_);
  link_over(final_dir / "adapter_config.json", run / "adapter_config.json");
  fsync_dir(run);
  checkpoint_kill_point("linked-config", step_);
  // Older checkpoints beyond `keep`: renamed to a dot-folder first (so none is ever half-removed under
  // its checkpoint name), then removed.
  const auto all = complete_checkpoints(run);
  int64_t kept = 0;
  for (auto it = all.rbegin(); keep > 0 && it != all.rend(); ++it) {
    if (kept++ < keep) continue;
    fs::rename(it->second, run / (hidden(it->second.filename().string() + ".old")));
  }
  checkpoint_kill_point("pruned-rename", step_);
  remove_stale(run);
  checkpoint_kill_point("pruned", step_);
}

}  // namespace wick
