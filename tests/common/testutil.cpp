#include "common/testutil.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "model/presets.h"

namespace fs = std::filesystem;

namespace wick::test {

ModelConfig small_family_config(const char* preset, int64_t vocab_size) {
  ModelConfig c = preset_config(preset);
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = vocab_size;
  if (c.model_type == "gemma3_text") {
    c.sliding_window = 4;
    c.sliding_layers = {true, false};
  }
  return c;
}

Tensor randn(const Shape& shape, Rng& rng, float scale) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i++) p[i] = scale * rng.normal();
  return t;
}

Tensor randu(const Shape& shape, Rng& rng, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); i++) p[i] = rng.uniform(lo, hi);
  return t;
}

static void both(const Tensor& a, const Tensor& b, std::vector<float>& va, std::vector<float>& vb) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  va = a.to_f32_vector();
  vb = b.to_f32_vector();
  if (va.size() != vb.size()) vb.resize(va.size(), NAN);
}

double rel_err(const Tensor& a, const Tensor& b) {
  std::vector<float> va, vb;
  both(a, b, va, vb);
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); i++) {
    const double d = static_cast<double>(va[i]) - vb[i];
    if (std::isnan(d)) return INFINITY;
    num += d * d;
    den += static_cast<double>(vb[i]) * vb[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> va, vb;
  both(a, b, va, vb);
  double m = 0;
  for (size_t i = 0; i < va.size(); i++) {
    const double d = std::fabs(static_cast<double>(va[i]) - vb[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

double max_abs_rel(const Tensor& a, const Tensor& b) {
  std::vector<float> vb = b.to_f32_vector();
  double m = 0;
  for (float x : vb) m = std::max(m, static_cast<double>(std::fabs(x)));
  return max_abs_diff(a, b) / std::max(m, 1e-30);
}

std::string source_dir() { return WICK_SOURCE_DIR; }

std::vector<std::string> fixture_dirs(const std::string& prefix, const std::string& marker) {
  std::vector<std::string> out;
  const fs::path root = fs::path(source_dir()) / "tests" / "fixtures";
  if (fs::exists(root)) {
    for (const auto& e : fs::directory_iterator(root)) {
      const std::string name = e.path().filename().string();
      if (e.is_directory() && name.rfind(prefix, 0) == 0) out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  if (const char* extra = std::getenv("WICK_EXTRA_FIXTURES")) {
    std::stringstream ss(extra);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (dir.empty() || !fs::is_directory(dir)) continue;
      const std::string name = fs::path(dir).lexically_normal().filename().string();
      if (name.rfind(prefix, 0) == 0 || (!marker.empty() && fs::exists(fs::path(dir) / marker))) out.push_back(dir);
    }
  }
  return out;
}

std::string cuda_skip_reason() {
  if (!cuda_compiled()) return "SKIPPED: this build has no CUDA backend (nvcc not found at configure time)";
  if (!cuda_available()) return "SKIPPED: no usable CUDA GPU on this machine";
  return "";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string write_random_ids_jsonl(const std::string& path, int n, uint64_t seed) {
  Rng rng(seed);
  std::ofstream f(path);
  for (int i = 0; i < n; i++) {
    std::vector<int32_t> ids(8 + static_cast<int>(rng.uniform() * 8));
    for (auto& id : ids) id = 100 + static_cast<int32_t>(rng.uniform() * 900);
    f << nlohmann::json{{"input_ids", ids}}.dump() << "\n";
  }
  if (!f.flush()) throw Error("could not write " + path);
  return path;
}

}  // namespace wick::test
