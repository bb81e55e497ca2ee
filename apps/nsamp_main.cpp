// nsamp: the command line (DESIGN.md's contract). Subcommands: info (the default), energy, sample-target,
// reference, eval, train, sample, bench.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "nsamp/core/config.h"
#include "nsamp/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"nsamp: neural samplers for Boltzmann densities (C++/CUDA)"};
  app.set_version_flag("--version", std::string("nsamp ") + nsamp::kVersion);
  app.require_subcommand(0, 1);
  const nsamp::apps::Action info = nsamp::apps::add_info(app);
  const nsamp::apps::Action energy = nsamp::apps::add_energy(app);
  const nsamp::apps::Action sample_target = nsamp::apps::add_sample_target(app);
  const nsamp::apps::Action reference = nsamp::apps::add_reference(app);
  const nsamp::apps::Action eval = nsamp::apps::add_eval(app);
  const nsamp::apps::Action train = nsamp::apps::add_train(app);
  const nsamp::apps::Action sample = nsamp::apps::add_sample(app);
  const nsamp::apps::Action bench = nsamp::apps::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("energy")) return energy();
    if (app.got_subcommand("sample-target")) return sample_target();
    if (app.got_subcommand("reference")) return reference();
    if (app.got_subcommand("eval")) return eval();
    if (app.got_subcommand("train")) return train();
    if (app.got_subcommand("sample")) return sample();
    if (app.got_subcommand("bench")) return bench();
    return info();
  } catch (const nsamp::Error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
