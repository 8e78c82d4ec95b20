// core/env.h: the one rule for WICK_* switches.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/env.h"
#include "core/error.h"

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

// A number: unset or empty gives the caller's default; a value outside the range or not wholly a number is an
// error that names the variable and the value.
TEST(Env, IntIsTheDefaultWhenUnsetTheNumberInRangeAndAnErrorOtherwise) {
  unsetenv(kName);
  EXPECT_FALSE(env_int(kName, 1, 100, "a count").has_value());
  setenv(kName, "", 1);
  EXPECT_FALSE(env_int(kName, 1, 100, "a count").has_value());
  for (const auto& [text, want] : {std::pair{"1", 1}, {"100", 100}, {"42", 42}, {"-1", -1}}) {
    setenv(kName, text, 1);
    const int64_t lo = want < 0 ? -1 : 1;
    EXPECT_EQ(env_int(kName, lo, 100, "a count"), want) << text;
  }
  for (const char* bad : {"0", "101", "-2", "12x", "x", " 5", "1.5", "99999999999999999999999"}) {
    setenv(kName, bad, 1);
    try {
      env_int(kName, 1, 100, "a count");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string(kName) + "=" + bad), std::string::npos) << msg;
      EXPECT_NE(msg.find("a count"), std::string::npos) << msg;
    }
  }
  unsetenv(kName);
}

TEST(Env, NumberTakesFractionsInRangeAndRefusesTheRest) {
  unsetenv(kName);
  EXPECT_FALSE(env_number(kName, 0.001, 1e9, "seconds").has_value());
  setenv(kName, "2.5", 1);
  EXPECT_DOUBLE_EQ(*env_number(kName, 0.001, 1e9, "seconds"), 2.5);
  setenv(kName, "600", 1);
  EXPECT_DOUBLE_EQ(*env_number(kName, 0.001, 1e9, "seconds"), 600.0);
  for (const char* bad : {"0", "-3", "nan", "inf", "5s", "1e10"}) {
    setenv(kName, bad, 1);
    EXPECT_THROW(env_number(kName, 0.001, 1e9, "seconds"), Error) << bad;
  }
  unsetenv(kName);
}

}  // namespace
}  // namespace wick::test
