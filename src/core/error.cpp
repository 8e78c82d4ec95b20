#include "core/error.h"

namespace wick {

static std::string compose(const std::string& what, const std::string& where, const std::string& hint) {
  std::string s = where.empty() ? what : where + ": " + what;
  if (!hint.empty()) s += " (hint: " + hint + ")";
  return s;
}

Error::Error(std::string what, std::string where, std::string hint)
    : std::runtime_error(compose(what, where, hint)),
      what_(std::move(what)),
      where_(std::move(where)),
      hint_(std::move(hint)) {}

void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::string s = std::string("internal check failed: ") + expr + " at " + file + ":" + std::to_string(line);
  if (!msg.empty()) s += ": " + msg;
  throw InternalError(s);
}

}  // namespace wick
