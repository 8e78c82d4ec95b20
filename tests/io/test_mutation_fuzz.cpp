// Randomized mutation tests (seeded, so reproducible): thousands of corrupted safetensors files and JSON
// configs. Every outcome must be a valid parse or a wick::Error -- never a crash, hang, internal error or
// out-of-bounds read (CI runs this under ASan/UBSan).
#include <cstring>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace wick::io {
namespace {

using test::TempDir;

std::string mutate(const std::string& src, size_t header_end, Rng& rng) {
  std::string s = src;
  const auto pick = [&](size_t lo, size_t hi) { return lo + static_cast<size_t>(rng.below(hi - lo)); };
  switch (rng.below(7)) {
    case 0: {  // flip a few bytes, mostly inside the header
      const int n = 1 + static_cast<int>(rng.below(6));
      for (int i = 0; i < n && !s.empty(); i++) {
        const size_t at = rng.below(4) ? pick(0, std::min(header_end, s.size())) : pick(0, s.size());
        s[at] = static_cast<char>(rng.next_u32());
      }
      break;
    }
    case 1:  // truncate
      s.resize(rng.below(s.size() + 1));
      break;
    case 2: {  // append junk
      const size_t n = 1 + rng.below(16);
      for (size_t i = 0; i < n; i++) s.push_back(static_cast<char>(rng.next_u32()));
      break;
    }
    case 3: {  // a new header length: near the true one or anything
      uint64_t n;
      std::memcpy(&n, s.data(), 8);
      n = rng.below(2) ? n + rng.below(17) - 8 : rng.next_u64() >> rng.below(64);
      std::memcpy(s.data(), &n, 8);
      break;
    }
    case 4: {  // change digits inside the header (shapes and offsets)
      const int n = 1 + static_cast<int>(rng.below(3));
      for (int i = 0; i < n; i++) {
        const size_t at = pick(8, header_end);
        if (s[at] >= '0' && s[at] <= '9') s[at] = static_cast<char>('0' + rng.below(10));
        else if (rng.below(8) == 0) s.insert(at, 1, static_cast<char>('0' + rng.below(10)));
      }
      break;
    }
    case 5: {  // replace a JSON token character with structural noise
      static const char noise[] = "{}[],:\"-.eE0\\ ";
      const size_t at = pick(8, header_end);
      s[at] = noise[rng.below(sizeof noise - 1)];
      break;
    }
    default: {  // duplicate or delete a span
      const size_t a = pick(0, s.size()), len = rng.below(std::min<size_t>(40, s.size() - a) + 1);
      if (rng.below(2)) s.insert(a, s.substr(a, len));
      else s.erase(a, len);
    }
  }
  return s;
}

TEST(MutationFuzz, Safetensors) {
  TempDir tmp;
  Rng rng(20240611);
  const std::string base_path = tmp.file("base.safetensors");
  save_safetensors(base_path,
                   {{"w", test::randn({3, 4}, rng)},
                    {"h", test::randn({5}, rng).to(DType::BF16)},
                    {"ids", Tensor::from_i64({1, -2, 3}, {3})},
                    {"s", Tensor::from_f32({0.5f}, {})},
                    {"z", Tensor::empty({0, 7}, DType::F16)},
                    {"n", Tensor::from_i32({4, 5}, {2})}},
                   {{"format", "pt"}, {"k", "v"}});
  const std::string base = read_file(base_path);
  uint64_t n;
  std::memcpy(&n, base.data(), 8);
  const size_t header_end = 8 + n;
  int ok = 0, errors = 0;
  const std::string p = tmp.file("m.safetensors");
  for (int iter = 0; iter < 2000; iter++) {
    const std::string bytes = mutate(base, header_end, rng);
    std::filesystem::remove(p);  // a fresh file: rewriting via truncate makes ext4 flush every time
    test::write_bytes(p, bytes);
    try {
      auto f = SafeTensorsFile::open(p);
      double sum = 0;
      for (const TensorInfo& ti : f->tensors()) {
        if (!ti.supported) continue;
        Tensor t = f->get(ti.name);
        const auto* b = static_cast<const unsigned char*>(t.raw());
        for (size_t i = 0; i < t.nbytes(); i++) sum += b[i];  // touch every byte
      }
      EXPECT_GE(sum, 0.0);
      ok++;
    } catch (const Error&) {
      errors++;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << ": not a wick::Error: " << e.what();
    }
  }
  EXPECT_GT(ok, 20);  // some mutations stay valid (e.g. a changed data byte)
  EXPECT_GT(errors, 1000);
}

TEST(MutationFuzz, JsonConfigs) {
  Rng rng(77);
  const std::string model = read_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-c/config.json");
  const std::string lora = read_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/adapter_init/adapter_config.json");
  int ok = 0, errors = 0;
  for (int iter = 0; iter < 2000; iter++) {
    const std::string& src = iter % 2 ? model : lora;
    // mutate() expects an 8-byte length prefix; give it a dummy one and strip it afterwards.
    std::string s = mutate(test::le64(src.size()) + src, src.size() + 8, rng);
    s = s.size() > 8 ? s.substr(8) : "";
    try {
      if (iter % 2) (void)ModelConfig::from_json_string(s, "config.json");
      else (void)LoraConfig::from_json_string(s, "adapter_config.json");
      ok++;
    } catch (const Error&) {
      errors++;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << iter << ": not a wick::Error: " << e.what();
    }
  }
  EXPECT_GT(ok, 20);
  EXPECT_GT(errors, 200);
}

}  // namespace
}  // namespace wick::io
