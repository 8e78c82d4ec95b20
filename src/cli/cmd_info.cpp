// wick info: the machine (CPU, GPUs, CUDA versions, BLAS); with --model, the model folder.
#include <cstdio>
#include <map>
#include <fstream>
#include <string>
#include <thread>

#include <cblas.h>

#include <filesystem>

#include "api/hub_cache.h"
#include "cli/commands.h"
#include "core/device.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/generation_config.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#ifdef WICK_CUDA
#include "ops/attention.h"
#include "ops/cuda/runtime.h"
#endif

namespace wick::cli {

static std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown CPU";
}

void print_machine_info() {
  std::printf("wick 0.1.0\n");
  std::printf("cpu: %s, %u threads\n", cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("blas: OpenBLAS %s (%d threads; %s)\n", openblas_get_config(), openblas_get_num_threads(),
              openblas_get_corename());
#ifdef WICK_CUDA
  const int n = cuda_device_count();
  const int rt = cuda::runtime_version(), drv = cuda::driver_version();
  std::printf("cuda: compiled in; runtime %d.%d, driver %d.%d, %d device(s)\n", rt / 1000, (rt % 1000) / 10,
              drv / 1000, (drv % 1000) / 10, n);
  for (int i = 0; i < n; i++) {
    const auto d = cuda::device_info(i);
    std::printf("  cuda:%d %s, %.1f GiB, compute capability %d.%d, %d SMs\n", i, d.name.c_str(),
                d.total_memory / 1073741824.0, d.cc_major, d.cc_minor, d.sm_count);
  }
  std::printf("  attention (bf16, head dim 64/128): %s\n", cuda_attention_summary().c_str());
#else
  std::printf("cuda: not compiled in (nvcc was not found when this wick was configured)\n");
#endif
}

// The model folder: architecture, parameter count, dtypes, files, tokenizer, chat template.
static void print_model_info(const std::string& dir) {
  namespace fs = std::filesystem;
  const ModelConfig c = ModelConfig::from_model_dir(dir);
  std::printf("\nmodel: %s\n", dir.c_str());
  std::printf("  architecture: %s, %lld layers, hidden %lld, intermediate %lld, heads %lld / kv heads %lld, head dim %lld\n",
              c.model_type.c_str(), (long long)c.num_layers, (long long)c.hidden_size, (long long)c.intermediate_size,
              (long long)c.num_heads, (long long)c.num_kv_heads, (long long)c.head_dim);
  std::printf("  vocab %lld, rope theta %g, rms eps %g, max positions %lld, tied embeddings %s, config dtype %s\n",
              (long long)c.vocab_size, c.rope_theta, c.rms_norm_eps, (long long)c.max_position_embeddings,
              c.tie_word_embeddings ? "yes" : "no", c.torch_dtype.c_str());
  int64_t sliding = 0;
  for (int64_t l = 0; l < c.num_layers; l++) sliding += c.is_sliding(l) ? 1 : 0;
  if (sliding > 0)
    std::printf("  sliding window %lld on %lld of %lld layers (rope theta %g there)\n", (long long)c.sliding_window,
                (long long)sliding, (long long)c.num_layers, c.rope_local_theta);
  std::printf("  parameters: %.1fM (from config.json)\n", c.num_parameters() / 1e6);
  const io::Checkpoint ck = io::Checkpoint::open(dir);
  std::map<std::string, int64_t> by_dtype;
  int64_t n = 0;
  for (const std::string& name : ck.names()) {
    const io::TensorInfo& i = ck.info(name);
    by_dtype[i.dtype_str] += shape_numel(i.shape);
    n += shape_numel(i.shape);
  }
  std::printf("  weights: %zu tensors in %zu file(s), %.1fM values;", ck.names().size(), ck.files().size(), n / 1e6);
  for (const auto& [d, k] : by_dtype) std::printf(" %s %.1fM", d.c_str(), k / 1e6);
  std::printf("\n");
  for (const auto& f : ck.files()) std::printf("    %s\n", f->path().c_str());
  const GenerationConfig g = load_generation_config(dir, c);
  std::printf("  eos ids:");
  for (int64_t id : g.eos_token_ids) std::printf(" %lld", (long long)id);
  std::printf("%s\n", g.eos_token_ids.empty() ? " none" : "");
  if (fs::exists(fs::path(dir) / "tokenizer.json")) {
    const Tokenizer tok = Tokenizer::from_model_dir(dir);
    std::printf("  tokenizer: byte-level BPE, %lld ids\n", (long long)tok.vocab_size());
  } else {
    std::printf("  tokenizer: none (generate from --prompt-ids)\n");
  }
  const ChatTemplate t = ChatTemplate::from_tokenizer_config(dir);
  if (t.available()) std::printf("  chat template: %s\n", chat_template_kind_name(t.kind()));
  else std::printf("  chat template: none recognised (pass --chat-template qwen2.5|qwen3 to chat)\n");
}

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print the machine (CPU, GPUs, CUDA, BLAS) and, with --model, a model folder");
  auto model = std::make_shared<std::string>(), revision = std::make_shared<std::string>();
  cmd->add_option("--model", *model, "a Hugging Face model folder, or a Hub id in the local Hugging Face cache, to describe");
  cmd->add_option("--revision", *revision, "with a Hub id: the branch, tag or commit (default main)");
  cmd->callback([model, revision] {
    print_machine_info();
    if (model->empty()) return;
    const ResolvedModel r = resolve_model(*model, *revision, "config.json", "--model");
    if (!r.hub_id.empty()) std::printf("\nhub: %s, commit %s (from the local cache)\n", r.hub_id.c_str(), r.commit.c_str());
    print_model_info(r.path);
  });
}

}  // namespace wick::cli
