// TOML files of training options (a --config file, the run.toml of an output folder): keys are the option
// table's row names (train/train_options.h).
#pragma once
#include <string>
#include <vector>

#include "wick/wick.h"

namespace wick {

// Overlays the keys of a TOML file (row names or aliases, at the top and under a [train] table) onto s;
// wick::Error names the file and key. keys_set (optional) receives the row names it set. (train_config_file.cpp)
void apply_train_toml(TrainSettings& s, const std::string& path, std::vector<std::string>* keys_set = nullptr);

}  // namespace wick
