// Warnings: what wick does that a user should know of but is no error (e.g. adapter tensors no target
// names, checkpoint tensors the architecture does not use). By default one line on stderr,
// "wick: warning: ..."; a sink (tests, an embedding program) takes them instead.
#pragma once
#include <functional>
#include <string>

namespace wick {

void warn(const std::string& msg);
// nullptr restores stderr. Returns the previous sink.
std::function<void(const std::string&)> set_warning_sink(std::function<void(const std::string&)> sink);

}  // namespace wick
