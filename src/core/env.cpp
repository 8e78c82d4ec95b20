#include "core/env.h"

#include <cstdlib>
#include <cstring>

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

}  // namespace wick
