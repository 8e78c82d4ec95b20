#include "common/model_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "lora/lora.h"
#include "model/causal_lm.h"
#include "model/loss_and_grads.h"
#include "ops/cross_entropy.h"
#include "train/optimizer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wick::test {

Tensor Fixture::get(const std::string& name) const {
  auto it = ref.find(name);
  if (it == ref.end()) throw std::runtime_error(dir + ": reference tensor '" + name + "' missing");
  return it->second;
}

void randomize_lora(CausalLM& m, Rng& rng, float bound) {
  for (const LoraParam& p : lora_params(m)) {
    std::vector<float> v = p.value->to_f32_vector();
    for (float& x : v) x = rng.uniform(-bound, bound);
    p.value->copy_from(Tensor::from_f32(v, p.value->shape()));
  }
}

Fixture load_fixture(const std::string& dir) {
  Fixture f;
  f.dir = dir;
  auto file = io::SafeTensorsFile::open((fs::path(dir) / "reference.safetensors").string());
  for (const auto& info : file->tensors()) f.ref[info.name] = file->get(info.name).clone();
  f.reference_json = io::read_file((fs::path(dir) / "reference.json").string());
  return f;
}

Tol with_reference_bf16_noise(const Tol& base, const std::string& dir, double factor, const std::string& check) {
  const fs::path p = fs::path(dir) / "bf16_noise.json";
  if (!fs::exists(p)) return base;
  // "noise": PEFT's default bf16 recipe (adapter in f32); "noise_autocast" (where measured): the adapter in bf16 as
  // torch.autocast runs it, which is how wick's bf16 path computes it (model/linear.h). The larger of the two.
  const nlohmann::json doc = nlohmann::json::parse(io::read_file(p.string()));
  const nlohmann::json& n = doc.at("noise");
  const nlohmann::json* na = doc.contains("noise_autocast") ? &doc.at("noise_autocast") : nullptr;
  auto raise = [&](double& bound, const char* key) {
    double noise = n.at(key).get<double>();
    if (na) noise = std::max(noise, na->at(key).get<double>());
    // A bound this wide would check nothing: such a figure is a broken measurement, not rounding noise.
    if (std::string(key) != "weights_abs_lr" && noise > 0.25)
      ADD_FAILURE() << p << ": " << key << " = " << noise << " is not bf16 rounding noise (over 25%); remeasure";
    bound = std::max(bound, factor * noise);
  };
  Tol t = base;
  if (t.grad_norm < 0) t.grad_norm = 10 * t.loss;
  if (t.loss_after < 0) t.loss_after = 10 * t.loss;
  if (check == "forward") {
    raise(t.logits, "logits");
  } else if (check == "generation") {
    raise(t.logits, "gen_logits");
  } else if (check == "lora_logits") {
    raise(t.logits, "lora_logits");
  } else if (check == "grads") {
    raise(t.loss, "loss0");
    raise(t.grad, "grad");
  } else if (check == "trace") {
    raise(t.loss, "loss");
    raise(t.grad_norm, "grad_norm");
    raise(t.loss_after, "loss_after");
    raise(t.weights, "weights");
    raise(t.weights_abs_lr, "weights_abs_lr");
  } else {
    ADD_FAILURE() << "with_reference_bf16_noise: unknown check " << check;
  }
  return t;
}

std::vector<std::string> model_fixture_dirs() {
  // Every family's folder (<family>-tiny-*): whatever holds a checkpoint and a reference.
  std::vector<std::string> out;
  for (const std::string& d : fixture_dirs("", "reference.safetensors"))
    if (fs::exists(fs::path(d) / "reference.safetensors") && fs::exists(fs::path(d) / "config.json")) out.push_back(d);
  return out;
}

namespace {

Tensor ids_i32(const Tensor& t) { return t.to(DType::I32); }

// max |a - b| / max |b|, printed on failure with the fixture and the name.
void expect_close(const Tensor& got, const Tensor& ref, double tol, const std::string& what) {
  ASSERT_EQ(shape_str(got.shape()), shape_str(ref.shape())) << what;
  const double e = max_abs_rel(got, ref);
  std::printf("[measured] %s: max|diff|/max|ref| %.3g (tol %.3g)\n", what.c_str(), e, tol);
  EXPECT_LE(e, tol) << what << ": max|diff|/max|ref| = " << e << " (max abs diff " << max_abs_diff(got, ref) << ")";
}

// Targets for the model: labels shifted left by one, -100 at the end of each row.
Tensor shifted_targets(const Tensor& labels) {
  const int64_t B = labels.dim(0), T = labels.dim(1);
  std::vector<int64_t> l = labels.to_i64_vector();
  std::vector<int32_t> tg(B * T, kIgnoreIndex);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < T; t++) tg[b * T + t] = static_cast<int32_t>(l[b * T + t + 1]);
  return Tensor::from_i32(tg, {B, T});
}

std::string grad_ref_name(const std::string& peft_param) {
  // base_model.model.X.lora_A.weight -> grad.base_model.model.X.lora_A.default.weight
  std::string n = peft_param;
  const size_t at = n.rfind(".weight");
  return "grad." + n.substr(0, at) + ".default.weight";
}

}  // namespace

void check_forward(const Fixture& f, Device dev, DType dt, const Tol& tol) {
  auto m = CausalLM::load(f.dir, dev, dt);
  Tensor ids = ids_i32(f.get("input_ids"));
  Tensor logits = m->forward(ids, nullptr);
  expect_close(logits, f.get("logits"), tol.logits, f.dir + " logits");
  Tensor hidden = m->forward_hidden(ids, nullptr);
  expect_close(hidden, f.get("final_hidden"), tol.logits, f.dir + " final_hidden");
}

void check_generation(const Fixture& f, Device dev, DType dt, const Tol& tol, bool exact_ids) {
  auto m = CausalLM::load(f.dir, dev, dt);
  Tensor prompt = ids_i32(f.get("gen_prompt"));
  const std::vector<int64_t> want = f.get("gen_ids").to_i64_vector();
  Tensor ref_logits = f.get("gen_logits");  // [1, steps, V]
  const int64_t steps = ref_logits.dim(1), V = ref_logits.dim(2), P = prompt.dim(1);
  KVCache cache(*m, 1, P + steps);
  Tensor in = prompt;
  std::vector<int64_t> got(want.begin(), want.begin() + P);
  for (int64_t s = 0; s < steps; s++) {
    Tensor lg = m->forward(in, &cache, true).to(Device::cpu()).view({V});
    Tensor ref = ref_logits.view({steps, V}).narrow0(s, 1).view({V});
    expect_close(lg, ref, tol.logits, f.dir + " gen_logits step " + std::to_string(s));
    const float* p = lg.data<float>();
    const int64_t next = std::max_element(p, p + V) - p;
    got.push_back(next);
    // Feed the reference token so that one early mismatch does not cascade.
    in = Tensor::from_i32({static_cast<int32_t>(want[P + s])}, {1, 1});
  }
  if (exact_ids) EXPECT_EQ(got, want) << f.dir << " greedy ids";
}

void check_lora_logits(const Fixture& f, Device dev, DType dt, const Tol& tol) {
  auto m = CausalLM::load(f.dir, dev, dt);
  const std::string ad = (fs::path(f.dir) / "adapter_init").string();
  attach_adapters(*m, io::load_peft_adapter(ad), ad);
  Tensor logits = m->forward(ids_i32(f.get("input_ids")), nullptr);
  expect_close(logits, f.get("lora_logits"), tol.logits, f.dir + " lora_logits");
}

void check_merged_logits(const Fixture& f, Device dev, DType dt, const Tol& tol) {
  auto m = CausalLM::load(f.dir, dev, dt);
  const std::string ad = (fs::path(f.dir) / "adapter_trained").string();
  attach_adapters(*m, io::load_peft_adapter(ad), ad);
  merge_adapters(*m);
  for (Linear* l : m->all_linears()) ASSERT_FALSE(l->lora.active());
  Tensor logits = m->forward(ids_i32(f.get("input_ids")), nullptr);
  expect_close(logits, f.get("merged_logits"), tol.logits, f.dir + " merged_logits");
}

void check_grads(const Fixture& f, Device dev, DType dt, const Tol& tol, std::optional<bool> adapter_fold) {
  auto m = CausalLM::load(f.dir, dev, dt);
  const std::string ad = (fs::path(f.dir) / "adapter_init").string();
  attach_adapters(*m, io::load_peft_adapter(ad), ad);
  alloc_lora_grads(*m);
  TrainBatch b;
  b.ids = ids_i32(f.get("train_input_ids"));
  b.targets = shifted_targets(f.get("train_labels"));
  LossAndGrads g(*m);
  if (adapter_fold) g.set_adapter_fold(*adapter_fold);
  const int64_t n = b.counted();
  const LossSum loss = g.step(b, 1.0f / static_cast<float>(n));
  const double loss0 = json::parse(f.reference_json).at("loss0").get<double>();
  EXPECT_NEAR(loss.mean(), loss0, tol.loss * std::fabs(loss0)) << f.dir << " loss0";
  int checked = 0;
  for (const LoraParam& p : lora_params(*m)) {
    expect_close(*p.grad, f.get(grad_ref_name(p.name)), tol.grad, f.dir + " " + p.name);
    checked++;
  }
  EXPECT_GT(checked, 0);
}

void check_training_trace(const Fixture& f, Device dev, DType dt, const Tol& tol, std::optional<bool> adapter_fold) {
  const json ref = json::parse(f.reference_json);
  const json& tr = ref.at("train");
  auto m = CausalLM::load(f.dir, dev, dt);
  const std::string ad = (fs::path(f.dir) / "adapter_init").string();
  attach_adapters(*m, io::load_peft_adapter(ad), ad);
  alloc_lora_grads(*m);
  AdamWConfig c;
  c.lr = tr.at("lr").get<double>();
  c.beta1 = tr.at("betas")[0].get<double>();
  c.beta2 = tr.at("betas")[1].get<double>();
  c.eps = tr.at("eps").get<double>();
  c.weight_decay = tr.at("weight_decay").get<double>();
  AdamW opt(lora_params(*m), c);
  TrainBatch b;
  b.ids = ids_i32(f.get("train_input_ids"));
  b.targets = shifted_targets(f.get("train_labels"));
  LossAndGrads g(*m);
  if (adapter_fold) g.set_adapter_fold(*adapter_fold);
  const int64_t steps = tr.at("steps").get<int64_t>();
  for (int64_t s = 0; s < steps; s++) {
    zero_lora_grads(*m);
    const LossSum loss = g.step(b, 1.0f / static_cast<float>(b.counted()));
    const double want = ref.at("losses")[s].get<double>();
    EXPECT_NEAR(loss.mean(), want, tol.loss * std::fabs(want)) << f.dir << " loss at step " << s;
    std::printf("[measured] %s loss step %lld: rel %.3g\n", f.dir.c_str(), static_cast<long long>(s), std::fabs(loss.mean() - want) / want);
    const double norm = opt.step(c.lr, tr.at("max_grad_norm").get<double>());
    const double want_norm = ref.at("grad_norms_before_clip")[s].get<double>();
    std::printf("[measured] %s grad norm step %lld: rel %.3g\n", f.dir.c_str(), static_cast<long long>(s), std::fabs(norm - want_norm) / want_norm);
    EXPECT_NEAR(norm, want_norm, (tol.grad_norm < 0 ? tol.loss * 10 : tol.grad_norm) * want_norm) << f.dir << " grad norm at step " << s;
  }
  const LossSum after = g.eval(b);
  const double want_after = ref.at("loss_after").get<double>();
  EXPECT_NEAR(after.mean(), want_after, (tol.loss_after < 0 ? tol.loss * 10 : tol.loss_after) * want_after) << f.dir << " loss_after";
  const io::AdapterFiles trained = io::load_peft_adapter((fs::path(f.dir) / "adapter_trained").string());
  const auto got = export_adapters(*m);
  ASSERT_EQ(got.size(), trained.modules.size());
  // Trained weights. AdamW divides each element's update by its own gradient scale, so an element whose
  // gradient is near zero (f32 cancellation: 1e-6 of the tensor's max, with 10-20% relative rounding error
  // in torch and in wick alike, in different summation orders) still moves by ~lr per step in a direction set
  // by that noise. So: the tensor as a whole within tol.weights (L2-normalised), and every element within
  // tol.weights_abs_lr * lr (absolute; 0.1 in f32) - a wrong gradient, decay or bias correction moves
  // elements by ~lr per step.
  const double lr = tr.at("lr").get<double>();
  auto check_w = [&](const Tensor& g, const Tensor& r, const std::string& what) {
    const double e = rel_err(g, r), mx = max_abs_diff(g, r);
    std::printf("[measured] %s: ||diff||/||ref|| %.3g, max abs diff %.3g = %.2f lr\n", what.c_str(), e, mx, mx / lr);
    EXPECT_LE(e, tol.weights) << what << ": ||diff||/||ref|| = " << e;
    EXPECT_LE(mx, tol.weights_abs_lr * lr) << what << ": max abs diff " << mx << " (max|diff|/max|ref| " << max_abs_rel(g, r) << ")";
  };
  for (const auto& [mod, pair] : trained.modules) {
    auto it = got.find(mod);
    ASSERT_NE(it, got.end()) << mod;
    check_w(it->second.A, pair.A, f.dir + " trained " + mod + ".lora_A");
    check_w(it->second.B, pair.B, f.dir + " trained " + mod + ".lora_B");
  }
}

}  // namespace wick::test
