#include "train/optimizer.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace wick {

AdamW::AdamW(std::vector<LoraParam> params, AdamWConfig cfg) : params_(std::move(params)), cfg_(cfg) {
  for (const LoraParam& p : params_) {
    m_.push_back(Tensor::zeros(p.value->shape(), DType::F32, p.value->device()));
    v_.push_back(Tensor::zeros(p.value->shape(), DType::F32, p.value->device()));
  }
}

double AdamW::step(double lr, double max_grad_norm) {
  std::vector<Tensor> grads;
  for (const LoraParam& p : params_) grads.push_back(*p.grad);
  float coef = 1.0f;
  const double norm = grad_norm(grads, max_grad_norm, &coef);
  if (!std::isfinite(norm)) return norm;  // the caller stops or skips; nothing updated
  steps_++;
  AdamWConfig c = cfg_;
  c.lr = lr;
  std::vector<AdamWTensors> all;
  for (size_t i = 0; i < params_.size(); i++) all.push_back({params_[i].value, params_[i].grad, &m_[i], &v_[i]});
  adamw_step_many(all, c, steps_, coef);
  return norm;
}

static bool all_finite(const Tensor& t) {
  const Tensor h = t.to(Device::cpu()).to(DType::F32);
  const float* p = h.data<float>();
  for (int64_t i = 0; i < h.numel(); i++)
    if (!std::isfinite(p[i])) return false;
  return true;
}

std::pair<std::string, int64_t> AdamW::first_nonfinite_grad() const {
  std::pair<std::string, int64_t> out{"", 0};
  for (const LoraParam& p : params_)
    if (!all_finite(*p.grad)) {
      if (out.second++ == 0) out.first = p.name;
    }
  return out;
}

bool AdamW::values_finite() const {
  for (const LoraParam& p : params_)
    if (!all_finite(*p.value)) return false;
  return true;
}

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); i++) {
    out.emplace_back(params_[i].name + ".exp_avg", m_[i].to(Device::cpu()));
    out.emplace_back(params_[i].name + ".exp_avg_sq", v_[i].to(Device::cpu()));
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& tensors, int64_t steps,
                       const std::string& where) {
  std::map<std::string, Tensor> by_name(tensors.begin(), tensors.end());
  for (size_t i = 0; i < params_.size(); i++) {
    for (int which = 0; which < 2; which++) {
      const std::string name = params_[i].name + (which ? ".exp_avg_sq" : ".exp_avg");
      auto it = by_name.find(name);
      if (it == by_name.end()) throw Error("optimizer state '" + name + "' is missing", where, "resume with the same LoRA settings");
      Tensor& dst = which ? v_[i] : m_[i];
      if (it->second.shape() != dst.shape() || it->second.dtype() != DType::F32)
        throw Error("optimizer state '" + name + "' is " + it->second.str() + ", expected f32" + shape_str(dst.shape()), where);
      dst.copy_from(it->second.to(dst.device()));
    }
  }
  steps_ = steps;
}

}  // namespace wick
