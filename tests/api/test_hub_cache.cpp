// Hub ids from the local Hugging Face cache (src/api/hub_cache.h), on fake cache folders laid out as
// huggingface_hub lays them out: models--ORG--NAME/{refs/<name>, snapshots/<commit>/}. Which cache is in
// effect ($HF_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub),
// revisions by branch, tag and commit, and the errors: not cached (with the download command), a missing
// revision (with the cached ones), a partial snapshot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/testutil.h"
#include "api/hub_cache.h"
#include "core/error.h"

namespace fs = std::filesystem;

namespace wick {

using test::error_of;
namespace {

// Sets (or unsets) environment variables for the scope of a test.
class EnvGuard {
 public:
  void set(const char* k, const std::optional<std::string>& v) {
    const char* old = std::getenv(k);
    saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
    if (v) setenv(k, v->c_str(), 1);
    else unsetenv(k);
  }
  ~EnvGuard() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
      else unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// A cache repo with the given refs (name -> commit) and snapshots (commit -> files).
fs::path fake_repo(const fs::path& cache, const std::string& id, const std::map<std::string, std::string>& refs,
                   const std::map<std::string, std::vector<std::string>>& snaps) {
  std::string folder = "models--" + id;
  folder.replace(folder.find('/'), 1, "--");
  const fs::path repo = cache / folder;
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "blobs");
  for (const auto& [r, c] : refs) {
    fs::create_directories((repo / "refs" / r).parent_path());
    std::ofstream(repo / "refs" / r) << c;  // huggingface_hub writes no newline
  }
  for (const auto& [c, files] : snaps) {
    fs::create_directories(repo / "snapshots" / c);
    for (const std::string& f : files) {
      // As the hub does: the snapshot's file is a relative symlink into blobs/.
      std::ofstream(repo / "blobs" / (c + f)) << "{\"commit\": \"" << c << "\"}";
      fs::create_symlink(fs::path("..") / ".." / "blobs" / (c + f), repo / "snapshots" / c / f);
    }
  }
  return repo;
}

class HubCache : public ::testing::Test {
 protected:
  fs::path root_;
  EnvGuard env_;
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("wick_hub_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    for (const char* k : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"}) env_.set(k, std::nullopt);
    env_.set("HOME", (root_ / "home").string());
  }
  void TearDown() override { fs::remove_all(root_); }
};

const std::string kMain = "0123456789abcdef0123456789abcdef01234567";
const std::string kTag = "89abcdef0123456789abcdef0123456789abcdef";

TEST_F(HubCache, WhichCacheIsInEffect) {
  EXPECT_EQ(hub_cache_dir(), (root_ / "home" / ".cache" / "huggingface" / "hub").string());
  env_.set("XDG_CACHE_HOME", (root_ / "xdg").string());
  EXPECT_EQ(hub_cache_dir(), (root_ / "xdg" / "huggingface" / "hub").string());
  env_.set("HF_HOME", (root_ / "hfhome").string());
  EXPECT_EQ(hub_cache_dir(), (root_ / "hfhome" / "hub").string());
  env_.set("HF_HUB_CACHE", (root_ / "hubcache").string());
  EXPECT_EQ(hub_cache_dir(), (root_ / "hubcache").string());
}

TEST_F(HubCache, ResolvesBranchesTagsAndCommits) {
  // The same layout found through each way of naming the cache.
  const std::vector<std::pair<const char*, fs::path>> ways = {
      {"HOME", root_ / "home" / ".cache" / "huggingface" / "hub"},
      {"HF_HOME", root_ / "hfhome" / "hub"},
      {"HF_HUB_CACHE", root_ / "hubcache"}};
  for (const auto& [var, cache] : ways) {
    if (std::string(var) == "HF_HOME") env_.set("HF_HOME", (root_ / "hfhome").string());
    if (std::string(var) == "HF_HUB_CACHE") env_.set("HF_HUB_CACHE", cache.string());
    const fs::path repo = fake_repo(cache, "Qwen/Qwen2.5-0.5B-Instruct", {{"main", kMain}, {"v1.0", kTag}},
                                    {{kMain, {"config.json", "model.safetensors"}}, {kTag, {"config.json"}}});
    ResolvedModel r = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", "", "config.json", "--model");
    EXPECT_EQ(r.path, (repo / "snapshots" / kMain).string()) << var;
    EXPECT_EQ(r.hub_id, "Qwen/Qwen2.5-0.5B-Instruct");
    EXPECT_EQ(r.commit, kMain);
    EXPECT_TRUE(fs::exists(fs::path(r.path) / "config.json"));  // through the symlink
    r = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", "v1.0", "config.json", "--model");
    EXPECT_EQ(r.path, (repo / "snapshots" / kTag).string());
    r = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", kTag, "config.json", "--model");  // a commit hash
    EXPECT_EQ(r.commit, kTag);
  }
}

TEST_F(HubCache, AFolderWinsAndIsMadeAbsolute) {
  fs::create_directories(root_ / "Org" / "Name");
  const fs::path cwd = fs::current_path();
  fs::current_path(root_);
  const ResolvedModel r = resolve_model("Org/Name", "", "config.json", "--model");
  fs::current_path(cwd);
  EXPECT_EQ(r.path, (root_ / "Org" / "Name").string());
  EXPECT_TRUE(r.hub_id.empty());
  EXPECT_NE(error_of([&] { resolve_model((root_ / "Org").string(), "main", "", "--model"); }).find("--revision"),
            std::string::npos);
}

TEST_F(HubCache, ErrorsSayWhatToDo) {
  env_.set("HF_HUB_CACHE", (root_ / "c").string());
  fake_repo(root_ / "c", "Org/Partial", {{"main", kMain}}, {{kMain, {"tokenizer.json"}}});
  fake_repo(root_ / "c", "Org/Tagged", {{"main", kMain}, {"v2", kTag}}, {{kMain, {"config.json"}}});
  struct Case {
    std::string name, revision, mentions;
  };
  const std::vector<Case> cases = {
      {"Org/Missing", "", "huggingface-cli download Org/Missing"},
      {"Org/Missing", "v3", "huggingface-cli download Org/Missing --revision v3"},
      {"Org/Partial", "", "no config.json"},
      {"Org/Tagged", "v9", "cached refs: "},
      {"Org/Tagged", "v2", "snapshot folder is missing"},
      {(root_ / "no" / "such" / "folder").string(), "", "no such folder"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of([&] { resolve_model(c.name, c.revision, "config.json", "--model"); });
    EXPECT_NE(e.find(c.mentions), std::string::npos) << c.name << "@" << c.revision << ": " << e;
  }
  EXPECT_TRUE(looks_like_hub_id("Qwen/Qwen2.5-0.5B-Instruct"));
  for (const char* s : {"/abs/path", "./rel", "a/b/c", "noslash", "../x", "a/..", ".hidden/x"})
    EXPECT_FALSE(looks_like_hub_id(s)) << s;
}

}  // namespace
}  // namespace wick
