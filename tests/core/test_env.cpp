// core/env.h: the one rule for WICK_* switches.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/env.h"

namespace wick::test {
namespace {

constexpr const char* kName = "WICK_TEST_ENV_SWITCH";

TEST(Env, FlagIsOnWhenSetNonEmptyAndNotZero) {
  unsetenv(kName);
  EXPECT_FALSE(env_flag(kName));
  for (const char* off : {"", "0"}) {
    setenv(kName, off, 1);
    EXPECT_FALSE(env_flag(kName)) << "'" << off << "'";
  }
  for (const char* on : {"1", "yes", "00"}) {
    setenv(kName, on, 1);
    EXPECT_TRUE(env_flag(kName)) << on;
  }
  unsetenv(kName);
}

TEST(Env, DefaultOnIsOffOnlyWhenZero) {
  unsetenv(kName);
  EXPECT_TRUE(env_default_on(kName));
  for (const char* on : {"", "1", "off", "00"}) {
    setenv(kName, on, 1);
    EXPECT_TRUE(env_default_on(kName)) << "'" << on << "'";
  }
  setenv(kName, "0", 1);
  EXPECT_FALSE(env_default_on(kName));
  unsetenv(kName);
}

}  // namespace
}  // namespace wick::test
