// Qwen2 model and LoRA adapter -> GGUF (see gguf_export.h for the layout).
#include "io/gguf_export.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/gguf_vocab.h"

namespace wick::io {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QUANT_VERSION

std::vector<int64_t> dims(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

// The bytes of a host tensor stored as type t (ggml's row-major layout is the tensor's own).
std::string encode(const Tensor& t, GgmlType type) {
  const Tensor f = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  std::string out;
  out.reserve(static_cast<size_t>(f.numel()) * 4);
  ggml_encode(type, f.data<float>(), f.numel(), out);
  return out;
}

GgufExportSummary finish(GgufWriter& w, const std::string& out) {
  w.add_u32("general.quantization_version", kQuantizationVersion);
  w.write(out);
  return {w.tensors(), w.kv_count()};
}

}  // namespace

GgufExportSummary write_model_gguf(const std::string& model_dir, const GgufModelHparams& hp,
                                   const std::vector<LazyTensor>& tensors, GgufFileType ft, const std::string& out,
                                   const std::string& name) {
  if (hp.model_type != "qwen2")
    throw Error("GGUF export knows the qwen2 architecture only, not \"" + hp.model_type + "\"", model_dir + "/config.json");
  std::vector<const LazyTensor*> order;
  for (const LazyTensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const LazyTensor* a, const LazyTensor* b) { return a->name < b->name; });

  GgufWriter w;
  int64_t params = 0;
  for (const LazyTensor* t : order) {
    const std::string gname = gguf_tensor_name(t->name);
    if (gname.empty())
      throw Error("tensor " + t->name + " has no GGUF name for qwen2", model_dir, "is this a Qwen2 checkpoint?");
    const std::vector<int64_t> shape = dims(t->shape);
    const GgmlType type = gguf_tensor_type(gname, shape, ft);
    params += shape_numel(t->shape);
    w.add_tensor(gname, shape, type, [t, type] { return encode(t->get(), type); });
  }

  const std::string arch = "qwen2";
  w.add_string("general.architecture", arch);
  w.add_string("general.type", "model");
  w.add_string("general.name", name);
  w.add_string("general.size_label", gguf_size_label(params));
  w.add_u32(arch + ".block_count", static_cast<uint32_t>(hp.block_count));
  w.add_u32(arch + ".context_length", static_cast<uint32_t>(hp.context_length));
  w.add_u32(arch + ".embedding_length", static_cast<uint32_t>(hp.embedding_length));
  w.add_u32(arch + ".feed_forward_length", static_cast<uint32_t>(hp.feed_forward_length));
  w.add_u32(arch + ".attention.head_count", static_cast<uint32_t>(hp.head_count));
  w.add_u32(arch + ".attention.head_count_kv", static_cast<uint32_t>(hp.head_count_kv));
  w.add_f32(arch + ".rope.freq_base", static_cast<float>(hp.rope_freq_base));
  w.add_f32(arch + ".attention.layer_norm_rms_epsilon", static_cast<float>(hp.rms_norm_eps));
  w.add_u32("general.file_type", gguf_llama_ftype(ft));
  add_gguf_vocab(w, read_gguf_vocab(model_dir, hp.vocab_size));
  return finish(w, out);
}

GgufExportSummary write_lora_gguf(const AdapterFiles& ad, GgufFileType ft, const std::string& out,
                                  const std::string& name) {
  GgufWriter w;
  for (const auto& [module, pair] : ad.modules) {  // std::map: sorted by module path, as the converter's order
    const std::string gname = gguf_tensor_name(module + ".weight");
    if (gname.empty()) throw Error("adapter module " + module + " has no GGUF name for qwen2", "--adapter");
    for (const auto& [suffix, tensor] : {std::pair<const char*, const Tensor*>{".lora_a", &pair.A}, {".lora_b", &pair.B}}) {
      const std::vector<int64_t> shape = dims(tensor->shape());
      const GgmlType type = gguf_tensor_type(gname + suffix, shape, ft);
      const Tensor t = *tensor;
      w.add_tensor(gname + suffix, shape, type, [t, type] { return encode(t, type); });
    }
  }
  if (w.tensors().empty()) throw Error("the adapter has no LoRA modules", "--adapter");
  w.add_string("general.architecture", "qwen2");
  w.add_string("general.type", "adapter");
  w.add_string("adapter.type", "lora");
  w.add_string("general.name", name);
  // llama.cpp computes scale = alpha / r; an rsLoRA adapter's scale is alpha / sqrt(r).
  const double r = static_cast<double>(ad.cfg.r);
  w.add_f32("adapter.lora.alpha", static_cast<float>(ad.cfg.use_rslora ? ad.cfg.alpha * std::sqrt(r) : ad.cfg.alpha));
  return finish(w, out);
}

}  // namespace wick::io
