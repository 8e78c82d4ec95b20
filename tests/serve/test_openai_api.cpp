// Request parsing and validation of the OpenAI routes (serve/openai_api.h): what is accepted, and that
// every refusal is a 400 naming the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "serve/openai_api.h"

using namespace wick;
using namespace wick::serve;
using json = nlohmann::json;

namespace {

// The field an ApiError names (and its status), or "accepted".
std::string refusal(const std::string& body, bool chat, int* status = nullptr) {
  try {
    parse_completion_request(body, chat);
    return "accepted";
  } catch (const ApiError& e) {
    if (status) *status = e.status;
    return e.param.empty() ? std::string("(body)") : e.param;
  }
}

const char* kChat = R"({"model": "m", "messages": [{"role": "user", "content": "hi"}])";

std::string chat_with(const std::string& extra) { return std::string(kChat) + ", " + extra + "}"; }

}  // namespace

TEST(OpenAIApi, ParsesAChatRequestWithEverySamplingField) {
  const CompletionRequest r = parse_completion_request(
      R"({"model": "sql", "messages": [{"role": "system", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 17, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
          "repetition_penalty": 1.1, "frequency_penalty": 0.5, "presence_penalty": -0.25, "seed": 1234,
          "stop": ["\n\n", "END"], "n": 1, "stream": true, "stream_options": {"include_usage": true}})",
      true);
  EXPECT_EQ(r.model, "sql");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "ab");
  // OpenAI's "developer" role is its name for the system message: the templates get "system".
  const CompletionRequest d = parse_completion_request(
      R"({"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"},
          {"role": "assistant", "content": "ok", "tool_calls": []}, {"role": "tool", "content": "42"}]})", true);
  EXPECT_EQ(d.messages[0]["role"], "system");
  EXPECT_EQ(d.messages[2]["role"], "assistant");
  EXPECT_EQ(d.messages[3]["role"], "tool");
  EXPECT_EQ(*r.max_tokens, 17);
  EXPECT_FLOAT_EQ(*r.temperature, 0.7f);
  EXPECT_FLOAT_EQ(*r.top_p, 0.9f);
  EXPECT_EQ(*r.top_k, 40);
  EXPECT_FLOAT_EQ(*r.min_p, 0.05f);
  EXPECT_FLOAT_EQ(*r.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(r.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.presence_penalty, -0.25f);
  EXPECT_EQ(*r.seed, 1234u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);

  SamplingParams defaults;
  defaults.temperature = 0.0f;
  defaults.top_k = 20;
  const SamplingParams p = sampling_for(r, defaults, 99);
  EXPECT_FLOAT_EQ(p.temperature, 0.7f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.seed, 1234u);
  const CompletionRequest plain = parse_completion_request(kChat + std::string("}"), true);
  const SamplingParams q = sampling_for(plain, defaults, 99);
  EXPECT_EQ(q.temperature, 0.0f);  // the model's defaults where the request says nothing
  EXPECT_EQ(q.top_k, 20);
  EXPECT_EQ(q.seed, 99u);
}

TEST(OpenAIApi, ParsesCompletionPromptsAsTextOrTokenIds) {
  CompletionRequest r = parse_completion_request(R"({"prompt": "Once upon", "max_tokens": 5, "stop": "x"})", false);
  EXPECT_EQ(r.prompt, "Once upon");
  EXPECT_EQ(*r.max_tokens, 5);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  r = parse_completion_request(R"({"prompt": [151, 7, 0]})", false);
  EXPECT_EQ(r.prompt_ids, (std::vector<int32_t>{151, 7, 0}));
  r = parse_completion_request(R"({"prompt": ["one"]})", false);
  EXPECT_EQ(r.prompt, "one");
}

TEST(OpenAIApi, RefusesBadRequestsNamingTheField) {
  int status = 0;
  EXPECT_EQ(refusal("{not json", true, &status), "(body)");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(refusal("[1, 2]", true), "(body)");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": "x"}], "seed": 1e400})", true), "(body)");  // found by fuzz_openai_request
  EXPECT_EQ(refusal(R"({"model": "m"})", true), "messages");
  EXPECT_EQ(refusal(R"({"messages": []})", true), "messages");
  EXPECT_EQ(refusal(R"({"messages": [{"content": "x"}]})", true), "messages[0].role");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true),
            "messages[0].content[0]");
  EXPECT_EQ(refusal(chat_with(R"("max_tokens": -5)"), true, &status), "max_tokens");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(refusal(chat_with(R"("max_tokens": 0)"), true), "max_tokens");
  EXPECT_EQ(refusal(chat_with(R"("max_completion_tokens": 2.5)"), true), "max_completion_tokens");
  EXPECT_EQ(refusal(chat_with(R"("max_tokens": "10")"), true), "max_tokens");
  EXPECT_EQ(refusal(chat_with(R"("temperature": -0.1)"), true), "temperature");
  EXPECT_EQ(refusal(chat_with(R"("temperature": 2.5)"), true), "temperature");
  EXPECT_EQ(refusal(chat_with(R"("top_p": 0)"), true), "top_p");
  EXPECT_EQ(refusal(chat_with(R"("top_k": -2)"), true), "top_k");
  EXPECT_EQ(refusal(chat_with(R"("min_p": 1.5)"), true), "min_p");
  EXPECT_EQ(refusal(chat_with(R"("repetition_penalty": 0)"), true), "repetition_penalty");
  EXPECT_EQ(refusal(chat_with(R"("frequency_penalty": 3)"), true), "frequency_penalty");
  EXPECT_EQ(refusal(chat_with(R"("presence_penalty": "a")"), true), "presence_penalty");
  EXPECT_EQ(refusal(chat_with(R"("n": 2)"), true), "n");
  EXPECT_EQ(refusal(chat_with(R"("stop": ["a", "b", "c", "d", "e"])"), true), "stop");
  EXPECT_EQ(refusal(chat_with(R"("stop": [""])"), true), "stop");
  EXPECT_EQ(refusal(chat_with(R"("logprobs": true)"), true), "logprobs");
  EXPECT_EQ(refusal(chat_with(R"("tools": [{"type": "function"}])"), true), "tools");
  EXPECT_EQ(refusal(chat_with(R"("tool_choice": "auto")"), true), "tool_choice");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}]})", true),
            "messages[0].tool_calls");
  // A role the chat templates do not render would be dropped from the prompt without a word.
  EXPECT_EQ(refusal(R"({"messages": [{"role": "function", "content": "x"}, {"role": "user", "content": "y"}]})", true),
            "messages[0].role");
  EXPECT_EQ(refusal(R"({"messages": [{"role": "User", "content": "x"}]})", true), "messages[0].role");
  EXPECT_EQ(refusal(chat_with(R"("response_format": {"type": "json_object"})"), true), "response_format");
  EXPECT_EQ(refusal(chat_with(R"("stream": "yes")"), true), "stream");
  // stream_options as OpenAI takes it (a wrong include_usage was read as false: the usage chunk never came).
  EXPECT_EQ(refusal(chat_with(R"("stream_options": {"include_usage": true})"), true), "stream_options");
  EXPECT_EQ(refusal(chat_with(R"("stream": true, "stream_options": 5)"), true), "stream_options");
  EXPECT_EQ(refusal(chat_with(R"("stream": true, "stream_options": {"include_usage": "yes"})"), true),
            "stream_options.include_usage");
  EXPECT_EQ(refusal(chat_with(R"("ignore_eos": "x")"), true), "ignore_eos");
  EXPECT_EQ(refusal(chat_with(R"("ignore_eos": 1)"), true), "ignore_eos");
  EXPECT_EQ(refusal(chat_with(R"("model": 5)"), true), "model");
  EXPECT_EQ(refusal(R"({"prompt": ""})", false), "prompt");
  EXPECT_EQ(refusal(R"({"prompt": [1, -3]})", false), "prompt[1]");
  EXPECT_EQ(refusal(R"({"prompt": ["a", "b"]})", false), "prompt");
  EXPECT_EQ(refusal(R"({"prompt": "a", "echo": true})", false), "echo");
  EXPECT_EQ(refusal(R"({"prompt": "a", "best_of": 3})", false), "best_of");
  // Accepted: OpenAI's defaults spelled out, and null for "not given".
  EXPECT_EQ(refusal(chat_with(R"("n": 1, "logprobs": false, "temperature": null, "response_format": {"type": "text"})"), true),
            "accepted");
  EXPECT_EQ(refusal(chat_with(R"("stream": true, "stream_options": {"include_usage": false}, "ignore_eos": true)"), true),
            "accepted");
  // Tool calling asked for in no way: an empty list, "none" (clients send them by default).
  EXPECT_EQ(refusal(chat_with(R"("tools": [], "tool_choice": "none", "functions": [], "function_call": "none")"), true),
            "accepted");
}

TEST(OpenAIApi, ResponsesAndErrorsHaveOpenAIsShape) {
  CompletionResult r;
  r.id = "chatcmpl-1";
  r.model = "m";
  r.text = "hello";
  r.finish_reason = "length";
  r.created = 5;
  r.prompt_tokens = 3;
  r.completion_tokens = 2;
  const json c = completion_response(r, true);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["total_tokens"], 5);
  const json t = completion_response(r, false);
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "hello");
  const json first = stream_chunk(r, true, "", true, "");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(stream_chunk(r, true, "", false, "stop")["choices"][0]["finish_reason"], "stop");
  const json e = error_body(404, "no such model", "model", "", "model_not_found");
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_EQ(e["error"]["param"], "model");
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_TRUE(error_body(400, "x")["error"]["param"].is_null());
}
