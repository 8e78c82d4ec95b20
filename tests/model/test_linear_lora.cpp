// The LoRA linear path on the CPU (model/linear.h): groups vs one linear at a time, f32 bit for bit, bf16
// within its rounding; and attach's contiguous layout of a layer's adapters.
#include <gtest/gtest.h>

#include "common/linear_checks.h"
#include "common/testutil.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

LinearGroupSpec qkv() { return {}; }
LinearGroupSpec with(LinearGroupSpec s, void (*f)(LinearGroupSpec&)) {
  f(s);
  return s;
}

// A tiny random model with r 4 adapters on all seven projections (attach's packed groups) and their gradients.
std::unique_ptr<CausalLM> tiny_model_with_adapters() {
  auto m = CausalLM::random(tiny_config(61), Device::cpu(), DType::F32, 5);
  io::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*m, lc, 6);
  alloc_lora_grads(*m);
  return m;
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

// Folded groups (training's q k v and gate up: one GEMM a member over [x | u]) against the unfolded path, with
// members without adapters, dropout, accumulation, one member alone; f32 and bf16.
TEST(LinearLora, FoldedGroup) {
  for (DType dt : {DType::F32, DType::BF16}) {
    check_linear_group_folded(qkv(), Device::cpu(), dt);
    check_linear_group_folded(with(qkv(), [](LinearGroupSpec& s) { s.accumulate = true; s.bias = false; }), Device::cpu(), dt);
    check_linear_group_folded(with(qkv(), [](LinearGroupSpec& s) { s.lora = {false, true, true}; }), Device::cpu(), dt);
    check_linear_group_folded(with(qkv(), [](LinearGroupSpec& s) { s.dropout = 0.25f; }), Device::cpu(), dt);
    check_linear_group_folded(with(qkv(), [](LinearGroupSpec& s) { s.outs = {56, 56}; s.lora = {true, true}; s.r = 8; }),
                              Device::cpu(), dt);
    check_linear_group_folded(with(qkv(), [](LinearGroupSpec& s) { s.outs = {24}; s.lora = {true}; }), Device::cpu(), dt);
  }
}

// Training with the fold on (the CPU's default is off): the norm-fed groups (q k v, gate up) run folded - each
// adapted member has its folded weight - and the gradients are the unfolded ones up to summation order; o and
// down, and every group under checkpointing, stay unfolded.
TEST(LinearLora, TrainingFoldsTheNormFedGroups) {
  const auto grads_of = [](bool fold, bool checkpointing, bool* folded_seen) {
    auto m = tiny_model_with_adapters();
    Rng rng(7);
    TrainBatch b;
    std::vector<int32_t> ids(2 * 9), tg(2 * 9);
    for (size_t i = 0; i < ids.size(); i++) ids[i] = static_cast<int32_t>(rng.below(61)), tg[i] = static_cast<int32_t>(rng.below(61));
    b.ids = Tensor::from_i32(ids, {2, 9});
    b.targets = Tensor::from_i32(tg, {2, 9});
    LossAndGrads g(*m);
    g.set_adapter_fold(fold);
    g.set_checkpointing(checkpointing);
    g.step(b, 1.0f / 18);
    *folded_seen = false;
    for (Linear* l : m->all_linears()) {
      const bool norm_fed = l->name.find("down_proj") == std::string::npos && l->name.find("o_proj") == std::string::npos;
      if (l->lora.folded.defined()) *folded_seen = true;
      EXPECT_EQ(l->lora.folded.defined(), fold && !checkpointing && norm_fed) << l->name;
    }
    std::vector<Tensor> out;
    for (const LoraParam& p : lora_params(*m)) out.push_back(p.grad->clone());
    return out;
  };
  bool seen = false;
  const auto plain = grads_of(false, false, &seen);
  EXPECT_FALSE(seen);
  const auto folded = grads_of(true, false, &seen);
  EXPECT_TRUE(seen);
  ASSERT_EQ(plain.size(), folded.size());
  for (size_t i = 0; i < plain.size(); i++) EXPECT_LE(max_abs_rel(folded[i], plain[i]), 1e-5) << "gradient " << i;
  const auto ckpt = grads_of(true, true, &seen);
  EXPECT_FALSE(seen);
  for (size_t i = 0; i < plain.size(); i++) EXPECT_EQ(max_abs_diff(ckpt[i], plain[i]), 0.0) << "gradient " << i;
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
  auto m = tiny_model_with_adapters();
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
  auto m2 = tiny_model_with_adapters();
  const auto e1 = export_adapters(*m), e2 = export_adapters(*m2);
  ASSERT_EQ(e1.size(), 14u);
  for (const auto& [name, p] : e1) {
    EXPECT_EQ(p.A.to_f32_vector(), e2.at(name).A.to_f32_vector()) << name;
    EXPECT_EQ(p.B.to_f32_vector(), e2.at(name).B.to_f32_vector()) << name;
  }
}

}  // namespace
}  // namespace wick::test
