// wick generate and wick chat: thin layers over infer/session.h.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "cli/commands.h"
#include "core/error.h"
#include "api/session_setup.h"
#include "infer/session.h"

namespace wick::cli {

namespace {

struct GenFlags {
  SessionSpec s;
  int64_t max_new_tokens = 256;
  SamplingOverrides sampling;  // over generation_config.json's
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

void add_model_flags(CLI::App* cmd, GenFlags& f) {
  cmd->add_option("--model", f.s.model, "Hugging Face model folder (config.json, *.safetensors, tokenizer), or a Hub id in the local Hugging Face cache")->required();
  cmd->add_option("--revision", f.s.revision, "with a Hub id: the branch, tag or commit (default main)");
  cmd->add_option("--adapter", f.s.adapter, "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) or Hub id");
  cmd->add_option("--device", f.s.device, "cpu, cuda, cuda:N or auto (default: cuda when present)");
  cmd->add_option("--dtype", f.s.dtype, "compute dtype: f32 or bf16 (default: bf16 on CUDA, f32 on CPU)");
  cmd->add_option("--chat-template", f.s.chat_template, "force the chat template family: qwen2.5 or qwen3");
  cmd->add_option("--max-new-tokens", f.max_new_tokens, "most tokens to generate (default 256)");
  cmd->add_option("--temperature", f.sampling.temperature, "sampling temperature; 0 = greedy (default: generation_config.json, else greedy)");
  cmd->add_option("--top-k", f.sampling.top_k, "keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", f.sampling.top_p, "nucleus sampling: keep the smallest set with this much probability");
  cmd->add_option("--min-p", f.sampling.min_p, "drop tokens under min-p times the top probability");
  cmd->add_option("--repetition-penalty", f.sampling.repetition_penalty, "Hugging Face repetition penalty (1 = off)");
  cmd->add_option("--seed", f.seed, "random seed for sampling (runs are reproducible)")->check(non_negative_integer());
  cmd->add_option("--stop", f.stop, "stop when this string appears (repeatable)");
  cmd->add_flag("--ignore-eos", f.ignore_eos, "keep generating past end-of-sequence tokens (for benchmarks)");
}

GenerateOptions gen_options(const Session& s, const GenFlags& f) {
  GenerateOptions o;
  o.max_new_tokens = f.max_new_tokens;
  o.sampling = with_overrides(s.default_sampling(), f.sampling);
  o.sampling.seed = f.seed;
  o.eos_ids = s.generation_config().eos_token_ids;
  o.stop_strings = f.stop;
  o.ignore_eos = f.ignore_eos;
  // The flags passed check_gen_flags; what fails now came from the model folder's generation_config.json.
  validate_sampling_params(o.sampling, "generation_config.json: ");
  return o;
}

// The flags alone, before the model loads (the library's rules, named as flags).
void check_gen_flags(const GenFlags& f) {
  if (f.max_new_tokens < 1) throw Error("must be >= 1, got " + std::to_string(f.max_new_tokens), "--max-new-tokens");
  validate_sampling_params(with_overrides(SamplingParams{}, f.sampling), "--");
}

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(tok, &used);
      if (used != tok.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument("range");
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw Error("'" + tok + "' is not a token id", "--prompt-ids", "give comma-separated non-negative integers");
    }
  }
  return ids;
}

}  // namespace

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (optionally with a LoRA adapter)");
  auto f = std::make_shared<GenFlags>();
  auto prompt = std::make_shared<std::string>();
  auto prompt_ids = std::make_shared<std::string>();
  auto system = std::make_shared<std::string>();
  auto chat = std::make_shared<bool>(false);
  auto print_ids = std::make_shared<bool>(false);
  add_model_flags(cmd, *f);
  auto* p1 = cmd->add_option("--prompt", *prompt, "prompt text");
  auto* p2 = cmd->add_option("--prompt-ids", *prompt_ids, "prompt as comma-separated token ids");
  p1->excludes(p2);
  cmd->add_flag("--chat", *chat, "wrap the prompt in the chat template as a user turn");
  cmd->add_option("--system", *system, "system prompt (with --chat)");
  cmd->add_flag("--ids", *print_ids, "also print the generated token ids as JSON on the last line");
  cmd->callback([=] {
    if (given(p1) + given(p2) != 1) throw Error("give exactly one of --prompt or --prompt-ids", "wick generate");
    if (prompt->empty() && prompt_ids->empty())
      throw Error("is empty", p1->count() ? "--prompt" : "--prompt-ids", "give at least one token to continue from");
    check_gen_flags(*f);
    OpenedSession opened = open_session(f->s);
    Session& s = *opened.session;
    std::vector<int32_t> ids;
    if (!prompt_ids->empty()) {
      ids = parse_ids(*prompt_ids);
    } else if (*chat) {
      std::vector<ChatMessage> msgs;
      if (!system->empty()) msgs.push_back({"system", *system});
      msgs.push_back({"user", *prompt});
      ids = s.encode(s.chat_template().render(msgs, true, std::nullopt));
    } else {
      ids = s.encode(*prompt);
    }
    const GenerateOptions o = gen_options(s, *f);
    const bool text = s.tokenizer() != nullptr;
    GenerateResult r = s.generate(ids, o, [&](int32_t, const std::string& piece) {
      if (text && !piece.empty()) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }
      return true;
    });
    if (text) std::printf("\n");
    if (*print_ids || !text) std::printf("%s\n", nlohmann::json(r.ids).dump().c_str());
    std::fflush(stdout);  // before the stats line on stderr
    std::fprintf(stderr,
                 "[%lld prompt tokens, %zu generated, stop: %s, prefill %.1f tok/s, decode %.1f tok/s, device %s, "
                 "peak device memory %.2f GiB]\n",
                 static_cast<long long>(r.prompt_tokens), r.ids.size(), r.stop_reason.c_str(),
                 r.prompt_tokens / std::max(r.prefill_s, 1e-9),
                 r.ids.size() > 1 ? (r.ids.size() - 1) / std::max(r.decode_s, 1e-9) : 0.0,
                 s.model().device().str().c_str(), device_peak_memory(s.model().device()) / 1073741824.0);
  });
}

void register_chat(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "Multi-turn chat with the model's chat template (/reset, /exit)");
  auto f = std::make_shared<GenFlags>();
  auto system = std::make_shared<std::string>();
  add_model_flags(cmd, *f);
  cmd->add_option("--system", *system, "system prompt");
  cmd->callback([=] {
    check_gen_flags(*f);
    OpenedSession opened = open_session(f->s);
    Session& s = *opened.session;
    const ChatTemplate& tmpl = s.chat_template();
    const GenerateOptions o = gen_options(s, *f);
    const bool tty = isatty(STDIN_FILENO);
    std::vector<ChatMessage> msgs;
    if (!system->empty()) msgs.push_back({"system", *system});
    std::string line;
    while (true) {
      if (tty) std::fprintf(stdout, "> "), std::fflush(stdout);
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        msgs.resize(system->empty() ? 0 : 1);
        std::printf("(conversation reset)\n");
        continue;
      }
      if (line.empty()) continue;
      msgs.push_back({"user", line});
      // A turn that fails (a line that is not UTF-8, a conversation longer than the model reads) is reported
      // and dropped; the session goes on.
      try {
        const std::vector<int32_t> ids = s.encode(tmpl.render(msgs, true, std::nullopt));
        GenerateResult r = s.generate(ids, o, [&](int32_t, const std::string& piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          return true;
        });
        std::printf("\n");
        msgs.push_back({"assistant", r.text});
        if (r.stop_reason == "context")
          std::fprintf(stderr, "wick chat: the conversation fills the model's context; /reset to start a new one\n");
      } catch (const Error& e) {
        msgs.pop_back();
        std::fflush(stdout);
        std::fprintf(stderr, "wick chat: error: %s (the message was dropped; the conversation goes on)\n", e.what());
      }
    }
  });
}

}  // namespace wick::cli
