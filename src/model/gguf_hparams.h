// A model's architecture as a GGUF header records it (io/gguf_export.h's GgufModelHparams): io writes the
// file format and knows no ModelConfig; this is where the two meet.
#pragma once
#include "io/gguf_export.h"
#include "model/config.h"

namespace wick {

io::GgufModelHparams gguf_hparams(const ModelConfig& c);

}  // namespace wick
