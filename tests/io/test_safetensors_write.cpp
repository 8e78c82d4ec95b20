// The safetensors writer: the reference's golden bytes, its layout rules, round trips, atomicity, and
// byte-identical rewrites of files the reference writer made (the fixtures).
#include <cstring>
#include <filesystem>

#include "common/testutil.h"
#include "io/atomic_file.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::vector<std::string> dir_listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SafetensorsWrite, GoldenEmptyFile) {
  // safetensors test_empty: 08 00 00 00 00 00 00 00 7B 7D 20 20 20 20 20 20
  TempDir tmp;
  save_safetensors(tmp.file("e.safetensors"), {}, {});
  const std::string want("\x08\0\0\0\0\0\0\0{}      ", 16);
  EXPECT_EQ(read_file(tmp.file("e.safetensors")), want);
  // With HF's {"format":"pt"}: 32 header bytes, already a multiple of 8.
  save_safetensors(tmp.file("pt.safetensors"), {});
  const std::string want_pt = std::string("\x20\0\0\0\0\0\0\0", 8) + R"({"__metadata__":{"format":"pt"}})";
  EXPECT_EQ(read_file(tmp.file("pt.safetensors")), want_pt);
  auto f = SafeTensorsFile::open(tmp.file("pt.safetensors"));
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->metadata().at("format"), "pt");
}

TEST(SafetensorsWrite, GoldenSmallFile) {
  // Hand-written expectation of the reference layout: I64 before F32 (dtype rank descending), then
  // names ascending; compact header, __metadata__ first, spaces up to a multiple of 8.
  TempDir tmp;
  Tensor b = Tensor::from_f32({1.0f}, {1});
  Tensor a = Tensor::from_f32({2.0f}, {1});
  Tensor i = Tensor::from_i64({5}, {});
  save_safetensors(tmp.file("s.safetensors"), {{"b", b}, {"a", a}, {"i", i}});
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"i":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string want = test::le64(padded.size()) + padded;
  want += std::string("\x05\0\0\0\0\0\0\0", 8) + std::string("\x00\x00\x00\x40", 4) + std::string("\x00\x00\x80\x3f", 4);
  EXPECT_EQ(read_file(tmp.file("s.safetensors")), want);
}

TEST(SafetensorsWrite, RoundTripAllDtypesAndLayout) {
  TempDir tmp;
  Rng rng(11);
  std::vector<std::pair<std::string, Tensor>> ts;
  ts.emplace_back("w.f32", test::randn({3, 5}, rng));
  ts.emplace_back("w.bf16", test::randn({7}, rng).to(DType::BF16));
  ts.emplace_back("w.f16", test::randn({2, 3}, rng).to(DType::F16));
  ts.emplace_back("ids.i32", Tensor::from_i32({-1, 7, 1 << 30}, {3}));
  ts.emplace_back("ids.i64", Tensor::from_i64({-5, 1LL << 50}, {2, 1}));
  ts.emplace_back("scalar", Tensor::from_f32({rng.normal()}, {}));
  ts.emplace_back("empty", Tensor::empty({0, 4}, DType::F16));
  ts.emplace_back("a_odd", test::randn({1}, rng).to(DType::F16));
  const std::string p = tmp.file("rt.safetensors");
  save_safetensors(p, ts, {{"format", "pt"}, {"note", "héllo"}});
  auto f = SafeTensorsFile::open(p);
  EXPECT_EQ(f->metadata().at("note"), "héllo");
  ASSERT_EQ(f->tensors().size(), ts.size());
  for (const auto& [name, t] : ts) {
    Tensor g = f->get(name);
    EXPECT_EQ(g.dtype(), t.dtype()) << name;
    EXPECT_EQ(g.shape(), t.shape()) << name;
    ASSERT_EQ(g.nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(g.raw(), t.raw(), t.nbytes()), 0) << name;
  }
  // Layout: offsets increase in the order of the header; dtype rank descending, then names.
  const std::vector<std::string> order = {"ids.i64", "scalar", "w.f32", "ids.i32", "w.bf16", "a_odd", "empty", "w.f16"};
  ASSERT_EQ(f->tensors().size(), order.size());
  uint64_t pos = 0;
  for (size_t k = 0; k < order.size(); k++) {
    const TensorInfo& ti = f->tensors()[k];
    EXPECT_EQ(ti.name, order[k]);
    EXPECT_EQ(ti.begin, pos);
    EXPECT_EQ(ti.begin % dtype_size(ti.dtype), 0u) << ti.name;
    pos = ti.end;
  }
  const std::string bytes = read_file(p);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.compare(8, 16, R"({"__metadata__":)"), 0);
}

TEST(SafetensorsWrite, RefusesBadInput) {
  TempDir tmp;
  const std::string p = tmp.file("x.safetensors");
  Tensor t = Tensor::from_f32({1}, {1});
  EXPECT_WICK_ERROR(save_safetensors(p, {{"a", t}, {"a", t}}), p, "'a'", "twice");
  EXPECT_WICK_ERROR(save_safetensors(p, {{"__metadata__", t}}), p, "__metadata__");
  EXPECT_WICK_ERROR(save_safetensors(p, {{"u", Tensor()}}), p, "'u'", "undefined");
  EXPECT_WICK_ERROR(save_safetensors(p, {{"bad\xff", t}}), p, "UTF-8");
  EXPECT_WICK_ERROR(save_safetensors(tmp.file("no/such/dir/x.safetensors"), {{"a", t}}), "no/such/dir/x.safetensors");
  EXPECT_TRUE(dir_listing(tmp.path()).empty());  // nothing written, no temp files left
}

TEST(AtomicFile, UncommittedWriteLeavesOldFileAndNoTemp) {
  TempDir tmp;
  const std::string p = tmp.file("f.bin");
  write_file_atomic(p, "old");
  {
    AtomicFile f(p);
    f.write("new contents", 12);
    EXPECT_TRUE(fs::exists(f.temp_path()));
    EXPECT_EQ(fs::path(f.temp_path()).parent_path(), fs::path(p).parent_path());
  }  // destroyed without commit, as on an exception
  EXPECT_EQ(read_file(p), "old");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"f.bin"});
}

TEST(AtomicFile, WriteAndReadBinary) {
  TempDir tmp;
  Rng rng(3);
  std::string bytes(100000, '\0');
  for (char& c : bytes) c = static_cast<char>(rng.next_u32());
  const std::string p = tmp.file("b.bin");
  write_file_atomic(p, bytes);
  EXPECT_EQ(read_file(p), bytes);
  write_file_atomic(p, "");
  EXPECT_EQ(read_file(p), "");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"b.bin"});
  EXPECT_WICK_ERROR(read_file(tmp.file("missing.txt")), "missing.txt", "cannot open");
  EXPECT_WICK_ERROR(read_file(tmp.path()), tmp.path(), "directory");
  EXPECT_WICK_ERROR(write_file_atomic(tmp.path(), "x"), tmp.path(), "directory");
}

// Rewriting a file the reference writer made, with its own metadata, must reproduce it byte for byte.
TEST(SafetensorsWrite, ReproducesReferenceWriterFilesExactly) {
  TempDir tmp;
  int files = 0;
  for (const std::string& dir : test::fixture_dirs("qwen2-tiny", "config.json")) {
    for (const char* rel : {"model.safetensors", "reference.safetensors", "adapter_init/adapter_model.safetensors",
                            "adapter_trained/adapter_model.safetensors"}) {
      const std::string src = (fs::path(dir) / rel).string();
      if (!fs::exists(src)) continue;
      auto f = SafeTensorsFile::open(src);
      std::vector<std::pair<std::string, Tensor>> ts;
      for (const TensorInfo& ti : f->tensors()) ts.emplace_back(ti.name, f->get(ti.name));
      std::reverse(ts.begin(), ts.end());  // input order must not matter
      const std::string out = tmp.file("copy.safetensors");
      save_safetensors(out, ts, f->metadata());
      EXPECT_TRUE(read_file(out) == read_file(src)) << src << " is not reproduced byte for byte";
      files++;
    }
  }
  EXPECT_GE(files, 8);
}

}  // namespace
}  // namespace wick::io
