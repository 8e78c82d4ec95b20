// The safetensors reader on hand-built files: every malformation of formats.md §1.2 (plus duplicate
// names) is a wick::Error naming the file and the problem; the legal corner cases load.
#include <cstring>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"

namespace wick::io {
namespace {

using test::st_bytes;
using test::TempDir;
using test::write_bytes;

// Little-endian bytes of floats.
std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

struct SafetensorsRead : ::testing::Test {
  TempDir tmp;
  // Writes bytes to a file in the temp folder; returns its path.
  std::string put(const std::string& bytes, const std::string& name = "bad.safetensors") {
    const std::string p = tmp.file(name);
    write_bytes(p, bytes);
    return p;
  }
};

TEST_F(SafetensorsRead, FileShorterThan8Bytes) {
  for (size_t n : {0, 1, 7}) {
    const std::string p = put(std::string(n, '\x01'));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "too small", std::to_string(n) + " bytes");
  }
}

TEST_F(SafetensorsRead, HeaderLengthPastEnd) {
  const std::string p = put(test::le64(100) + "{}");
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "header length 100", "past the end");
}

TEST_F(SafetensorsRead, HeaderOver100MB) {
  std::string p = put(test::le64(100'000'001) + "{}");
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "100,000,000");
  p = put(test::le64(UINT64_MAX) + "{}");
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "100,000,000");
}

TEST_F(SafetensorsRead, InvalidJson) {
  for (const std::string h : {"{", "", "{\"a\":}", "nul", "{} x", "{\"a\" {}}"}) {
    const std::string p = put(st_bytes(h));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "invalid JSON");
  }
}

TEST_F(SafetensorsRead, ByteOrderMarkIsInvalidJson) {
  const std::string p = put(st_bytes("\xEF\xBB\xBF{}      "));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "byte-order mark");
}

TEST_F(SafetensorsRead, NotUtf8) {
  const std::string p = put(st_bytes("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "UTF-8");
  const std::string s = put(st_bytes("{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(s), s, "UTF-8");  // an encoded surrogate
  const std::string o = put(st_bytes("{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(o), o, "UTF-8");  // an overlong '/'
}

TEST_F(SafetensorsRead, WrongTypes) {
  struct Case {
    std::string entry, needle;
  };
  const std::vector<Case> cases = {
      {R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":["1"],"data_offsets":[0,4]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4.0]})", "non-negative integers"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":{"a":0}})", "data_offsets"},
      {R"({"dtype":"F32","shape":[1]})", "data_offsets"},
      {R"({"dtype":"F32","data_offsets":[0,4]})", "shape"},
      {R"({"dtype":"F32","shape":1,"data_offsets":[0,4]})", "shape"},
      {R"({"shape":[1],"data_offsets":[0,4]})", "dtype"},
      {R"({"dtype":32,"shape":[1],"data_offsets":[0,4]})", "dtype"},
      {R"([1,2,3])", "must be an object"},
      {R"("x")", "must be an object"},
  };
  for (const Case& c : cases) {
    const std::string p = put(st_bytes("{\"t\":" + c.entry + "}", std::string(4, '\0')));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'t'", c.needle);
  }
  for (const std::string meta : {R"({"format":1})", R"({"format":null})", R"({"a":{"b":"c"}})", R"("pt")", R"([])"}) {
    const std::string p = put(st_bytes("{\"__metadata__\":" + meta + "}"));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "__metadata__");
  }
  for (const std::string top : {"[]", "1", "\"x\"", "null"}) {
    const std::string p = put(st_bytes(top));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "must be a JSON object");
  }
}

TEST_F(SafetensorsRead, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  const size_t depth = 200000;
  const std::string arr = std::string(depth, '[') + std::string(depth, ']');
  std::string p = put(st_bytes(arr));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "must be a JSON object");
  p = put(st_bytes("{\"t\":" + arr + "}"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'t'", "must be an object");
  std::string obj;
  for (size_t i = 0; i < depth; i++) obj += "{\"a\":";
  obj += "1" + std::string(depth, '}');
  p = put(st_bytes(obj));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'a'");
}

TEST_F(SafetensorsRead, UnknownDtype) {
  for (const std::string dt : {"F128", "f32", "FLOAT", "", "Q4_0"}) {
    const std::string p = put(st_bytes(R"({"w":{"dtype":")" + dt + R"(","shape":[1],"data_offsets":[0,4]}})", std::string(4, 'x')));
    EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'w'", "unknown dtype", "BF16");
  }
}

TEST_F(SafetensorsRead, OverlappingOffsets) {
  const std::string p = put(st_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      std::string(12, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'b'", "overlap", "'a'");
  // Two names aliasing one range (tied weights) are refused too.
  const std::string q = put(st_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
      std::string(8, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "overlap");
}

TEST_F(SafetensorsRead, GappedOffsets) {
  const std::string p = put(st_bytes(
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
      std::string(12, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'b'", "gap of 4 bytes");
  const std::string q = put(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "'a'", "gap");
}

TEST_F(SafetensorsRead, EndBeforeBegin) {
  const std::string p = put(st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
                                     std::string(4, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "end before begin");
}

TEST_F(SafetensorsRead, OutOfRangeOffsets) {
  const std::string p = put(st_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'a'", "past the end");
  const std::string q = put(st_bytes(
      R"({"a":{"dtype":"U8","shape":[1152921504606846976],"data_offsets":[0,1152921504606846976]}})", "xx"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "'a'", "past the end");
}

TEST_F(SafetensorsRead, ShapeDtypeSizeMismatch) {
  const std::string p = put(st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'a'", "8 bytes", "needs 12");
  const std::string q = put(st_bytes(R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}})", std::string(16, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "'a'", "16 bytes", "needs 8");
  // Sub-byte dtypes must fill whole bytes.
  const std::string r = put(st_bytes(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "xx"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(r), r, "'a'", "whole number of bytes");
}

TEST_F(SafetensorsRead, ShapeProductOverflowIsNotZero) {
  // 2^62 * 4 wraps to 0 in unchecked 64-bit arithmetic (the safetensors-cpp bug): must be an overflow,
  // not an empty tensor, even though its offsets claim 0 bytes.
  const std::string p = put(st_bytes(R"({"a":{"dtype":"U8","shape":[4611686018427387904,4],"data_offsets":[0,0]}})"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "'a'", "overflows");
  // The bit count overflows although the element count does not.
  const std::string q = put(st_bytes(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "'a'", "overflows");
  // A later zero does not excuse an earlier overflow.
  const std::string r = put(st_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(r), r, "'a'", "overflows");
}

TEST_F(SafetensorsRead, TrailingBytes) {
  const std::string p = put(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(5, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "1 trailing bytes");
  const std::string q = put(st_bytes("{}", "junk"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "4 trailing bytes");
}

TEST_F(SafetensorsRead, DuplicateNames) {
  // An exact duplicate would pass every offset check; it must still be refused.
  const std::string e = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string p = put(st_bytes("{\"w\":" + e + ",\"w\":" + e + "}", std::string(4, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(p), p, "duplicate", "'w'");
  const std::string q = put(st_bytes(R"({"__metadata__":{"format":"pt","format":"tf"}})"));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(q), q, "duplicate", "__metadata__.format");
  const std::string r = put(st_bytes(R"({"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, 'x')));
  EXPECT_WICK_ERROR(SafeTensorsFile::open(r), r, "duplicate", "w.dtype");
}

TEST_F(SafetensorsRead, MissingTensor) {
  const std::string p = put(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, 'x')));
  auto f = SafeTensorsFile::open(p);
  EXPECT_FALSE(f->has("nope"));
  EXPECT_WICK_ERROR(f->get("nope"), p, "'nope'", "not found");
  EXPECT_WICK_ERROR(f->info("nope"), p, "'nope'", "not found");
}

TEST_F(SafetensorsRead, NotAFile) {
  EXPECT_WICK_ERROR(SafeTensorsFile::open(tmp.file("absent.safetensors")), "absent.safetensors", "cannot open");
  EXPECT_WICK_ERROR(SafeTensorsFile::open(tmp.path()), tmp.path(), "not a regular file");
}

TEST_F(SafetensorsRead, WhitespaceAroundHeaderIsAccepted) {
  const std::vector<float> v = {1.5f, -2.25f};
  for (const std::string h : {std::string(" \n\t\r{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"),
                              std::string("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   \n "),
                              std::string("  {\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ")}) {
    const std::string p = put(st_bytes(h, f32_bytes(v)));
    auto f = SafeTensorsFile::open(p);
    EXPECT_EQ(f->get("a").to_f32_vector(), v);
  }
}

TEST_F(SafetensorsRead, ZeroSizeAndRank0TensorsAreLegal) {
  const std::string p = put(st_bytes(
      R"({"__metadata__":{"k":"v"},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("z":{"dtype":"BF16","shape":[0,5],"data_offsets":[4,4]},"z2":{"dtype":"I64","shape":[3,0],"data_offsets":[4,4]},)"
      R"("u":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}})",
      f32_bytes({3.75f, 0, 0})));
  auto f = SafeTensorsFile::open(p);
  EXPECT_EQ(f->metadata().at("k"), "v");
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->tensors()[0].name, "s");  // header order
  Tensor s = f->get("s");
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.to_f32_vector(), std::vector<float>{3.75f});
  Tensor z = f->get("z");
  EXPECT_EQ(z.shape(), (Shape{0, 5}));
  EXPECT_EQ(z.dtype(), DType::BF16);
  EXPECT_EQ(z.numel(), 0);
  EXPECT_EQ(f->get("z2").shape(), (Shape{3, 0}));
  EXPECT_EQ(f->get("u").to_i64_vector(), (std::vector<int64_t>{0, 0}));
}

TEST_F(SafetensorsRead, UnsupportedDtypesParseButDoNotLoad) {
  // Bit widths from formats.md: U8 8, F8_E4M3 8, F6_E2M3 6 (4 values = 3 bytes), F4 4, U16 16, F64 64, BOOL 8.
  const std::string h =
      R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[3,5]},)"
      R"("c":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[5,8]},"d":{"dtype":"F4","shape":[2,3],"data_offsets":[8,11]},)"
      R"("e":{"dtype":"U16","shape":[1],"data_offsets":[11,13]},"f":{"dtype":"F64","shape":[1],"data_offsets":[13,21]},)"
      R"("g":{"dtype":"BOOL","shape":[1],"data_offsets":[21,22]},"h":{"dtype":"C64","shape":[1],"data_offsets":[22,30]}})";
  const std::string p = put(st_bytes(h, std::string(30, '\x01')));
  auto f = SafeTensorsFile::open(p);
  for (const char* n : {"a", "b", "c", "d", "e", "f", "g", "h"}) {
    EXPECT_FALSE(f->info(n).supported) << n;
    EXPECT_WICK_ERROR(f->get(n), p, std::string("'") + n + "'", "cannot load", f->info(n).dtype_str);
  }
  EXPECT_EQ(f->info("d").shape, (Shape{2, 3}));
  EXPECT_EQ(f->info("c").dtype_str, "F6_E2M3");
}

TEST_F(SafetensorsRead, UnalignedDataLoadsCorrectly) {
  // A third-party writer that does not pad: the header length is odd, so every tensor is misaligned.
  Rng rng(7);
  std::vector<float> a(5);
  for (float& x : a) x = rng.normal();
  std::vector<int64_t> b = {-3, 1LL << 40, 7};
  std::string data = f32_bytes(a);
  data.append(reinterpret_cast<const char*>(b.data()), 24);
  const std::string h = R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]},"b":{"dtype":"I64","shape":[3],"data_offsets":[20,44]}})";
  ASSERT_NE(h.size() % 4, 0u);
  const std::string p = put(st_bytes(h, data));
  auto f = SafeTensorsFile::open(p);
  Tensor ta = f->get("a"), tb = f->get("b");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta.raw()) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(tb.raw()) % 8, 0u);
  EXPECT_EQ(ta.to_f32_vector(), a);
  EXPECT_EQ(tb.to_i64_vector(), b);
}

TEST_F(SafetensorsRead, ViewsOutliveTheFileObjectAndWritesStayPrivate) {
  const std::vector<float> v = {1, 2, 3, 4};
  const std::string bytes = st_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}    )", f32_bytes(v));
  const std::string p = put(bytes);
  Tensor t;
  {
    auto f = SafeTensorsFile::open(p);
    t = f->get("a");
  }
  EXPECT_EQ(t.to_f32_vector(), v);  // the mapping lives as long as the view
  t.data<float>()[0] = 42;          // copy-on-write: the file is untouched
  EXPECT_EQ(t.to_f32_vector()[0], 42.0f);
  std::ifstream in(p, std::ios::binary);
  const std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(now, bytes);
}

}  // namespace
}  // namespace wick::io
