#include "ops/selfcheck.h"

#include <exception>

#include "core/device.h"
#include "ops/opcheck.h"

namespace wick {

using namespace opcheck;

// One or two small cases per op family; the test suite (tests/common/op_cases.cpp) covers many more.
static std::vector<CasePtr> selfcheck_cases() {
  std::vector<CasePtr> c;
  c.push_back(make_matmul({.M = 7, .N = 13, .K = 5, .tb = true, .bias = true}));
  c.push_back(make_matmul({.batch = 2, .M = 7, .N = 5, .K = 9, .ta = true, .beta = 1.0f}));
  c.push_back(make_linear({7}, 33, 17, true));
  c.push_back(make_low_rank({.M = 3, .in = 33, .r = 8, .out = 17, .accumulate = true, .scale = 2.0f}));
  c.push_back(make_embedding(7, 11, 5, DType::I32));
  c.push_back(make_rms_norm(7, 64));
  c.push_back(make_rms_norm(7, 64, 1e-6f, true));
  c.push_back(make_layer_norm(7, 64));
  c.push_back(make_softmax(7, 33));
  c.push_back(make_swiglu(7, 48));
  c.push_back(make_geglu(7, 48));
  c.push_back(make_rope(1, 7, 2, 64, 1e6f, 32767, false, false));
  c.push_back(make_attention({.B = 1, .T = 7, .H = 4, .Hkv = 2, .D = 16}));
  c.push_back(make_attention({.B = 2, .T = 9, .H = 2, .Hkv = 1, .D = 16, .segments = true}));
  c.push_back(make_attention({.B = 1, .T = 1, .H = 4, .Hkv = 2, .D = 16, .kv_len = 9, .S = 12}));
  c.push_back(make_attention({.B = 1, .T = 9, .H = 4, .Hkv = 2, .D = 16, .window = 4}));
  c.push_back(make_cross_entropy(7, 50, true, 0.25f, false));
  c.push_back(make_adamw({33, 17}, 3, 0.01f, 0.5f));
  c.push_back(make_sum_squares({{7}, {33, 17}}));
  c.push_back(make_elementwise("axpy", {7, 13}));
  c.push_back(make_cast({33}, DType::F32, DType::BF16));
  c.push_back(make_fill({7}, DType::BF16, 0.1f));
  return c;
}

template <typename F>
static void run_one(std::vector<SelfCheckResult>& out, const Case& c, const std::string& dev, const std::string& check,
                    bool verbose, F f) {
  SelfCheckResult r{c.family() + "_" + c.tag(), dev, check, false, 0, 0, ""};
  try {
    const Report rep = f();
    if (rep.checks.empty()) return;  // nothing to check at this stage (e.g. no backward)
    r.pass = rep.pass();
    r.err = rep.worst_err();
    r.tol = rep.worst_tol();
    if (verbose || !r.pass) r.detail = rep.str();
  } catch (const std::exception& e) {
    r.pass = false;
    r.detail = std::string("  threw: ") + e.what() + "\n";
  }
  out.push_back(r);
}

std::vector<SelfCheckResult> run_selfcheck(bool verbose, const std::string& filter) {
  std::vector<SelfCheckResult> out;
  const int ncuda = cuda_device_count();
  uint64_t seed = 1;
  for (const CasePtr& cp : selfcheck_cases()) {
    const Case& c = *cp;
    seed++;
    if (!filter.empty() && (c.family() + "_" + c.tag()).find(filter) == std::string::npos) continue;
    run_one(out, c, "cpu", "fwd vs f64", verbose, [&] { return check_forward_cpu(c, DType::F32, seed); });
    if (c.has_backward()) {
      run_one(out, c, "cpu", "bwd vs finite diff", verbose, [&] { return check_backward_fd(c, seed, 1e7); });
      run_one(out, c, "cpu", "accumulate", verbose, [&] { return check_accumulate(c, Device::cpu(), DType::F32, seed); });
    }
    for (int d = 0; d < ncuda; d++) {
      const Device dev = Device::cuda(d);
      run_one(out, c, dev.str(), "vs cpu f32", verbose, [&] { return check_device(c, dev, DType::F32, seed); });
      if (c.device_bf16())
        run_one(out, c, dev.str(), "vs cpu bf16", verbose, [&] { return check_device(c, dev, DType::BF16, seed); });
      if (c.has_backward())
        run_one(out, c, dev.str(), "accumulate", verbose, [&] { return check_accumulate(c, dev, DType::F32, seed); });
    }
  }
  return out;
}

}  // namespace wick
