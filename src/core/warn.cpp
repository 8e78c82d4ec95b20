#include "core/warn.h"

#include <cstdio>
#include <mutex>

namespace wick {

namespace {
std::mutex g_mu;
std::function<void(const std::string&)> g_sink;
}  // namespace

void warn(const std::string& msg) {
  std::function<void(const std::string&)> sink;
  {
    std::lock_guard<std::mutex> l(g_mu);
    sink = g_sink;
  }
  if (sink) sink(msg);
  else std::fprintf(stderr, "wick: warning: %s\n", msg.c_str());
}

std::function<void(const std::string&)> set_warning_sink(std::function<void(const std::string&)> sink) {
  std::lock_guard<std::mutex> l(g_mu);
  auto old = std::move(g_sink);
  g_sink = std::move(sink);
  return old;
}

}  // namespace wick
