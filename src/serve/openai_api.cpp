#include "serve/openai_api.h"

#include <cmath>

#include "core/error.h"

namespace wick::serve {

using json = nlohmann::json;

static std::string default_type(int status) {
  if (status == 401) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

ApiError::ApiError(int s, std::string message, std::string p, std::string t, std::string c)
    : std::runtime_error(std::move(message)), status(s), param(std::move(p)), type(t.empty() ? default_type(s) : std::move(t)),
      code(std::move(c)) {}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_body(int status, const std::string& message, const std::string& param, const std::string& type,
                const std::string& code) {
  json e = {{"message", message}, {"type", type.empty() ? default_type(status) : type}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  e["code"] = code.empty() ? json(nullptr) : json(code);
  return json{{"error", e}};
}

namespace {

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw ApiError(400, "'" + field + "' " + what, field);
}

double number(const json& v, const std::string& field) {
  if (!v.is_number()) bad(field, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) bad(field, "must be finite");
  return d;
}

int64_t integer(const json& v, const std::string& field) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    bad(field, "must be an integer");
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::fabs(d) > 9e15) bad(field, "is out of range");
    return static_cast<int64_t>(d);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) bad(field, "is out of range");
  return v.get<int64_t>();
}

std::string content_text(const json& content, const std::string& field) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(field, "must be a string or a list of content parts");
  std::string out;
  for (size_t i = 0; i < content.size(); i++) {
    const json& p = content[i];
    const std::string f = field + "[" + std::to_string(i) + "]";
    if (!p.is_object() || p.value("type", "") != "text" || !p.contains("text") || !p["text"].is_string())
      bad(f, "must be a text part {\"type\": \"text\", \"text\": ...} (wick serves text models)");
    out += p["text"].get<std::string>();
  }
  return out;
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) bad("model", "must be a string");
    r.model = j["model"].get<std::string>();
  }
  if (chat) {
    if (!j.contains("messages")) throw ApiError(400, "'messages' is required", "messages");
    const json& m = j["messages"];
    if (!m.is_array() || m.empty()) bad("messages", "must be a non-empty list");
    r.messages = nlohmann::ordered_json::array();
    for (size_t i = 0; i < m.size(); i++) {
      const std::string f = "messages[" + std::to_string(i) + "]";
      if (!m[i].is_object()) bad(f, "must be an object");
      if (!m[i].contains("role") || !m[i]["role"].is_string()) bad(f + ".role", "must be a string");
      if (m[i].contains("tool_calls") && !m[i]["tool_calls"].is_null() &&
          !(m[i]["tool_calls"].is_array() && m[i]["tool_calls"].empty()))
        bad(f + ".tool_calls", "is not supported");
      // OpenAI's roles; "developer" is its newer name for the system message (the chat templates know
      // "system"). Another role would reach the template, which renders only the roles it knows: dropped silently.
      std::string role = m[i]["role"].get<std::string>();
      if (role == "developer") role = "system";
      if (role != "system" && role != "user" && role != "assistant" && role != "tool")
        bad(f + ".role", "must be one of system, developer, user, assistant, tool; got '" + role + "'");
      r.messages.push_back({{"role", role}, {"content", content_text(m[i].value("content", json(nullptr)), f + ".content")}});
    }
    // Tool calling is not served; what asks for none of it (an empty list, "none") is accepted, as clients send it.
    for (const char* k : {"tools", "functions"})
      if (j.contains(k) && !j[k].is_null() && !(j[k].is_array() && j[k].empty())) bad(k, "is not supported");
    for (const char* k : {"tool_choice", "function_call"})
      if (j.contains(k) && !j[k].is_null() && j[k] != "none") bad(k, "is not supported (only \"none\")");
  } else {
    if (!j.contains("prompt")) throw ApiError(400, "'prompt' is required", "prompt");
    const json& p = j["prompt"];
    if (p.is_string()) {
      r.prompt = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt = p[0].get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number()) {
      for (size_t i = 0; i < p.size(); i++) {
        const int64_t id = integer(p[i], "prompt[" + std::to_string(i) + "]");
        if (id < 0 || id > INT32_MAX) bad("prompt[" + std::to_string(i) + "]", "is not a token id");
        r.prompt_ids.push_back(static_cast<int32_t>(id));
      }
    } else {
      bad("prompt", "must be a string or a list of token ids (one prompt per request)");
    }
    if (r.prompt.empty() && r.prompt_ids.empty()) bad("prompt", "is empty");
    if (j.contains("echo") && j["echo"].is_boolean() && j["echo"].get<bool>()) bad("echo", "is not supported");
    if (j.contains("best_of") && !j["best_of"].is_null() && integer(j["best_of"], "best_of") != 1)
      bad("best_of", "must be 1");
    if (j.contains("suffix") && !j["suffix"].is_null()) bad("suffix", "is not supported");
  }
  for (const char* k : {"max_tokens", "max_completion_tokens"}) {
    if (!j.contains(k) || j[k].is_null()) continue;
    const int64_t v = integer(j[k], k);
    if (v < 1) bad(k, "must be at least 1, got " + std::to_string(v));
    r.max_tokens = v;
  }
  auto opt_num = [&](const char* k, std::optional<float>& out) {
    if (j.contains(k) && !j[k].is_null()) out = static_cast<float>(number(j[k], k));
  };
  opt_num("temperature", r.temperature);
  opt_num("top_p", r.top_p);
  opt_num("min_p", r.min_p);
  opt_num("repetition_penalty", r.repetition_penalty);
  if (r.temperature && (*r.temperature < 0 || *r.temperature > 2)) bad("temperature", "must be in [0, 2]");
  if (r.top_p && (*r.top_p <= 0 || *r.top_p > 1)) bad("top_p", "must be in (0, 1]");
  if (r.min_p && (*r.min_p < 0 || *r.min_p > 1)) bad("min_p", "must be in [0, 1]");
  if (r.repetition_penalty && *r.repetition_penalty <= 0) bad("repetition_penalty", "must be > 0");
  if (j.contains("top_k") && !j["top_k"].is_null()) {
    const int64_t k = integer(j["top_k"], "top_k");
    if (k < -1 || k > INT32_MAX) bad("top_k", "must be -1 or 0 (off) or a positive count");
    r.top_k = static_cast<int>(std::max<int64_t>(k, 0));
  }
  for (const char* k : {"frequency_penalty", "presence_penalty"}) {
    if (!j.contains(k) || j[k].is_null()) continue;
    const double v = number(j[k], k);
    if (v < -2 || v > 2) bad(k, "must be in [-2, 2]");
    (std::string(k) == "frequency_penalty" ? r.frequency_penalty : r.presence_penalty) = static_cast<float>(v);
  }
  if (j.contains("seed") && !j["seed"].is_null()) r.seed = static_cast<uint64_t>(integer(j["seed"], "seed"));
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) r.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4) {
      for (size_t i = 0; i < s.size(); i++) {
        if (!s[i].is_string()) bad("stop[" + std::to_string(i) + "]", "must be a string");
        r.stop.push_back(s[i].get<std::string>());
      }
    } else bad("stop", "must be a string or a list of at most 4 strings");
    for (const std::string& s : r.stop)
      if (s.empty()) bad("stop", "holds an empty string");
  }
  if (j.contains("n") && !j["n"].is_null() && integer(j["n"], "n") != 1) bad("n", "must be 1 (wick returns one choice)");
  if (j.contains("logprobs") && !j["logprobs"].is_null() && !(j["logprobs"].is_boolean() && !j["logprobs"].get<bool>()))
    bad("logprobs", "is not supported");
  if (j.contains("top_logprobs") && !j["top_logprobs"].is_null()) bad("top_logprobs", "is not supported");
  if (j.contains("logit_bias") && !j["logit_bias"].is_null() && !(j["logit_bias"].is_object() && j["logit_bias"].empty()))
    bad("logit_bias", "is not supported");
  if (j.contains("response_format") && !j["response_format"].is_null() &&
      !(j["response_format"].is_object() && j["response_format"].value("type", "") == "text"))
    bad("response_format", "only {\"type\": \"text\"} is supported");
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) bad("stream", "must be a boolean");
    r.stream = j["stream"].get<bool>();
  }
  // stream_options as OpenAI takes it: an object, only with stream true, include_usage a boolean (a wrong type was
  // read as false, and the usage chunk asked for never came).
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "must be an object");
    if (!r.stream) bad("stream_options", "is only allowed when stream is true");
    if (so.contains("include_usage") && !so["include_usage"].is_null()) {
      if (!so["include_usage"].is_boolean()) bad("stream_options.include_usage", "must be a boolean");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (j.contains("ignore_eos") && !j["ignore_eos"].is_null()) {
    if (!j["ignore_eos"].is_boolean()) bad("ignore_eos", "must be a boolean");
    r.ignore_eos = j["ignore_eos"].get<bool>();
  }
  return r;
}

SamplingParams sampling_for(const CompletionRequest& r, const SamplingParams& defaults, uint64_t fallback_seed) {
  SamplingParams p = with_overrides(defaults, {r.temperature, r.top_p, r.min_p, r.repetition_penalty, r.top_k});
  p.seed = r.seed.value_or(fallback_seed);
  try {
    validate_sampling_params(p);
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  return p;
}

std::vector<ChatMessage> chat_messages(const nlohmann::ordered_json& messages) {
  std::vector<ChatMessage> out;
  for (const auto& m : messages) out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return out;
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json completion_response(const CompletionResult& r, bool chat) {
  json choice = {{"index", 0}, {"finish_reason", r.finish_reason}, {"logprobs", nullptr}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  else choice["text"] = r.text;
  return {{"id", r.id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", r.created},
          {"model", r.model},
          {"choices", json::array({choice})},
          {"usage", usage_json(r.prompt_tokens, r.completion_tokens)}};
}

json stream_chunk(const CompletionResult& r, bool chat, const std::string& delta, bool first,
                  const std::string& finish_reason) {
  json choice = {{"index", 0}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (chat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.empty() || first) d["content"] = delta;
    choice["delta"] = d;
  } else {
    choice["text"] = delta;
  }
  return {{"id", r.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", r.created},
          {"model", r.model},
          {"choices", json::array({choice})}};
}

}  // namespace wick::serve
