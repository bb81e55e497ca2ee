#include "nsamp/core/npy.h"

#include "nsamp/core/atomic_file.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

namespace nsamp {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kMaxHeaderLen = std::size_t(1) << 20;  // a sane bound; real headers are < 200 bytes

// A tiny parser for the header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3,
// 4), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  void parse(std::string* descr, bool* fortran, std::vector<std::int64_t>* shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        *descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        *fortran = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        *shape = parse_tuple();
        have_shape = true;
      } else {
        fail("unknown header key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      expect('}');
      break;
    }
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the header dictionary");
    if (!have_descr || !have_fortran || !have_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    NSAMP_FAIL("read_npy(", name_, "): malformed header: ", what, " (at character ", pos_, ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++pos_;
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != q) ++pos_;
    if (pos_ >= s_.size()) fail("unterminated string");
    return s_.substr(start, pos_++ - start);
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<std::int64_t> parse_tuple() {
    std::vector<std::int64_t> dims;
    expect('(');
    for (;;) {
      skip_ws();
      if (peek() == ')') {
        ++pos_;
        return dims;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail("dimension too large");
        v = v * 10 + digit;
        ++pos_;
      }
      // Python's 'L' suffix of version-1 headers written by Python 2.
      if (peek() == 'L') ++pos_;
      dims.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
    }
  }

  const std::string& s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

std::uint32_t read_le(const unsigned char* p, int n) {
  std::uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

NpyHeader parse_npy_header(const char* bytes, std::size_t size, const std::string& name) {
  const auto* u = reinterpret_cast<const unsigned char*>(bytes);
  NSAMP_CHECK(size >= kMagicLen + 2 && std::memcmp(bytes, kMagic, kMagicLen) == 0, "read_npy(", name,
              "): not a .npy file (missing the \\x93NUMPY magic)");
  const int major = u[6];
  NSAMP_CHECK(major >= 1 && major <= 3, "read_npy(", name, "): unsupported format version ", major, ".",
              int(u[7]));
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  NSAMP_CHECK(size >= 8 + len_bytes, "read_npy(", name, "): file truncated inside the header");
  const std::size_t header_len = read_le(u + 8, static_cast<int>(len_bytes));
  const std::size_t header_start = 8 + len_bytes;
  NSAMP_CHECK(header_len <= kMaxHeaderLen, "read_npy(", name, "): header length ", header_len,
              " is implausible");
  NSAMP_CHECK(size >= header_start + header_len, "read_npy(", name, "): file truncated inside the header (",
              size, " bytes, header claims ", header_start + header_len, ")");
  const std::string text(bytes + header_start, header_len);

  std::string descr;
  bool fortran = false;
  std::vector<std::int64_t> dims;
  HeaderParser(text, name).parse(&descr, &fortran, &dims);

  NpyHeader h;
  if (descr == "<f4") {
    h.dtype = DType::F32;
  } else if (descr == "<f8") {
    h.dtype = DType::F64;
  } else if (descr == ">f4" || descr == ">f8") {
    NSAMP_FAIL("read_npy(", name, "): big-endian data ('", descr,
               "') is not supported; save as little-endian");
  } else {
    NSAMP_FAIL("read_npy(", name, "): dtype '", descr,
               "' is not supported (need float32 '<f4' or float64 '<f8')");
  }
  NSAMP_CHECK(!fortran, "read_npy(", name, "): Fortran-order arrays are not supported; save with C order");
  NSAMP_CHECK(!dims.empty() && dims.size() <= static_cast<std::size_t>(Shape::kMaxRank), "read_npy(", name,
              "): arrays of rank ", dims.size(), " are not supported (rank 1 to ", Shape::kMaxRank, ")");
  std::int64_t numel = 1;
  for (std::int64_t d : dims) {
    NSAMP_CHECK(d == 0 || numel <= std::numeric_limits<std::int64_t>::max() / 8 / d, "read_npy(", name,
                "): shape too large");
    numel *= d;
  }
  h.shape = Shape::from(dims.data(), static_cast<int>(dims.size()));
  h.data_offset = header_start + header_len;
  const std::size_t need = static_cast<std::size_t>(numel) * dtype_size(h.dtype);
  const std::size_t have = size - h.data_offset;
  NSAMP_CHECK(have >= need, "read_npy(", name, "): data truncated: shape ", h.shape.str(), " of ",
              dtype_name(h.dtype), " needs ", need, " bytes, the file holds ", have);
  NSAMP_CHECK(have == need, "read_npy(", name, "): ", have - need,
              " unexpected bytes after the data of shape ", h.shape.str());
  return h;
}

Tensor read_npy(const std::string& path, Context& ctx, std::optional<DType> as) {
  std::ifstream f(path, std::ios::binary);
  NSAMP_CHECK(f.good(), "read_npy(", path, "): cannot open: ", std::strerror(errno));
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  NSAMP_CHECK(!f.bad(), "read_npy(", path, "): read error");
  const NpyHeader h = parse_npy_header(bytes.data(), bytes.size(), path);
  const char* src = bytes.data() + h.data_offset;
  const DType out_type = as.value_or(h.dtype);
  Tensor t = Tensor::empty(h.shape, out_type, Device::cpu(), ctx);
  const std::int64_t n = t.numel();
  if (n == 0) return t;
  if (out_type == h.dtype) {
    std::memcpy(t.raw_data(), src, t.nbytes());
  } else if (out_type == DType::F32) {
    std::vector<double> tmp(static_cast<std::size_t>(n));
    std::memcpy(tmp.data(), src, tmp.size() * sizeof(double));
    float* d = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) d[i] = static_cast<float>(tmp[static_cast<std::size_t>(i)]);
  } else {
    std::vector<float> tmp(static_cast<std::size_t>(n));
    std::memcpy(tmp.data(), src, tmp.size() * sizeof(float));
    double* d = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i) d[i] = tmp[static_cast<std::size_t>(i)];
  }
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  check_defined("write_npy", t, "tensor");
  NSAMP_CHECK(t.device().is_cpu(), "write_npy(", path, "): ", t.desc(),
              " is not in host memory; copy it with .to(Device::cpu(), ctx) first");
  NSAMP_CHECK(is_floating(t.dtype()), "write_npy(", path,
              "): only float32 and float64 tensors are written, got ", t.desc());
  NSAMP_CHECK(t.rank() >= 1, "write_npy(", path, "): rank-0 tensors are not written; reshape to [1]");
  std::string dims;
  for (int i = 0; i < t.rank(); ++i)
    dims += std::to_string(t.dim(i)) + (t.rank() == 1 || i + 1 < t.rank() ? "," : "");
  std::string header = std::string("{'descr': '") + (t.dtype() == DType::F32 ? "<f4" : "<f8") +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad so that the data starts on a 64-byte boundary, header ending in '\n' (format 1.0).
  const std::size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  NSAMP_CHECK(header.size() <= 65535, "write_npy(", path, "): header too long");

  AtomicFile f(path);
  const unsigned char pre[10] = {0x93,
                                 'N',
                                 'U',
                                 'M',
                                 'P',
                                 'Y',
                                 1,
                                 0,
                                 static_cast<unsigned char>(header.size() & 0xff),
                                 static_cast<unsigned char>(header.size() >> 8)};
  f.write(pre, sizeof(pre));
  f.write(header.data(), header.size());
  if (t.numel() > 0) f.write(t.raw_data(), t.nbytes());
  f.commit();
}

}  // namespace nsamp
