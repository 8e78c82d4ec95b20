#include "api/session_setup.h"

namespace wick {

OpenedSession open_session(const SessionSpec& spec) {
  OpenedSession o;
  o.model = resolve_model(spec.model, spec.revision, "config.json", "--model");
  if (!spec.adapter.empty()) o.adapter = resolve_model(spec.adapter, "", "adapter_config.json", "--adapter");
  SessionOptions so;
  so.model_dir = o.model.path;
  so.adapter_dir = o.adapter.path;
  so.device = spec.device;
  so.dtype = spec.dtype;
  so.chat_template = parse_chat_template_flag(spec.chat_template);
  o.session = std::make_unique<Session>(so);
  return o;
}

}  // namespace wick
