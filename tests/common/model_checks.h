// Fixture checks of the model (every family), LoRA and training against transformers + PEFT references, shared by
// the CPU tests and the CUDA tests (same checks, another device/dtype, other tolerances).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace wick::test {

struct Fixture {
  std::string dir;
  std::map<std::string, Tensor> ref;  // reference.safetensors, host tensors
  std::string reference_json;         // reference.json text
  Tensor get(const std::string& name) const;
};
Fixture load_fixture(const std::string& dir);
std::vector<std::string> model_fixture_dirs();  // tests/fixtures/<family>-tiny-* + WICK_EXTRA_FIXTURES

// Tolerances: max |a - b| / max |ref| for logits-like tensors; losses relative.
struct Tol {
  double logits = 1e-4;   // logits, hidden (normalised by max |ref|)
  double loss = 1e-5;     // relative
  double grad = 1e-4;     // max abs diff / max |ref grad| per tensor
  double weights = 1e-4;  // trained adapter tensors, ||diff|| / ||ref||
  double weights_abs_lr = 0.1;  // and every element within this many learning rates (absolute)
};

void check_forward(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_generation(const Fixture& f, Device dev, DType dt, const Tol& tol, bool exact_ids);
void check_lora_logits(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_merged_logits(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_grads(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_training_trace(const Fixture& f, Device dev, DType dt, const Tol& tol);

}  // namespace wick::test
