// Two kinds of failure (docs/architecture.md):
//  - wick::Error: a user's mistake (bad file, bad config, shape mismatch, out of memory). Carries what went
//    wrong, where (file, tensor, field) and a hint; the CLI prints it as one line and exits non-zero.
//  - WICK_CHECK / WICK_CUDA_CHECK: a programmer's or CUDA fault; names the statement, file and line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace wick {

class Error : public std::runtime_error {
 public:
  Error(std::string what, std::string where = "", std::string hint = "");
  const std::string& what_msg() const { return what_; }
  const std::string& where() const { return where_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string what_, where_, hint_;
};

// Thrown by failed internal invariants (not a user's mistake, but still catchable by tests).
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace wick

#define WICK_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::ostringstream wick_check_os_;                                             \
      wick_check_os_ << "" __VA_ARGS__;                                              \
      ::wick::check_failed(#cond, __FILE__, __LINE__, wick_check_os_.str());         \
    }                                                                                \
  } while (0)
