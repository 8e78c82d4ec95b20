// ShareGPT and Alpaca lines as chat messages, then the chat core (dataset_chat.cpp) renders and masks them.
#include <stdexcept>
#include <string>

#include "tokenizer/chat_template.h"
#include "train/dataset_formats.h"

namespace wick::dataset_detail {

using nlohmann::json;

namespace {

std::string item(size_t i) { return "\"conversations\"[" + std::to_string(i) + "]"; }

// An optional string field: absent or null -> "", another type -> an error naming it.
std::string optional_string(const json& j, const char* field) {
  if (!j.contains(field) || j.at(field).is_null()) return "";
  if (!j.at(field).is_string()) throw std::runtime_error(std::string("\"") + field + "\" must be a string");
  return j.at(field).get<std::string>();
}

}  // namespace

// {"conversations": [{"from": "human"|"gpt"|"system", "value": "..."}]}; "user"/"assistant" are accepted as
// spellings of human/gpt (some ShareGPT exports use them).
Example sharegpt_example(const json& j, ChatRules& chat, bool train_on_inputs) {
  if (!j.contains("conversations")) throw std::runtime_error("missing \"conversations\"");
  const json& c = j.at("conversations");
  if (!c.is_array()) throw std::runtime_error("\"conversations\" must be an array of {\"from\", \"value\"} objects");
  if (c.empty()) throw std::runtime_error("\"conversations\" is empty");
  json msgs = json::array();
  for (size_t i = 0; i < c.size(); i++) {
    const json& e = c[i];
    if (!e.is_object()) throw std::runtime_error(item(i) + " must be an object with \"from\" and \"value\"");
    if (!e.contains("from") || !e.at("from").is_string()) throw std::runtime_error(item(i) + ".from must be a string");
    if (!e.contains("value") || !e.at("value").is_string()) throw std::runtime_error(item(i) + ".value must be a string");
    const std::string from = e.at("from").get<std::string>();
    std::string role;
    if (from == "human" || from == "user") role = "user";
    else if (from == "gpt" || from == "assistant") role = "assistant";
    else if (from == "system") role = "system";
    else
      throw std::runtime_error(item(i) + ".from is \"" + from + "\"; expected human, gpt or system");
    msgs.push_back({{"role", role}, {"content", e.at("value")}});
  }
  try {
    return chat_example(parse_chat_messages(msgs, "conversations"), 0, chat, train_on_inputs, "conversations");
  } catch (const std::runtime_error& err) {  // same indices; say the ShareGPT field names
    std::string w = err.what();
    for (auto [a, b] : {std::pair<std::string, std::string>{".content", ".value"}, {".role", ".from"}})
      for (size_t p = w.find(a); p != std::string::npos; p = w.find(a, p + b.size())) w.replace(p, a.size(), b);
    throw std::runtime_error(w);
  }
}

// {"instruction", "input", "output"} (+ optional "system") -> [system], user, assistant. The user turn is
// instruction + "\n\n" + input, as Alpaca-style trainers (axolotl's chat conversion, LLaMA-Factory) join them.
Example alpaca_example(const json& j, ChatRules& chat, bool train_on_inputs) {
  for (const char* k : {"instruction", "output"})
    if (!j.contains(k)) throw std::runtime_error(std::string("missing \"") + k + "\"");
  const std::string instruction = optional_string(j, "instruction");
  const std::string input = optional_string(j, "input");
  if (!j.at("output").is_string()) throw std::runtime_error("\"output\" must be a string");
  const std::string output = j.at("output").get<std::string>();
  const std::string system = optional_string(j, "system");
  if (instruction.empty() && input.empty()) throw std::runtime_error("\"instruction\" and \"input\" are both empty");
  json msgs = json::array();
  if (!system.empty()) msgs.push_back({{"role", "system"}, {"content", system}});
  const std::string user = input.empty() ? instruction : instruction.empty() ? input : instruction + "\n\n" + input;
  msgs.push_back({{"role", "user"}, {"content", user}});
  msgs.push_back({{"role", "assistant"}, {"content", output}});
  try {
    return chat_example(parse_chat_messages(msgs, "alpaca"), 0, chat, train_on_inputs, "alpaca");
  } catch (const std::runtime_error& err) {  // only the assistant turn can fail: name it as the line does
    std::string w = err.what();
    const size_t a = w.find("\"alpaca\"["), b = w.find(".content");
    if (a != std::string::npos && b != std::string::npos && b > a) w.replace(a, b + 8 - a, "\"output\"");
    throw std::runtime_error(w);
  }
}

}  // namespace wick::dataset_detail
