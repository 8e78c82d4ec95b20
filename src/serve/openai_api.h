// The OpenAI wire format: request bodies of POST /v1/chat/completions and /v1/completions parsed and checked
// into what the scheduler needs, the response and stream-chunk JSON, and OpenAI's error shape
// {"error": {"message", "type", "param", "code"}}. Pure functions: no server state (tests/serve/ cover them).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "tokenizer/chat_template.h"

namespace wick::serve {

// An error answered to the client: HTTP status and OpenAI's error type ("invalid_request_error", ...).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string type = "", std::string code = "");
  int status;
  std::string param, type, code;
};

// JSON text of a response: invalid UTF-8 in its strings (a message quoting a client's bytes) becomes U+FFFD
// instead of an exception.
std::string dump_json(const nlohmann::json& j);

nlohmann::json error_body(int status, const std::string& message, const std::string& param = "",
                          const std::string& type = "", const std::string& code = "");

struct CompletionRequest {
  bool chat = false;
  std::string model;                     // "" = the base model
  nlohmann::ordered_json messages;       // chat: [{role, content}], content a string (parts joined)
  std::string prompt;                    // completions: text
  std::vector<int32_t> prompt_ids;       // completions: a prompt given as token ids
  std::optional<int64_t> max_tokens;     // max_tokens or max_completion_tokens
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  float frequency_penalty = 0, presence_penalty = 0;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false, include_usage = false;
  bool ignore_eos = false;               // vLLM's extension, for load tests
  bool echo = false;                     // completions: refused when true
};

// body -> request. ApiError(400, naming the field) on malformed JSON, wrong types, out-of-range values and
// features wick does not offer (n != 1, logprobs, tools, best_of, response_format other than text).
CompletionRequest parse_completion_request(const std::string& body, bool chat);

// The request's sampling settings over the model's defaults (generation_config.json). ApiError(400) when
// the combination is invalid (validate_sampling_params).
SamplingParams sampling_for(const CompletionRequest& r, const SamplingParams& defaults, uint64_t fallback_seed);

// Chat messages as the chat template renders them.
std::vector<ChatMessage> chat_messages(const nlohmann::ordered_json& messages);

struct CompletionResult {
  std::string id, model, text, finish_reason;
  int64_t created = 0, prompt_tokens = 0, completion_tokens = 0;
};
nlohmann::json completion_response(const CompletionResult& r, bool chat);
// One streamed chunk: a text delta (first chunk of a chat carries role), or the final one with finish_reason.
nlohmann::json stream_chunk(const CompletionResult& r, bool chat, const std::string& delta, bool first,
                            const std::string& finish_reason);
nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

}  // namespace wick::serve
