#include "train/optimizer.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"

namespace wick {

AdamW::AdamW(std::vector<LoraParam> params, AdamWConfig cfg) : params_(std::move(params)), cfg_(cfg) {
  for (const LoraParam& p : params_) {
    m_.push_back(Tensor::zeros(p.value->shape(), DType::F32, p.value->device()));
    v_.push_back(Tensor::zeros(p.value->shape(), DType::F32, p.value->device()));
  }
}

void AdamW::PinnedDeleter::operator()(void* p) const { host_free_pinned(p); }

double AdamW::step(double lr, double max_grad_norm) {
  queue_step(lr, max_grad_norm);
  return finish_step();
}

void AdamW::queue_step(double lr, double max_grad_norm, const std::vector<Tensor>& extra_terms) {
  WICK_CHECK(!queued_, "AdamW::queue_step: the previous step was not finished");
  if (params_.empty()) {  // finish_step: norm 0, a step taken
    queued_ = true;
    return;
  }
  const Device dev = params_[0].value->device();
  if (!clip_.defined()) {
    clip_ = Tensor::empty({kClipStateFloats}, DType::F32, dev);
    clip_host_.reset(host_alloc_pinned(sizeof(ClipState)));
  }
  std::vector<Tensor> terms;
  for (const LoraParam& p : params_) terms.push_back(*p.grad);
  terms.insert(terms.end(), extra_terms.begin(), extra_terms.end());
  clip_state(terms, max_grad_norm, clip_);
  AdamWConfig c = cfg_;
  c.lr = lr;
  std::vector<AdamWTensors> all;
  for (size_t i = 0; i < params_.size(); i++) all.push_back({params_[i].value, params_[i].grad, &m_[i], &v_[i]});
  // The step number if this step is applied (a skipped one leaves steps_ as it was: finish_step).
  adamw_step_many(all, c, steps_ + 1, clip_);
  device_copy_async(clip_host_.get(), Device::cpu(), clip_.raw(), dev, sizeof(ClipState));
  queued_ = true;  // last: a queue_step that threw leaves none pending
}

double AdamW::finish_step() {
  WICK_CHECK(queued_, "AdamW::finish_step without queue_step");
  queued_ = false;
  if (params_.empty()) {
    steps_++;
    return 0.0;
  }
  device_synchronize(clip_.device());
  ClipState cs;
  std::memcpy(&cs, clip_host_.get(), sizeof cs);
  if (cs.skip == 0.0f) steps_++;  // else the caller stops or skips; nothing was updated
  return cs.norm;
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
