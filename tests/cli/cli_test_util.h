// Helpers for the tests that run the `pipecast` binary as a user would.
#pragma once

#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace pipecast::testing {

struct Output {
  int status = -1;
  std::string text;  // stdout and stderr together
};

// Runs `pipecast <args>` through the shell (so args may redirect) and collects its output.
inline Output Pipecast(const std::string& args) {
  const std::string cmd = std::string(PIPECAST_EXE) + " " + args + " 2>&1";
  Output out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.text.append(buf.data(), n);
  const int raw = pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// A fresh, empty directory for one test.
inline std::string TempDir(const std::string& name) {
  // Per process: test suites of other checkouts may run at the same time on the same machine.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("pipecast_cli_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `text` to dir/name and returns the path.
inline std::string WriteFile(const std::string& dir, const std::string& name,
                             const std::string& text) {
  std::ofstream(dir + "/" + name) << text;
  return dir + "/" + name;
}

// `pipecast <args>` exits with status 1 and says `message`.
inline ::testing::AssertionResult FailsWith(const std::string& args, const std::string& message) {
  const Output o = Pipecast(args);
  if (o.status == 1 && o.text.find(message) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "pipecast " << args << " exited " << o.status << " without '" << message << "':\n"
         << o.text;
}

}  // namespace pipecast::testing
