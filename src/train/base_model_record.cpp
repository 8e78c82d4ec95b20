#include "train/base_model_record.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/warn.h"
#include "io/fs_util.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick {

namespace {

constexpr const char* kFormat = "wick-base-model-1";
constexpr int64_t kSamples = 64;  // values per tensor in the fingerprint

// FNV-1a, 64 bits: a fingerprint against mix-ups, not against tampering.
struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  }
  template <class T>
  void add_value(const T& v) {
    add(&v, sizeof v);
  }
};

// Element i of a host tensor as a double: exact for every dtype a checkpoint holds, so the value, not its
// storage, is hashed.
double element(const Tensor& t, int64_t i) {
  const char* p = static_cast<const char*>(t.raw()) + static_cast<size_t>(i) * dtype_size(t.dtype());
  switch (t.dtype()) {
    case DType::F32: {
      float f;
      std::memcpy(&f, p, sizeof f);
      return f;
    }
    case DType::BF16:
    case DType::F16: {
      uint16_t h;
      std::memcpy(&h, p, sizeof h);
      return t.dtype() == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, sizeof v);
      return v;
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, sizeof v);
      return static_cast<double>(v);
    }
  }
  return 0;
}

// Every tensor by name (sorted: the shards' layout does not count), its shape and kSamples values spread evenly
// over it, from the first to the last.
std::string weights_fingerprint(const std::string& model_dir) {
  const io::Checkpoint ck = io::Checkpoint::open(model_dir);
  std::vector<std::string> names = ck.names();
  std::sort(names.begin(), names.end());
  Fnv h;
  for (const std::string& name : names) {
    const io::TensorInfo& info = ck.info(name);
    h.add(name.c_str(), name.size() + 1);
    for (const int64_t d : info.shape) h.add_value(d);
    if (!info.supported) {  // a dtype wick does not read (U8, F8_*): its name only
      h.add(info.dtype_str.c_str(), info.dtype_str.size() + 1);
      continue;
    }
    const Tensor t = ck.get(name);
    const int64_t n = t.numel();
    for (int64_t k = 0; k < std::min(n, kSamples); k++) h.add_value(element(t, n <= kSamples ? k : k * (n - 1) / (kSamples - 1)));
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h.h));
  return hex;
}

json config_sizes(const ModelConfig& c) {
  return json{{"model_type", c.model_type},         {"hidden_size", c.hidden_size},
              {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
              {"num_attention_heads", c.num_heads}, {"num_key_value_heads", c.num_kv_heads},
              {"head_dim", c.head_dim},             {"vocab_size", c.vocab_size}};
}

// "NAME (qwen2, 24 layers, hidden 896, weights 0123456789abcdef)".
std::string describe(const json& r) {
  const json c = r.value("config", json::object());
  auto num = [&](const char* k) { return c.contains(k) ? c[k].dump() : std::string("?"); };
  return r.value("model", std::string("?")) + " (" + c.value("model_type", std::string("?")) + ", " +
         num("num_hidden_layers") + " layers, hidden " + num("hidden_size") + ", weights " +
         r.value("weights_fingerprint", std::string("?")) + ")";
}

// The config fields whose values differ: "num_hidden_layers: trained 2, given 3; ...".
std::string config_differences(const json& trained, const json& given) {
  const json tc = trained.value("config", json::object());
  std::string out;
  for (const auto& [k, v] : given.at("config").items()) {
    const json t = tc.contains(k) ? tc[k] : json();
    if (t == v) continue;
    out += (out.empty() ? "" : "; ") + k + ": trained " + (t.is_null() ? "?" : t.dump()) + ", given " + v.dump();
  }
  return out;
}

// The base_model_name_or_path of the checkpoint's adapter_config.json, or "" when it has none or cannot be read.
std::string adapter_base_name(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / "adapter_config.json").string();
  try {
    return io::LoraConfig::from_json_string(io::read_file(path), path).base_model_name_or_path;
  } catch (const Error&) {
    return "";  // the resume reads the adapter next and reports what is wrong with it
  }
}

}  // namespace

json base_model_record(const std::string& model_dir, const std::string& shown_name, const std::string& revision) {
  json r = {{"format", kFormat},
            {"model", shown_name},
            {"config", config_sizes(ModelConfig::from_model_dir(model_dir))},
            {"weights_fingerprint", weights_fingerprint(model_dir)}};
  if (!revision.empty()) r["revision"] = revision;
  return r;
}

void check_resume_base(const std::string& checkpoint_dir, const json& given, const std::string& where_model) {
  const std::string path = (fs::path(checkpoint_dir) / kBaseModelRecord).string();
  if (!io::path_exists(path)) {
    // Written by a wick before the record: the name in its adapter_config.json is all there is (a path may have
    // moved, a Hub id says nothing of the revision), so it is shown, not compared.
    const std::string named = adapter_base_name(checkpoint_dir);
    warn(checkpoint_dir + " has no " + kBaseModelRecord + " (an older wick wrote it): cannot check that " + where_model +
         " " + given.value("model", std::string()) + " is the model it was trained on" +
         (named.empty() ? std::string() : " (its adapter_config.json names " + named + ")"));
    return;
  }
  json trained;
  try {
    trained = json::parse(io::read_file(path));
  } catch (const json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), path, "the checkpoint folder was edited by hand; resume from a folder wick train wrote");
  }
  if (!trained.is_object() || trained.value("format", std::string()) != kFormat) {
    warn(path + " is not a record this wick reads (format " +
         (trained.is_object() && trained.contains("format") ? trained["format"].dump() : std::string("none")) +
         "): the base model of the resumed checkpoint is not checked");
    return;
  }
  const std::string differ = config_differences(trained, given);
  if (differ.empty() && trained.value("weights_fingerprint", std::string()) == given.value("weights_fingerprint", std::string()))
    return;
  throw Error("the checkpoint was trained on another base model (" +
                  (differ.empty() ? "same architecture and sizes, other weights" : differ) + "): trained on " +
                  describe(trained) + ", " + where_model + " gives " + describe(given),
              path,
              "resume with the model it was trained on, or start a new run from its adapter with --adapter-init " +
                  checkpoint_dir);
}

}  // namespace wick
