// Training states and parameters in safetensors files.
#include "nsamp/autograd/state_dict.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "nsamp/core/atomic_file.h"

namespace nsamp::ag {

namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    default:
      return "I32";
  }
}

DType from_st(const std::string& s, const std::string& where, const std::string& name) {
  if (s == "F32") return DType::F32;
  if (s == "F64") return DType::F64;
  if (s == "I32") return DType::I32;
  NSAMP_FAIL(where, ": '", name, "' has dtype ", s, " (nsamp reads F32, F64 and I32)");
}

}  // namespace

void StateDict::put(const std::string& name, const Tensor& t, Context& ctx) {
  NSAMP_CHECK(!name.empty() && name != "__metadata__", "StateDict::put: bad name '", name, "'");
  if (!tensors_.count(name)) order_.push_back(name);
  tensors_[name] = t.to(Device::cpu(), ctx);
}

const Tensor& StateDict::at(const std::string& name) const {
  auto it = tensors_.find(name);
  NSAMP_CHECK(it != tensors_.end(), where(), ": holds no tensor '", name, "'");
  return it->second;
}

void StateDict::copy_to(const std::string& name, Tensor& dst, Context& ctx) const {
  const Tensor& t = at(name);
  NSAMP_CHECK(t.dtype() == dst.dtype() && t.shape() == dst.shape(), where(), ": '", name, "' is ", t.desc(),
              " but ", dst.desc(), " is expected");
  copy(t, dst, ctx);
}

void StateDict::set_int(const std::string& key, std::int64_t v) { meta_[key] = std::to_string(v); }
void StateDict::set_u64(const std::string& key, std::uint64_t v) { meta_[key] = std::to_string(v); }
void StateDict::set_double(const std::string& key, double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  meta_[key] = buf;
}

const std::string& StateDict::get(const std::string& key) const {
  auto it = meta_.find(key);
  NSAMP_CHECK(it != meta_.end(), where(), ": holds no value '", key, "'");
  return it->second;
}

std::int64_t StateDict::get_int(const std::string& key) const {
  const std::string& s = get(key);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  NSAMP_CHECK(!s.empty() && *end == '\0' && errno == 0, where(), ": '", key, "' = '", s,
              "' is not an integer");
  return v;
}

std::uint64_t StateDict::get_u64(const std::string& key) const {
  const std::string& s = get(key);
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  NSAMP_CHECK(!s.empty() && s[0] != '-' && *end == '\0' && errno == 0, where(), ": '", key, "' = '", s,
              "' is not an unsigned integer");
  return v;
}

double StateDict::get_double(const std::string& key) const {
  const std::string& s = get(key);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  NSAMP_CHECK(!s.empty() && *end == '\0', where(), ": '", key, "' = '", s, "' is not a number");
  return v;
}

void StateDict::save(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  nlohmann::json meta = {{"format", "nsamp"}};
  for (const auto& [k, v] : meta_) meta[k] = v;
  header["__metadata__"] = meta;
  std::size_t offset = 0;
  for (const std::string& name : order_) {
    const Tensor& t = tensors_.at(name);
    std::vector<std::int64_t> shape;
    for (int d = 0; d < t.rank(); ++d) shape.push_back(t.dim(d));
    header[name] = {
        {"dtype", st_dtype(t.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  AtomicFile f(path);
  unsigned char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<unsigned char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff);
  f.write(len, 8);
  f.write(text.data(), text.size());
  for (const std::string& name : order_) {
    const Tensor& t = tensors_.at(name);
    if (t.numel() > 0) f.write(t.raw_data(), t.nbytes());
  }
  f.commit();
}

StateDict StateDict::load(const std::string& path, Context& ctx) {
  StateDict s;
  s.source_ = path;
  std::ifstream f(path, std::ios::binary);
  NSAMP_CHECK(f.good(), path, ": cannot open: ", std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  NSAMP_CHECK(bytes.size() >= 8, path, ": file too short for a safetensors header");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  NSAMP_CHECK(n <= bytes.size() - 8, path, ": header length ", n, " exceeds the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    NSAMP_FAIL(path, ": malformed header: ", e.what());
  }
  NSAMP_CHECK(header.is_object(), path, ": the header is not a JSON object");
  const std::size_t data0 = 8 + static_cast<std::size_t>(n), data_len = bytes.size() - data0;
  std::uint64_t covered = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    try {
      if (name == "__metadata__") {
        NSAMP_CHECK(e.is_object(), path, ": __metadata__ is not an object");
        for (auto m = e.begin(); m != e.end(); ++m)
          if (m.key() != "format") s.meta_[m.key()] = m.value().get<std::string>();
        continue;
      }
      const DType dt = from_st(e.at("dtype").get<std::string>(), path, name);
      const std::vector<std::int64_t> dims = e.at("shape").get<std::vector<std::int64_t>>();
      NSAMP_CHECK(dims.size() <= static_cast<std::size_t>(Shape::kMaxRank), path, ": '", name, "' has rank ",
                  dims.size());
      for (std::int64_t d : dims) NSAMP_CHECK(d >= 0 && d < (1ll << 40), path, ": '", name, "' has dim ", d);
      const Shape shape = Shape::from(dims.data(), static_cast<int>(dims.size()));
      const std::vector<std::uint64_t> off = e.at("data_offsets").get<std::vector<std::uint64_t>>();
      NSAMP_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_len &&
                      off[1] - off[0] == static_cast<std::uint64_t>(shape.numel()) * dtype_size(dt),
                  path, ": '", name,
                  "' has data offsets outside the file or of the wrong size (a truncated or damaged file)");
      covered += off[1] - off[0];
      Tensor t = Tensor::empty(shape, dt, Device::cpu(), ctx);
      if (t.numel() > 0) std::memcpy(t.raw_data(), bytes.data() + data0 + off[0], t.nbytes());
      s.tensors_[name] = std::move(t);
      s.order_.push_back(name);
    } catch (const nlohmann::json::exception& ex) {
      NSAMP_FAIL(path, ": entry '", name, "' is malformed: ", ex.what());
    }
  }
  // A file cut short keeps a valid header but loses data; one with trailing garbage is not ours either.
  NSAMP_CHECK(covered == data_len, path, ": the tensors cover ", covered, " bytes of ", data_len,
              " (a truncated or damaged file)");
  return s;
}

void put_parameters(StateDict& s, const std::vector<Var>& params, Context& ctx) {
  std::set<std::string> names;
  for (const Var& p : params) {
    NSAMP_CHECK(p.defined() && !p.name().empty(), "put_parameters: every parameter needs a name");
    NSAMP_CHECK(names.insert(p.name()).second, "put_parameters: duplicate name '", p.name(), "'");
    s.put(p.name(), p.value(), ctx);
  }
}

void get_parameters(const StateDict& s, std::vector<Var>& params, Context& ctx,
                    const std::vector<std::string>& ignore_prefixes) {
  std::set<std::string> used;
  for (const Var& p : params) {
    const std::string& name = p.name();
    NSAMP_CHECK(s.has(name), s.source(), ": parameter '", name, "' is not in the file");
    const Tensor& t = s.at(name);
    NSAMP_CHECK(t.dtype() == p.dtype(), s.source(), ": parameter '", name, "' is ", dtype_name(t.dtype()),
                " in the file but ", dtype_name(p.dtype()), " in the model");
    NSAMP_CHECK(t.shape() == p.shape(), s.source(), ": parameter '", name, "' has shape ", t.shape().str(),
                " in the file but ", p.shape().str(), " in the model");
    used.insert(name);
  }
  for (const std::string& n : s.names()) {
    bool ignored = false;
    for (const std::string& pre : ignore_prefixes) ignored = ignored || n.rfind(pre, 0) == 0;
    NSAMP_CHECK(ignored || used.count(n), s.source(), ": the file holds '", n,
                "', which the model does not have");
  }
  for (Var& p : params) copy(s.at(p.name()), p.mutable_value(), ctx);
}

}  // namespace nsamp::ag
