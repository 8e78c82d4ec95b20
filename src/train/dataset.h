// Training examples read from JSONL, one example a line, in one of six formats (detected per file from
// the first example's keys, or forced):
//  - text               {"text": "..."}                          loss on every token (+ eos)
//  - prompt-completion  {"prompt": "...", "completion": "..."}   loss on the completion (+ eos); or TRL's
//                       conversational form {"prompt": [messages], "completion": [messages]}: the chat
//                       template over prompt + completion, loss on the completion's assistant turns
//  - messages           {"messages": [{"role", "content"}, ...]} chat template; loss on the assistant turns
//                       (what follows "<|im_start|>assistant\n", through the closing <|im_end|>)
//  - sharegpt           {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}: messages with
//                       human -> user, gpt -> assistant
//  - alpaca             {"instruction", "input" (optional), "output"}: one user turn, instruction + "\n\n" +
//                       input (the instruction alone when input is empty or absent), and one assistant turn
//                       output; an optional "system" string becomes the system turn
//  - tokens             {"input_ids": [...], "labels": [...]}    labels optional (default input_ids)
// -100 in labels = not counted. train_on_inputs counts every token of prompt-completion and chat examples.
// Every line of a file must be in the file's format.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace wick {

class Tokenizer;
class ChatTemplate;

struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // same length as ids; -100 = not counted
};

enum class DatasetFormat { Auto, Text, PromptCompletion, Messages, Tokens, ShareGpt, Alpaca };

// "auto", "text", "prompt-completion", "messages", "sharegpt", "alpaca", "tokens" (the values of --format);
// wick::Error otherwise.
DatasetFormat parse_dataset_format(std::string_view name);
const char* dataset_format_name(DatasetFormat f);

struct Dataset {
  std::string path;
  DatasetFormat format = DatasetFormat::Auto;  // the file's format once loaded
  std::vector<Example> examples;
  int64_t truncated = 0;  // examples cut to max_seq_len
  int64_t skipped = 0;    // bad lines skipped (skip_bad_lines)
  int64_t counted_tokens() const;
};

struct DatasetOptions {
  DatasetFormat format = DatasetFormat::Auto;
  int64_t max_seq_len = 2048;  // longer examples are cut (and counted in Dataset::truncated); 0 = no limit
  bool skip_bad_lines = false;
  int64_t vocab_size = 0;  // ids must be in [0, vocab_size) when > 0 (the model's embedding rows)
  // Appended to text and prompt-completion examples (the messages format ends its turns with the
  // template's own <|im_end|>); -1 = nothing appended. default_eos_id() gives the model's.
  int32_t eos_id = -1;
  // Count every token (the prompt and the user/system turns too), not only the completion / assistant turns.
  bool train_on_inputs = false;
};

// Reads a JSONL dataset. The text formats need tok, messages also tmpl (ChatTemplate::render with
// add_generation_prompt=false). A malformed line is a wick::Error naming file:line and what is wrong (or
// skipped and counted with skip_bad_lines). An empty dataset, or one whose every label is masked, is an error.
Dataset load_dataset(const std::string& path, const DatasetOptions& opt, const Tokenizer* tok = nullptr,
                     const ChatTemplate* tmpl = nullptr);
// The tokens format only (load_dataset with format = Tokens).
Dataset load_pretokenized_jsonl(const std::string& path, const DatasetOptions& opt);

// One JSONL line -> an example (format Auto: from the line's keys). Throws std::runtime_error with the
// reason (callers add file:line); *detected (optional) receives the line's format.
Example parse_dataset_line(const std::string& line, DatasetFormat format, const DatasetOptions& opt,
                           const Tokenizer* tok, const ChatTemplate* tmpl, DatasetFormat* detected = nullptr);
// Parses one pre-tokenized JSON line (throws std::runtime_error with the reason; callers add file:line).
Example parse_pretokenized_line(const std::string& line, int64_t vocab_size);

// The eos appended to text examples: tokenizer_config.json's eos_token in model_dir, else the first eos
// of generation_config.json / config.json; -1 when none names a token of tok.
int32_t default_eos_id(const std::string& model_dir, const Tokenizer& tok, const ModelConfig& cfg);

// Truncates to max_seq_len; returns true when it cut anything.
bool truncate_example(Example& e, int64_t max_seq_len);
// Checks the finished dataset (non-empty, something counted).
void check_dataset(const Dataset& d);

// Moves a deterministic fraction of d's examples (chosen by seed; at least one, leaving at least one) into
// the returned evaluation set; both keep the file order. The two are disjoint and together are d.
Dataset split_eval(Dataset& d, double fraction, uint64_t seed);

}  // namespace wick
