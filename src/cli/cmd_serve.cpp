// wick serve: a thin layer over serve/server.h (the model is opened as `wick generate` opens it).
#include "api/session_setup.h"
#include "cli/commands.h"
#include "core/error.h"
#include "serve/server.h"

namespace wick::cli {

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API (continuous batching, many adapters)");
  auto spec = std::make_shared<SessionSpec>();
  auto opt = std::make_shared<serve::ServerOptions>();
  auto adapters = std::make_shared<std::vector<std::string>>();
  auto max_body_mb = std::make_shared<double>(1.0);
  cmd->add_option("--model", spec->model, "Hugging Face model folder, or a Hub id in the local Hugging Face cache")->required();
  cmd->add_option("--revision", spec->revision, "with a Hub id: the branch, tag or commit (default main)");
  cmd->add_option("--adapter", *adapters, "NAME=DIR: serve a PEFT LoRA adapter as model NAME (repeatable)");
  cmd->add_option("--adapter-root", opt->adapter_root, "allow POST /v1/adapters to load adapters from folders under DIR");
  cmd->add_option("--model-name", opt->model_name, "the base model's id in the API (default: the folder's name)");
  cmd->add_option("--host", opt->host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", opt->port, "port to listen on; 0 = any free port (default 8080)");
  cmd->add_option("--device", spec->device, "cpu, cuda, cuda:N or auto (default: cuda when present)");
  cmd->add_option("--dtype", spec->dtype, "compute dtype: f32 or bf16 (default: bf16 on CUDA, f32 on CPU)");
  cmd->add_option("--chat-template", spec->chat_template, "force the chat template family: qwen2.5 or qwen3");
  cmd->add_option("--max-batch", opt->limits.max_batch, "most sequences decoded together (default 8)");
  cmd->add_option("--max-queue", opt->limits.max_queue, "most requests waiting for a slot; more get 429 (default 64)");
  cmd->add_option("--max-kv-tokens", opt->limits.max_kv_tokens, "most KV cache tokens the running requests may need at worst (prompt + max_tokens each); 0 = no limit");
  cmd->add_option("--kv-cache-tokens", opt->limits.kv_cache_tokens,
                  "tokens of the paged KV cache, allocated once at start in blocks of 16 and shared by all requests (default: --max-batch x min(context, 4096)); a request that cannot fit it gets 400, one that must wait queues");
  opt->limits.max_step_tokens = 8192;
  cmd->add_option("--max-step-tokens", opt->limits.max_step_tokens, "most tokens per batched step: long prompts are prefilled in chunks beside the others' decode (default 8192; 0 = no limit)");
  cmd->add_option("--max-tokens", opt->max_tokens, "most new tokens one request may ask for (default 4096)");
  cmd->add_option("--max-body-mb", *max_body_mb, "largest request body in MiB; larger get 413 (default 1)");
  cmd->callback([=] {
    if (!(*max_body_mb > 0 && *max_body_mb <= 1024)) throw Error("must be in (0, 1024]", "--max-body-mb");  // NaN too
    opt->max_body_bytes = static_cast<size_t>(*max_body_mb * 1024 * 1024);
    for (const std::string& a : *adapters) {
      const size_t eq = a.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
        throw Error("'" + a + "' is not NAME=DIR", "--adapter", "e.g. --adapter sql=runs/sql-lora");
      opt->adapters.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    }
    serve::check_server_options(*opt);  // before the model loads
    OpenedSession opened = open_session(*spec);
    serve::Server server(*opened.session, *opt);
    server.run();
  });
}

}  // namespace wick::cli
