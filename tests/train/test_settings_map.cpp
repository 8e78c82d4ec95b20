// train/settings_map.h: the one list of fields TrainSettings and TrainOptions share, used both ways.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "train/settings_map.h"

namespace wick {
namespace {

// A random value of each shared field's type, different from the default.
struct Randomize {
  Rng& rng;
  template <class A, class B>
  void operator()(A& s_field, const B&) const { set(s_field); }
  void set(std::string& v) const { v = "s" + std::to_string(rng.next_u32()); }
  void set(std::vector<std::string>& v) const { v = {"m" + std::to_string(rng.next_u32()), "n" + std::to_string(rng.next_u32())}; }
  void set(bool& v) const { v = !v; }
  void set(double& v) const { v = v + 1.0 + rng.uniform(); }
  void set(int64_t& v) const { v = v + 1 + rng.next_u32() % 1000; }
  void set(uint64_t& v) const { v = v + 1 + rng.next_u64() % 1000; }
};

TEST(SettingsMap, EverySharedFieldCrossesBothWays) {
  Rng rng(2024);
  TrainSettings s;
  TrainOptions unused;
  for_each_shared_train_field(s, unused, Randomize{rng});
  const TrainOptions o = options_from_settings(s);
  int pairs = 0, equal = 0;
  for_each_shared_train_field(s, o, [&](const auto& a, const auto& b) {
    pairs++;
    if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::decay_t<decltype(b)>>) equal += a == b;
  });
  EXPECT_EQ(pairs, 29);
  EXPECT_EQ(equal, pairs) << "every shared field of the settings reaches the options unchanged";
  EXPECT_EQ(o.lora.r, s.r);
  EXPECT_EQ(o.lora.target_modules, s.targets);
  EXPECT_EQ(o.lora.use_rslora, s.rslora);

  const TrainSettings back = settings_from_options(o);
  int same = 0;
  for_each_shared_train_field(back, o, [&](const auto& a, const auto& b) { same += a == b; });
  EXPECT_EQ(same, pairs) << "and comes back";  // back == o field by field, and o == s above
  // What the options do not carry keeps its default.
  EXPECT_EQ(back.data, TrainSettings{}.data);
  EXPECT_EQ(back.resume, TrainSettings{}.resume);
  EXPECT_EQ(back.device, TrainSettings{}.device);
  // resume, keep_checkpoints and pad_id are the Trainer's (not in the list).
  EXPECT_EQ(o.resume, TrainOptions{}.resume);
  EXPECT_EQ(o.keep_checkpoints, TrainOptions{}.keep_checkpoints);
}

}  // namespace
}  // namespace wick
