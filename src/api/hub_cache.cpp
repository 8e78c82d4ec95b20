#include "api/hub_cache.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/error.h"

namespace fs = std::filesystem;

namespace wick {

namespace {

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

std::string read_ref(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string download_hint(const std::string& id, const std::string& revision) {
  return "download it first: huggingface-cli download " + id + (revision.empty() ? "" : " --revision " + revision) +
         " (or set HF_HUB_CACHE / HF_HOME to the cache that holds it, or pass a model folder)";
}

}  // namespace

std::string hub_cache_dir() {
  if (!env("HF_HUB_CACHE").empty()) return env("HF_HUB_CACHE");
  if (!env("HUGGINGFACE_HUB_CACHE").empty()) return env("HUGGINGFACE_HUB_CACHE");  // the older name
  if (!env("HF_HOME").empty()) return (fs::path(env("HF_HOME")) / "hub").string();
  if (!env("XDG_CACHE_HOME").empty()) return (fs::path(env("XDG_CACHE_HOME")) / "huggingface" / "hub").string();
  return (fs::path(env("HOME").empty() ? "/root" : env("HOME")) / ".cache" / "huggingface" / "hub").string();
}

bool looks_like_hub_id(const std::string& s) {
  static const std::regex re(R"(^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$)");
  return std::regex_match(s, re) && s.find("..") == std::string::npos;
}

ResolvedModel resolve_model(const std::string& name, const std::string& revision, const std::string& must_have,
                            const std::string& flag) {
  ResolvedModel r;
  std::error_code ec;
  if (fs::is_directory(name, ec)) {
    r.path = fs::absolute(name).lexically_normal().string();
    if (!r.path.empty() && r.path.size() > 1 && r.path.back() == '/') r.path.pop_back();
    if (!revision.empty())
      throw Error("--revision applies to a Hub id, but '" + name + "' is a folder", flag, "drop --revision");
    return r;
  }
  if (!looks_like_hub_id(name)) {
    if (fs::exists(name, ec)) throw Error("not a folder", name, "pass a Hugging Face model folder");
    throw Error("no such folder", name, "pass a folder, or a Hub id like Qwen/Qwen2.5-0.5B-Instruct from the local cache");
  }
  // models--ORG--NAME, as huggingface_hub names repo folders.
  const std::string slash = name.substr(0, name.find('/')), rest = name.substr(name.find('/') + 1);
  const fs::path cache = hub_cache_dir();
  const fs::path repo = cache / ("models--" + slash + "--" + rest);
  if (!fs::is_directory(repo, ec))
    throw Error("'" + name + "' is not a folder and is not in the Hugging Face cache (" + cache.string() + ")", flag,
                download_hint(name, revision));
  const std::string rev = revision.empty() ? "main" : revision;
  std::string commit;
  if (fs::is_regular_file(repo / "refs" / rev, ec)) commit = read_ref(repo / "refs" / rev);
  else if (fs::is_directory(repo / "snapshots" / rev, ec)) commit = rev;  // a commit hash
  if (commit.empty()) {
    std::string have;
    for (const auto& e : fs::directory_iterator(repo / "refs", ec)) have += (have.empty() ? "" : ", ") + e.path().filename().string();
    throw Error("revision '" + rev + "' of " + name + " is not in the cache (" + repo.string() + ")", flag,
                (have.empty() ? "" : "cached refs: " + have + "; ") + download_hint(name, revision));
  }
  const fs::path snap = repo / "snapshots" / commit;
  if (!fs::is_directory(snap, ec))
    throw Error("the cache's ref '" + rev + "' names commit " + commit + ", whose snapshot folder is missing",
                snap.string(), download_hint(name, revision));
  if (!must_have.empty() && !fs::exists(snap / must_have, ec))
    throw Error("the cached snapshot of " + name + " has no " + must_have + " (a partial download?)", snap.string(),
                download_hint(name, revision));
  r.path = snap.string();
  r.hub_id = name;
  r.commit = commit;
  return r;
}

}  // namespace wick
