// nsamp bench: the benchmark executables (bench/) behind one command. `nsamp bench NAME [FLAGS...]` runs
// bench_NAME with the flags (it replaces this process, so its JSON lines, exit status and --help are its
// own); `nsamp bench --list` names them. They are found beside the nsamp executable (the build tree's bin/)
// or in ../libexec/nsamp (an installed tree).
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "nsamp/core/error.h"

namespace nsamp::apps {

namespace fs = std::filesystem;

namespace {

struct BenchInfo {
  const char* name;
  const char* what;
};

const BenchInfo kBenches[] = {
    {"kernels", "time per call of the kernel families (fills, broadcasting, activations, GEMM, reductions)"},
    {"mlp", "MLP forward and forward + backward: whole network as one tape node against layer by layer"},
    {"energy", "energy + gradient evaluations per second of every built-in target"},
    {"metrics", "x-W2, Sinkhorn and MMD seconds per call against the sample count"},
    {"path", "one PIS / DIS / DDS training step per method and loss, with its peak memory"},
    {"dikl", "one DiKL iteration at the paper's MoG-40 settings, split into its phases"},
    {"mc_score", "iDEM's Monte Carlo noisy score: point-samples per second per target and K"},
    {"idem", "one iDEM and one IW-SM inner step at the paper's GMM-40 settings, and a reverse-SDE pass"},
    {"egnn", "EGNN forward and forward + backward per sample for DW-4, LJ-13 and LJ-55"},
};

fs::path self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

fs::path find_bench(const std::string& name) {
  const fs::path dir = self_dir();
  for (const fs::path& p : {dir / ("bench_" + name), dir / ".." / "libexec" / "nsamp" / ("bench_" + name)})
    if (fs::exists(p)) return p;
  return {};
}

std::string names() {
  std::string s;
  for (const BenchInfo& b : kBenches) s += (s.empty() ? "" : ", ") + std::string(b.name);
  return s;
}

}  // namespace

Action add_bench(CLI::App& app) {
  struct Opts {
    std::string name;
    bool list = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Run a benchmark (JSON lines on stdout): nsamp bench NAME [its flags; NAME --help lists them]");
  cmd->add_flag("--list", o->list, "list the benchmarks");
  cmd->add_option("name", o->name, "benchmark: " + names());
  cmd->prefix_command();  // everything after NAME belongs to the benchmark
  cmd->set_help_flag();   // so that `nsamp bench NAME --help` reaches the benchmark
  return [o, cmd] {
    const std::vector<std::string> rest = cmd->remaining();
    const bool help = o->name == "--help" || o->name == "-h" ||
                      (o->name.empty() && std::find(rest.begin(), rest.end(), "--help") != rest.end());
    if (o->list || o->name.empty() || help) {
      std::cout
          << "usage: nsamp bench NAME [FLAGS...]   (JSON lines on stdout; --out FILE also saves them)\n";
      std::cout << "benchmarks (nsamp bench NAME --help for the flags of one):\n";
      for (const BenchInfo& b : kBenches) {
        const bool here = !find_bench(b.name).empty();
        std::cout << "  " << b.name << std::string(10 - std::string(b.name).size(), ' ') << b.what
                  << (here ? "" : "  [not built]") << "\n";
      }
      return o->list || help ? 0 : 2;
    }
    bool known = false;
    for (const BenchInfo& b : kBenches) known = known || o->name == b.name;
    NSAMP_CHECK(known, "bench: unknown benchmark '", o->name, "' (valid: ", names(), ")");
    const fs::path exe = find_bench(o->name);
    NSAMP_CHECK(!exe.empty(), "bench: bench_", o->name, " is not beside ", self_dir().string(),
                " (the benchmarks build with the apps: NSAMP_BUILD_APPS=ON)");
    std::vector<std::string> args = cmd->remaining();  // in their order
    std::vector<char*> argv;
    std::string exe_s = exe.string();
    argv.push_back(exe_s.data());
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::cout.flush();
    ::execv(exe_s.c_str(), argv.data());
    NSAMP_FAIL("bench: cannot run ", exe_s, ": ", std::strerror(errno));
  };
}

}  // namespace nsamp::apps
