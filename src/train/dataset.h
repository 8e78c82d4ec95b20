// Training examples read from JSONL. This file knows the pre-tokenized format
// {"input_ids": [...], "labels": [...]} (labels optional: default input_ids; -100 = not counted).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wick {

struct Example {
  std::vector<int32_t> ids;
  std::vector<int32_t> labels;  // same length as ids; -100 = not counted
};

struct Dataset {
  std::string path;
  std::vector<Example> examples;
  int64_t truncated = 0;  // examples cut to max_seq_len
  int64_t skipped = 0;    // bad lines skipped (skip_bad_lines)
  int64_t counted_tokens() const;
};

struct DatasetOptions {
  int64_t max_seq_len = 2048;
  bool skip_bad_lines = false;
  int64_t vocab_size = 0;  // ids must be in [0, vocab_size) when > 0
};

// A malformed line is a wick::Error naming the file, the line number and what is wrong (or skipped and
// counted with skip_bad_lines). An empty dataset, or one whose every label is masked, is an error.
Dataset load_pretokenized_jsonl(const std::string& path, const DatasetOptions& opt);
// Parses one pre-tokenized JSON line (throws std::runtime_error with the reason; callers add file:line).
Example parse_pretokenized_line(const std::string& line, int64_t vocab_size);
// Truncates to max_seq_len; returns true when it cut anything.
bool truncate_example(Example& e, int64_t max_seq_len);
// Checks the finished dataset (non-empty, something counted).
void check_dataset(const Dataset& d);

}  // namespace wick
