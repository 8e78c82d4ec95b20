#include "core/env.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "core/error.h"

namespace wick {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

bool env_default_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

std::optional<bool> env_override(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::strcmp(v, "0") != 0;
}

namespace {
[[noreturn]] void bad_number(const char* name, const char* value, const char* what, const std::string& range) {
  std::ostringstream os;
  os << name << "=" << value << ": expected " << what << " from " << range;
  throw Error(os.str(), "", std::string("unset ") + name + " for wick's default");
}
}  // namespace

std::optional<int64_t> env_int(const char* name, int64_t lo, int64_t hi, const char* what) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || std::isspace(static_cast<unsigned char>(*v)) || n < lo || n > hi)
    bad_number(name, v, what, std::to_string(lo) + " to " + std::to_string(hi));
  return static_cast<int64_t>(n);
}

std::optional<double> env_number(const char* name, double lo, double hi, const char* what) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v, &end);
  if (errno != 0 || end == v || *end != '\0' || std::isspace(static_cast<unsigned char>(*v)) || !std::isfinite(x) ||
      x < lo || x > hi) {
    std::ostringstream range;
    range << lo << " to " << hi;
    bad_number(name, v, what, range.str());
  }
  return x;
}

}  // namespace wick
