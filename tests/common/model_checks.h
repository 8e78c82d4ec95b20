// Fixture checks of the model (every family), LoRA and training against transformers + PEFT references, shared by
// the CPU tests and the CUDA tests (same checks, another device/dtype, other tolerances).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace wick {
class CausalLM;
class Rng;
}  // namespace wick

namespace wick::test {

// Every LoRA parameter of m (A and B) to U(-bound, bound): B != 0, so the adapters reach every gradient.
void randomize_lora(CausalLM& m, Rng& rng, float bound);

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
  double grad_norm = -1;   // the trace's grad norms, relative (< 0: 10 x loss)
  double loss_after = -1;  // the loss after the trace, relative (< 0: 10 x loss)
};

// base, with the bounds of one check raised to factor x what transformers + PEFT themselves deviate from the
// f32 reference in that check when run in bf16, where the fixture holds the measurement (bf16_noise.json, by
// scripts/bf16_noise.py): bf16 rounding moves some models' results more than others (Gemma's four norms per
// layer, its embedding scale), and an engine is held to the reference implementation's own bf16 behaviour.
// check: "forward", "generation", "lora_logits", "grads" or "trace".
Tol with_reference_bf16_noise(const Tol& base, const std::string& dir, double factor, const std::string& check);

void check_forward(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_generation(const Fixture& f, Device dev, DType dt, const Tol& tol, bool exact_ids);
void check_lora_logits(const Fixture& f, Device dev, DType dt, const Tol& tol);
void check_merged_logits(const Fixture& f, Device dev, DType dt, const Tol& tol);
// adapter_fold: LossAndGrads::set_adapter_fold (unset: the device's default, adapter_fold_default).
void check_grads(const Fixture& f, Device dev, DType dt, const Tol& tol, std::optional<bool> adapter_fold = {});
void check_training_trace(const Fixture& f, Device dev, DType dt, const Tol& tol, std::optional<bool> adapter_fold = {});

}  // namespace wick::test
