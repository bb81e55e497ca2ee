// Parameters in safetensors files.
#include "nsamp/autograd/params.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

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

}  // namespace

void save_parameters(const std::string& path, const std::vector<Var>& params, Context& ctx) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "nsamp"}};
  std::set<std::string> names;
  std::vector<Tensor> host;
  std::size_t offset = 0;
  for (const Var& p : params) {
    NSAMP_CHECK(p.defined() && !p.name().empty(), "save_parameters(", path,
                "): every parameter needs a name");
    NSAMP_CHECK(names.insert(p.name()).second, "save_parameters(", path, "): duplicate name '", p.name(),
                "'");
    host.push_back(p.value().to(Device::cpu(), ctx));
    const Tensor& t = host.back();
    std::vector<std::int64_t> shape;
    for (int d = 0; d < t.rank(); ++d) shape.push_back(t.dim(d));
    header[p.name()] = {
        {"dtype", st_dtype(t.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    NSAMP_CHECK(f.good(), "save_parameters(", path, "): cannot create ", tmp, ": ", std::strerror(errno));
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<unsigned char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff);
    f.write(reinterpret_cast<const char*>(len), 8);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Tensor& t : host)
      if (t.numel() > 0)
        f.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
    f.flush();
    if (!f.good()) {
      std::remove(tmp.c_str());
      NSAMP_FAIL("save_parameters(", path, "): write failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    NSAMP_FAIL("save_parameters(", path, "): cannot move the file into place: ", std::strerror(err));
  }
}

void load_parameters(const std::string& path, std::vector<Var>& params, Context& ctx) {
  std::ifstream f(path, std::ios::binary);
  NSAMP_CHECK(f.good(), "load_parameters(", path, "): cannot open: ", std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  NSAMP_CHECK(bytes.size() >= 8, "load_parameters(", path, "): file too short for a safetensors header");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  NSAMP_CHECK(n <= bytes.size() - 8, "load_parameters(", path, "): header length ", n, " exceeds the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    NSAMP_FAIL("load_parameters(", path, "): malformed header: ", e.what());
  }
  NSAMP_CHECK(header.is_object(), "load_parameters(", path, "): the header is not a JSON object");
  const std::size_t data0 = 8 + static_cast<std::size_t>(n), data_len = bytes.size() - data0;

  // Read and check everything first: a failure leaves every parameter as it was.
  std::vector<Tensor> staged;
  std::set<std::string> used;
  for (const Var& p : params) {
    const std::string& name = p.name();
    NSAMP_CHECK(header.contains(name), "load_parameters(", path, "): parameter '", name,
                "' is not in the file");
    const nlohmann::json& e = header[name];
    try {
      const std::string dt = e.at("dtype").get<std::string>();
      NSAMP_CHECK(dt == st_dtype(p.dtype()), "load_parameters(", path, "): '", name, "' is ", dt,
                  " in the file but ", dtype_name(p.dtype()), " in the model");
      const std::vector<std::int64_t> dims = e.at("shape").get<std::vector<std::int64_t>>();
      NSAMP_CHECK(dims.size() <= static_cast<std::size_t>(Shape::kMaxRank), "load_parameters(", path, "): '",
                  name, "' has rank ", dims.size());
      const Shape shape = Shape::from(dims.data(), static_cast<int>(dims.size()));
      NSAMP_CHECK(shape == p.shape(), "load_parameters(", path, "): '", name, "' has shape ", shape.str(),
                  " in the file but ", p.shape().str(), " in the model");
      const std::vector<std::uint64_t> off = e.at("data_offsets").get<std::vector<std::uint64_t>>();
      NSAMP_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_len &&
                      off[1] - off[0] == static_cast<std::uint64_t>(shape.numel()) * dtype_size(p.dtype()),
                  "load_parameters(", path, "): '", name,
                  "' has data offsets outside the file or of the wrong size");
      Tensor t = Tensor::empty(shape, p.dtype(), Device::cpu(), ctx);
      if (t.numel() > 0) std::memcpy(t.raw_data(), bytes.data() + data0 + off[0], t.nbytes());
      staged.push_back(std::move(t));
    } catch (const nlohmann::json::exception& ex) {
      NSAMP_FAIL("load_parameters(", path, "): entry '", name, "' is malformed: ", ex.what());
    }
    used.insert(name);
  }
  for (auto it = header.begin(); it != header.end(); ++it)
    NSAMP_CHECK(it.key() == "__metadata__" || used.count(it.key()), "load_parameters(", path,
                "): the file holds '", it.key(), "', which the model does not have");
  for (std::size_t i = 0; i < params.size(); ++i) copy(staged[i], params[i].mutable_value(), ctx);
}

}  // namespace nsamp::ag
