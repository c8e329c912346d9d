// The flags of `pipecast plan`, registered on the command's argument parser (main.cc).
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace pipecast::cli {

// Adds the `plan` subcommand to `app`, parsing into `options`; returns it for dispatch.
CLI::App* AddPlanSubcommand(CLI::App& app, PlanOptions& options);

}  // namespace pipecast::cli
