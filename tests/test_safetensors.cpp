// safetensors: round trips for every dtype, conversion, streaming writes, and rejection of malformed files.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "support.h"
#include "util/error.h"

namespace {

using draft::test::TempDir;

// A safetensors file from a header text and a data section.
std::string make_file(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Expects opening `bytes` as a file to throw draft::Error mentioning the file name and `needle`.
void expect_rejected(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  draft::test::write_bytes(path, bytes);
  try {
    draft::SafeTensorsFile file(path);
    ADD_FAILURE() << "accepted a malformed file; expected an error about: " << needle;
  } catch (const draft::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << "message: " << what << "\nexpected to contain: " << needle;
  }
}

TEST(SafeTensors, RoundTripEveryDType) {
  TempDir dir;
  auto gen = at::detail::createCPUGenerator(42);
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f64", torch::randn({3, 4}, gen, torch::kDouble)},
      {"f32", torch::randn({2, 3, 5}, gen)},
      {"f16", torch::randn({7}, gen).to(torch::kHalf)},
      {"bf16", torch::randn({4, 4}, gen).to(torch::kBFloat16)},
      {"i64", torch::randint(-1000000, 1000000, {5}, gen, torch::kLong)},
      {"i32", torch::randint(-100000, 100000, {2, 2}, gen, torch::kInt)},
      {"i16", torch::randint(-30000, 30000, {3}, gen, torch::kShort)},
      {"i8", torch::randint(-128, 127, {9}, gen, torch::kChar)},
      {"u8", torch::randint(0, 255, {2, 5}, gen, torch::kByte)},
      {"bool", torch::randint(0, 2, {6}, gen, torch::kLong).to(torch::kBool)},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::zeros({0, 3})},
  };
  std::string path = dir.file("all.safetensors");
  draft::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "round trip"}});

  draft::SafeTensorsFile file(path);
  EXPECT_EQ(file.tensors().size(), tensors.size());
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("note"), "round trip");
  for (const auto& [name, expected] : tensors) {
    at::Tensor got = file.load(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, expected)) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafeTensors, ConvertsFloatingTensorsOnLoad) {
  TempDir dir;
  std::string path = dir.file("w.safetensors");
  at::Tensor w = torch::tensor({1.0f, -2.5f, 0.125f}).to(torch::kHalf);
  draft::save_safetensors(path, {{"w", w}, {"ids", torch::tensor({1, 2, 3})}});
  draft::SafeTensorsFile file(path);
  at::Tensor f32 = file.load("w", {torch::kFloat32});
  EXPECT_EQ(f32.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(f32, w.to(torch::kFloat32)));
  // Integer tensors keep their type whatever compute dtype is asked for.
  EXPECT_EQ(file.load("ids", {torch::kFloat16}).scalar_type(), torch::kLong);
}

TEST(SafeTensors, ReadsUnalignedData) {
  // A 2-byte tensor first puts the F32 tensor at an odd-aligned file offset.
  TempDir dir;
  std::string path = dir.file("u.safetensors");
  float value = 1.5f;
  std::string data = std::string("\x01\x02\x03", 3) + std::string(reinterpret_cast<char*>(&value), 4);
  draft::test::write_bytes(path, make_file(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})",
                                           data));
  draft::SafeTensorsFile file(path);
  EXPECT_EQ(file.load("b").item<float>(), 1.5f);
  EXPECT_EQ(file.parameter_count(), 4);
}

TEST(SafeTensors, MissingTensorNamesFileAndKey) {
  TempDir dir;
  std::string path = dir.file("x.safetensors");
  draft::save_safetensors(path, {{"a", torch::ones({1})}});
  draft::SafeTensorsFile file(path);
  try {
    file.load("nope");
    FAIL();
  } catch (const draft::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

TEST(SafeTensors, StreamingWriterChecksOrderAndCompleteness) {
  TempDir dir;
  std::string path = dir.file("s.safetensors");
  {
    draft::SafeTensorsWriter writer(path, {{"a", draft::DType::F32, {2}}, {"b", draft::DType::I64, {1}}});
    EXPECT_THROW(writer.write("b", torch::zeros({1}, torch::kLong)), draft::Error);  // out of order
    EXPECT_THROW(writer.write("a", torch::zeros({3})), draft::Error);                // wrong shape
    EXPECT_THROW(writer.write("a", torch::zeros({2}, torch::kDouble)), draft::Error);  // wrong dtype
    writer.write("a", torch::ones({2}));
    EXPECT_THROW(writer.close(), draft::Error);  // "b" is missing
  }
  // An unfinished writer leaves neither the file nor its temporary behind.
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(SafeTensors, WriterRejectsDuplicateAndReservedNames) {
  TempDir dir;
  EXPECT_THROW(draft::save_safetensors(dir.file("d"), {{"a", torch::ones({1})}, {"a", torch::ones({1})}}),
               draft::Error);
  EXPECT_THROW(draft::save_safetensors(dir.file("r"), {{"__metadata__", torch::ones({1})}}), draft::Error);
}

TEST(SafeTensors, HeaderIsPaddedToEightBytes) {
  TempDir dir;
  std::string path = dir.file("p.safetensors");
  draft::save_safetensors(path, {{"abc", torch::ones({1})}});
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
}

const std::string kOk = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

TEST(SafeTensorsMalformed, Truncated) {
  expect_rejected("", "shorter than the 8-byte header size");
  expect_rejected("abc", "shorter than the 8-byte header size");
  expect_rejected(make_file(kOk, std::string(4, '\0')), "past the 4 data bytes");
}

TEST(SafeTensorsMalformed, HeaderSize) {
  expect_rejected(make_file(kOk, std::string(8, '\0')).substr(0, 20), "larger than the rest of the file");
  std::string absurd(8, '\xff');
  expect_rejected(absurd + "{}", "above the 100 MB limit");
  expect_rejected(make_file(""), "header is empty");
}

TEST(SafeTensorsMalformed, InvalidJson) {
  expect_rejected(make_file("{\"t\": "), "invalid JSON");
  expect_rejected(make_file("{} trailing"), "invalid JSON");
  expect_rejected(make_file("[1, 2]"), "not a JSON object");
  expect_rejected(make_file("\"text\""), "not a JSON object");
  expect_rejected(make_file(R"({"t": 5})"), "the entry 't' is a number");
  expect_rejected(make_file(R"({"t": [1]})"), "the entry 't' is an array");
}

TEST(SafeTensorsMalformed, Fields) {
  expect_rejected(make_file(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')), "has no dtype");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, '\0')), "has no shape");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')), "has no data_offsets");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})"),
                  "field 'dtype' twice");
  expect_rejected(make_file(R"({"t":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})"), "dtype that is a number");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})"), "'shape' that is an object");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})"), "where an integer belongs");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})"), "not a non-negative integer");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})"), "exactly 2");
}

TEST(SafeTensorsMalformed, UnknownFieldsAreIgnored) {
  TempDir dir;
  std::string path = dir.file("extra.safetensors");
  draft::test::write_bytes(path, make_file(R"({"t":{"extra":{"a":[1,{"b":"c"}]},"dtype":"U8","note":"x",)"
                                           R"("shape":[1],"data_offsets":[0,1]}})",
                                           std::string(1, '\x05')));
  draft::SafeTensorsFile file(path);
  EXPECT_EQ(file.load("t").item<uint8_t>(), 5);
}

TEST(SafeTensorsMalformed, UnknownDType) {
  expect_rejected(make_file(R"({"t":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x"),
                  "unknown dtype 'F8_E4M3'");
}

TEST(SafeTensorsMalformed, ShapeOffsetDisagreement) {
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
                  "needing 12 bytes but data_offsets span 8");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(8, '\0')),
                  "begin > end");
}

TEST(SafeTensorsMalformed, OverlappingAndOutOfRangeOffsets) {
  expect_rejected(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            std::string(12, '\0')),
                  "overlap");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})", std::string(8, '\0')),
                  "past the 8 data bytes");
}

TEST(SafeTensorsMalformed, DuplicateNames) {
  expect_rejected(make_file(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            "ab"),
                  "the name 't' appears twice");
  expect_rejected(make_file(R"({"__metadata__":{},"__metadata__":{}})"), "appears twice");
}

TEST(SafeTensorsMalformed, NegativeDimsAndOverflow) {
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                  "negative dimension");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                            std::string(4, '\0')),
                  "overflows 64 bits");
  expect_rejected(make_file(R"({"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})",
                            std::string(4, '\0')),
                  "overflows 64 bits");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})"), "negative data offset");
  expect_rejected(make_file(R"({"t":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}})"),
                  "not a non-negative integer");
}

TEST(SafeTensorsMalformed, Metadata) {
  expect_rejected(make_file(R"({"__metadata__":{"a":1}})"), "value for 'a' is a number");
  expect_rejected(make_file(R"({"__metadata__":[]})"), "'__metadata__' is an array");
  expect_rejected(make_file(R"({"__metadata__":{"a":"x","a":"y"}})"), "key 'a' twice");
}

TEST(SafeTensorsMalformed, InvalidBoolBytes) {
  TempDir dir;
  std::string path = dir.file("b.safetensors");
  draft::test::write_bytes(path, make_file(R"({"t":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                                           std::string("\x01\x07", 2)));
  draft::SafeTensorsFile file(path);
  EXPECT_THROW(file.load("t"), draft::Error);
}

TEST(SafeTensorsMalformed, DeepNestingIsBoundedAndRejected) {
  // Deep nesting in an ignored field must neither overflow the stack nor be accepted as a tensor.
  std::string deep = R"({"t":{"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  expect_rejected(make_file(deep), "has no dtype");
}

TEST(SafeTensorsMalformed, NotAFile) {
  TempDir dir;
  EXPECT_THROW(draft::SafeTensorsFile(dir.file("missing.safetensors")), draft::Error);
  EXPECT_THROW(draft::SafeTensorsFile(dir.path()), draft::Error);
}

}  // namespace
