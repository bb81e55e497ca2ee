// .npy I/O: round trips, files as NumPy writes them, and every kind of malformed file.
#include <cstdio>
#include <fstream>
#include <string>

#include "nsamp/core/npy.h"
#include "test_util.h"

using namespace nsamp;

namespace {

std::string scratch(const std::string& name) { return test::scratch_path("npy_" + name); }

// A .npy image with the given header dictionary text (padded as NumPy pads it) and raw payload.
std::string npy_bytes(const std::string& dict, const std::string& payload, int major = 1) {
  std::string header = dict;
  const std::size_t pre = major == 1 ? 10 : 12;
  header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const std::size_t len = header.size();
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  if (major != 1) {
    out.push_back(0);
    out.push_back(0);
  }
  return out + header + payload;
}

std::string float_payload(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(v.begin()), v.size() * sizeof(float));
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void expect_error(const std::string& bytes, const std::string& fragment) {
  const std::string path = scratch("bad.npy");
  write_file(path, bytes);
  Context ctx;
  CHECK_THROWS_WITH_AS(read_npy(path, ctx), doctest::Contains(fragment.c_str()), Error);
  std::remove(path.c_str());
}

}  // namespace

TEST_CASE("npy: write then read returns the same tensor (float32/float64 - rank 1 to 3)" *
          doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 3);
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Shape& s : {Shape{7}, Shape{4, 5}, Shape{0, 3}, Shape{2, 3, 2}, Shape{1}}) {
      CAPTURE(s.str());
      Tensor t = Tensor::empty(s, dt, ctx);
      fill_normal(t, ctx, 0, 100);
      const std::string path = scratch("roundtrip.npy");
      write_npy(path, t);
      Tensor back = read_npy(path, ctx);
      CHECK(back.shape() == s);
      CHECK(back.dtype() == dt);
      test::check_close(test::to_doubles(back, ctx), test::to_doubles(t, ctx), 0, 0, "round trip");
      // The header is padded so that data starts on a 64-byte boundary, as NumPy does.
      std::ifstream f(path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const NpyHeader h = parse_npy_header(bytes.data(), bytes.size(), path);
      CHECK(h.data_offset % 64 == 0);
      std::remove(path.c_str());
      CHECK_FALSE(std::ifstream(path + ".tmp").good());
    }
  }
}

TEST_CASE("npy: reads headers as NumPy writes them - versions 1 and 2 - with conversion on load" *
          doctest::test_suite("cpu")) {
  Context ctx;
  const std::string path = scratch("numpy.npy");
  write_file(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                             float_payload({1.f, 2.f, 3.f, -4.5f})));
  Tensor t = read_npy(path, ctx);
  CHECK(t.shape() == Shape{2, 2});
  CHECK(t.to_vector<float>(ctx) == std::vector<float>{1.f, 2.f, 3.f, -4.5f});
  Tensor d = read_npy(path, ctx, DType::F64);
  CHECK(d.dtype() == DType::F64);
  CHECK(d.to_vector<double>(ctx) == std::vector<double>{1, 2, 3, -4.5});
  write_file(path, npy_bytes("{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f4\"}",
                             float_payload({0.5f, 1.5f, 2.5f}), 2));
  Tensor v = read_npy(path, ctx);
  CHECK(v.shape() == Shape{3});
  CHECK(read_npy(path, ctx, DType::F32).to_vector<float>(ctx)[2] == 2.5f);
  std::remove(path.c_str());
}

TEST_CASE("npy: the shared DW-4 reference file reads as 10000 x 8 float32" * doctest::test_suite("cpu")) {
  const std::string path = std::string(NSAMP_SHARED_DATA_DIR) + "/val_split_DW4.npy";
  if (!std::ifstream(path).good()) {
    MESSAGE("skipped: " << path << " is not present");
    return;
  }
  Context ctx;
  Tensor t = read_npy(path, ctx);
  CHECK(t.shape() == Shape{10000, 8});
  CHECK(t.dtype() == DType::F32);
  for (float v : t.to_vector<float>(ctx)) REQUIRE(std::isfinite(v));
}

TEST_CASE("npy: malformed files are rejected with a clear message" * doctest::test_suite("cpu")) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two = float_payload({1.f, 2.f});
  expect_error("hello world, not numpy", "missing the \\x93NUMPY magic");
  expect_error("", "missing the \\x93NUMPY magic");
  expect_error(std::string("\x93NUMPY\x09\x00\x10\x00", 10), "unsupported format version 9");
  expect_error(npy_bytes(ok_dict, two).substr(0, 30), "truncated inside the header");
  expect_error(npy_bytes(ok_dict, two).substr(0, 9), "truncated inside the header");
  expect_error(npy_bytes(ok_dict, two.substr(0, 6)), "data truncated");
  expect_error(npy_bytes(ok_dict, two + "xx"), "2 unexpected bytes");
  expect_error(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", two), "dtype '<i4'");
  expect_error(npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two), "big-endian");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", two), "Fortran-order");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", two), "rank 0");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2), }", two),
               "rank 5");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False}", two), "lacks one of");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", two),
               "expected True or False");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two),
               "unknown header key 'x'");
  expect_error(npy_bytes("{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", two), "malformed header");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}", two),
               "expected ',' or ')'");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", two),
               "dimension too large");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", two),
               "shape too large");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing", two),
               "unexpected text");
  Context ctx;
  CHECK_THROWS_WITH_AS(read_npy(scratch("does_not_exist.npy"), ctx), doctest::Contains("cannot open"), Error);
}

NSAMP_DEVICE_TEST("npy: writing needs a host tensor - and a failed write leaves the old file intact") {
  Context ctx(dev);
  Tensor t = Tensor::zeros(Shape{3}, DType::F32, ctx);
  const std::string path = scratch("write.npy");
  if (dev.is_cuda()) {
    CHECK_THROWS_WITH_AS(write_npy(path, t), doctest::Contains("not in host memory"), Error);
    t = t.to(Device::cpu(), ctx);
  }
  write_npy(path, t);
  CHECK_THROWS_WITH_AS(write_npy("/nonexistent-dir/x.npy", t), doctest::Contains("cannot create"), Error);
  CHECK_THROWS_WITH_AS(write_npy(path, Tensor::zeros(Shape{}, DType::F32, Device::cpu(), ctx)),
                       doctest::Contains("rank-0"), Error);
  CHECK(read_npy(path, ctx).shape() == Shape{3});
  std::remove(path.c_str());
}
