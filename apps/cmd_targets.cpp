// nsamp energy and nsamp sample-target: a target's energy (and gradient) for samples in a .npy file, and
// exact samples of a target.
#include <cmath>
#include <iostream>

#include "commands.h"
#include "nsamp/core/device.h"
#include "nsamp/core/npy.h"
#include "nsamp/targets/target.h"

namespace nsamp::apps {

namespace {
std::string target_help() {
  std::string s = "target name:";
  for (const std::string& n : targets::target_names()) s += " " + n;
  return s;
}
}  // namespace

Action add_energy(CLI::App& app) {
  struct Opts {
    std::string target, in, out, grad, device = "auto";
    std::int64_t dim = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd =
      app.add_subcommand("energy", "Energies E(x) (and gradients) of a target for the rows of a .npy file");
  cmd->add_option("--target", o->target, target_help())->required();
  cmd->add_option("--in", o->in, "samples, [N, d] float32 or float64 .npy")->required();
  cmd->add_option("--out", o->out, "energies, [N] .npy of the input's dtype")->required();
  cmd->add_option("--grad", o->grad, "also write dE/dx, [N, d] .npy");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  return [o] {
    auto t = targets::make_target(o->target, {o->dim});
    Context ctx(parse_device(o->device));
    Tensor host = read_npy(o->in, ctx);
    NSAMP_CHECK(host.rank() == 2 && host.cols() == t->dim(), "energy: ", o->in, " holds ", host.shape().str(),
                " but target ", t->name(), " needs [N, ", t->dim(), "]");
    const Tensor x = host.to(ctx.device(), ctx);
    Tensor e = Tensor::empty(Shape{x.rows()}, x.dtype(), ctx);
    Tensor g;
    if (o->grad.empty()) {
      t->energy(x, e, ctx);
    } else {
      g = Tensor::empty(x.shape(), x.dtype(), ctx);
      t->energy_and_grad(x, e, g, ctx);
      write_npy(o->grad, g.to(Device::cpu(), ctx));
    }
    const Tensor eh = e.to(Device::cpu(), ctx);
    write_npy(o->out, eh);
    // Non-finite energies are data, not failures: say which rows, keep every value.
    std::vector<std::int64_t> bad;
    const std::vector<double> ev = x.dtype() == DType::F64 ? eh.to_vector<double>(ctx) : [&] {
      const std::vector<float> f = eh.to_vector<float>(ctx);
      return std::vector<double>(f.begin(), f.end());
    }();
    for (std::size_t i = 0; i < ev.size(); ++i)
      if (!std::isfinite(ev[i])) bad.push_back(static_cast<std::int64_t>(i));
    std::cerr << "energy: " << t->name() << ", " << x.rows() << " rows on " << ctx.device().str() << " -> "
              << o->out << (o->grad.empty() ? "" : " and " + o->grad) << "\n";
    if (!bad.empty()) {
      std::cerr << "energy: " << bad.size() << " row(s) with a non-finite energy:";
      for (std::size_t i = 0; i < bad.size() && i < 20; ++i) std::cerr << " " << bad[i];
      std::cerr << (bad.size() > 20 ? " ..." : "") << "\n";
    }
    return 0;
  };
}

Action add_sample_target(CLI::App& app) {
  struct Opts {
    std::string target, out, device = "auto", dtype = "float32";
    std::int64_t n = 0, dim = 0;
    std::uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sample-target", "Exact samples of a target into a .npy file");
  cmd->add_option("--target", o->target, target_help())->required();
  cmd->add_option("-n", o->n, "number of samples")
      ->required()
      ->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 40));
  cmd->add_option("--out", o->out, "samples, [N, d] .npy")->required();
  cmd->add_option("--seed", o->seed, "Philox seed")->capture_default_str()->check(non_negative());
  cmd->add_option("--dtype", o->dtype, "float32 | float64")
      ->check(CLI::IsMember({"float32", "float64"}))
      ->capture_default_str();
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_option("--dim", o->dim, "dimension, for the gaussian target");
  return [o] {
    auto t = targets::make_target(o->target, {o->dim});
    Context ctx(parse_device(o->device), o->seed);
    Tensor x = Tensor::empty(Shape{o->n, t->dim()}, o->dtype == "float64" ? DType::F64 : DType::F32, ctx);
    t->sample(x, ctx);
    write_npy(o->out, x.to(Device::cpu(), ctx));
    std::cerr << "sample-target: " << o->n << " samples of " << t->name() << " (seed " << o->seed << ") -> "
              << o->out << "\n";
    return 0;
  };
}

}  // namespace nsamp::apps
