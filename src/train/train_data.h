// The data of a training run: the training file (and an evaluation file or split) read with the model
// folder's tokenizer and chat template, before the weights load, so that a bad line fails fast. Shared by
// `wick train` and the public API.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "train/dataset.h"

namespace wick {

struct TrainDataOptions {
  std::string data, format = "auto", chat_template, eval_file;
  double eval_split = 0;      // hold out this fraction of data (0 = none); excludes eval_file
  int64_t max_seq_len = 2048;
  bool skip_bad = false, packing = false;
  bool train_on_inputs = false;  // loss on every token of prompt-completion and chat examples
};

struct TrainData {
  Dataset train;
  std::optional<Dataset> eval;
};

// log (may be empty) receives one line per dataset read.
TrainData load_train_data(const TrainDataOptions& f, const std::string& model_dir, uint64_t seed,
                          const std::function<void(const std::string&)>& log);

}  // namespace wick
