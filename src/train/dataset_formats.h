// Internal to the dataset loader: one parsed JSON line -> an Example, per format. Each throws
// std::runtime_error with what is wrong in the line; the loader adds file:line.
#pragma once
#include <nlohmann/json.hpp>

#include "train/dataset.h"

namespace wick::dataset_detail {

// The format a line's keys name; runtime_error when they name none or several.
DatasetFormat detect_format(const nlohmann::json& j);

Example text_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id);
Example prompt_completion_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id);
Example tokens_example(const nlohmann::json& j, int64_t vocab_size);
// dataset_chat.cpp: rendering, incremental masking and its verification.
Example messages_example(const nlohmann::json& j, const Tokenizer& tok, const ChatTemplate& tmpl);

// Every id in [0, vocab_size) when vocab_size > 0 (what = where the ids came from, for the message).
void check_vocab(const Example& e, int64_t vocab_size, const char* what);

}  // namespace wick::dataset_detail
