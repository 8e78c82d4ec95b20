// The LoRA linear path on the CPU (model/linear.h): groups vs one linear at a time, f32 bit for bit, bf16
// within its rounding; and attach's contiguous layout of a layer's adapters.
#include <gtest/gtest.h>

#include "common/linear_checks.h"
#include "lora/lora.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

LinearGroupSpec qkv() { return {}; }
LinearGroupSpec with(LinearGroupSpec s, void (*f)(LinearGroupSpec&)) {
  f(s);
  return s;
}

TEST(LinearLora, GroupF32IsOneLinearBitForBit) {
  check_linear_group_f32(qkv(), Device::cpu());
  check_linear_group_f32(with(qkv(), [](LinearGroupSpec& s) { s.accumulate = true; s.bias = false; }), Device::cpu());
  check_linear_group_f32(with(qkv(), [](LinearGroupSpec& s) { s.lora = {true, false, true}; }), Device::cpu());
  check_linear_group_f32(with(qkv(), [](LinearGroupSpec& s) { s.dropout = 0.25f; }), Device::cpu());
  check_linear_group_f32(with(qkv(), [](LinearGroupSpec& s) { s.outs = {24}; s.lora = {true}; }), Device::cpu());
}

TEST(LinearLora, GroupBf16) {
  check_linear_group_bf16(qkv(), Device::cpu());
  check_linear_group_bf16(with(qkv(), [](LinearGroupSpec& s) { s.accumulate = true; }), Device::cpu());
  check_linear_group_bf16(with(qkv(), [](LinearGroupSpec& s) { s.lora = {false, true, true}; s.bias = false; }),
                          Device::cpu());
  check_linear_group_bf16(with(qkv(), [](LinearGroupSpec& s) { s.dropout = 0.25f; }), Device::cpu());
  check_linear_group_bf16(with(qkv(), [](LinearGroupSpec& s) { s.outs = {56, 56}; s.lora = {true, true}; }),
                          Device::cpu());
  check_linear_group_bf16(with(qkv(), [](LinearGroupSpec& s) { s.outs = {24}; s.lora = {true}; }), Device::cpu());
}

// The inference form (nothing saved, forward only) against the one-linear path: on the CPU the same GEMMs
// (the fused low_rank_product runs on CUDA only; tests/cuda runs this check there).
TEST(LinearLora, GroupInference) {
  check_linear_group_inference(qkv(), Device::cpu(), DType::F32);
  check_linear_group_inference(with(qkv(), [](LinearGroupSpec& s) { s.N = 1; s.lora = {true, false, true}; }),
                               Device::cpu(), DType::F32);
}

// attach lays q, k, v (and gate, up) out as one block: the A's one after the other, then the B's; the
// gradients likewise; the values are what attach drew.
TEST(LinearLora, AttachPacksGroups) {
  auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 5);
  io::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*m, lc, 6);
  alloc_lora_grads(*m);
  for (const auto& g : lora_groups(*m)) {
    const float* a = g[0]->lora.A.data<float>();
    const float* da = g[0]->lora.dA.data<float>();
    for (Linear* l : g) {
      EXPECT_EQ(l->lora.A.data<float>(), a) << l->name;
      EXPECT_EQ(l->lora.dA.data<float>(), da) << l->name;
      a += l->lora.A.numel();
      da += l->lora.dA.numel();
    }
    EXPECT_EQ(g.back()->lora.B.data<float>() + g.back()->lora.B.numel(),
              g[0]->lora.pack32.data<float>() + g[0]->lora.pack32.numel());
  }
  // Same values as without packing: attach's draw is deterministic in its seed.
  auto m2 = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 5);
  attach_new_adapters(*m2, lc, 6);
  const auto e1 = export_adapters(*m), e2 = export_adapters(*m2);
  ASSERT_EQ(e1.size(), 14u);
  for (const auto& [name, p] : e1) {
    EXPECT_EQ(p.A.to_f32_vector(), e2.at(name).A.to_f32_vector()) << name;
    EXPECT_EQ(p.B.to_f32_vector(), e2.at(name).B.to_f32_vector()) << name;
  }
}

}  // namespace
}  // namespace wick::test
