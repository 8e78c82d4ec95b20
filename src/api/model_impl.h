// The state behind wick::Model (include/wick/wick.h): a Session plus the adapter folder attached.
#pragma once
#include <memory>
#include <string>

#include "infer/session.h"
#include "io/peft_adapter.h"
#include "wick/wick.h"

namespace wick {

struct Model::Impl {
  std::unique_ptr<Session> session;
  std::string adapter;  // "" = none
  io::LoraConfig lora;  // the attached adapter's config
};

}  // namespace wick
