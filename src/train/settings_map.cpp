#include "train/settings_map.h"

namespace wick {

TrainOptions options_from_settings(const TrainSettings& s) {
  TrainOptions o;
  for_each_shared_train_field(s, o, [](const auto& from, auto& to) { to = from; });
  return o;
}

TrainSettings settings_from_options(const TrainOptions& o) {
  TrainSettings s;
  for_each_shared_train_field(s, o, [](auto& to, const auto& from) { to = from; });
  return s;
}

}  // namespace wick
