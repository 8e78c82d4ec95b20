// The application layer of a generation session, shared by `wick generate` / `wick chat` and wick::Model:
// names as people type them (folders or Hub ids in the local cache, api/hub_cache.h) to a loaded Session.
#pragma once
#include <memory>
#include <string>

#include "api/hub_cache.h"
#include "infer/session.h"

namespace wick {

struct SessionSpec {
  std::string model, revision;  // a folder or a Hub id (revision: with a Hub id)
  std::string adapter;          // a PEFT adapter folder or Hub id ("" = none)
  std::string device = "auto", dtype = "auto";
  std::string chat_template;    // "" = the folder's; "qwen2.5" / "qwen3" forces one
};

struct OpenedSession {
  std::unique_ptr<Session> session;
  ResolvedModel model, adapter;  // adapter.path "" = none
};

OpenedSession open_session(const SessionSpec& spec);

}  // namespace wick
