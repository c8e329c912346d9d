// Character-level corpora: the fortunes package and any text (data.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.h"
#include "models/data.h"

namespace pipecast::models {
namespace {

constexpr char kFortunesInstallHint[] = "install it with `apt-get install fortunes`";

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One fortune file, cleaned: CR dropped, "x\b" overstrikes resolved to what a terminal shows,
// each "%" separator line replaced by an empty line, and a final newline ensured.
std::string CleanFortuneFile(const std::string& raw) {
  std::string text;
  text.reserve(raw.size());
  for (char c : raw) {
    if (c == '\r') continue;
    if (c == '\b') {
      if (!text.empty() && text.back() != '\n') text.pop_back();
      continue;
    }
    text.push_back(c);
  }
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);  // never npos: text ends with '\n'
    const std::string_view line(text.data() + start, end - start);
    if (line != "%") out.append(line);
    out.push_back('\n');
    start = end + 1;
  }
  return out;
}

}  // namespace

Result<std::vector<int32_t>> TokenCorpus::Encode(std::string_view text) const {
  std::array<int32_t, 256> id;
  id.fill(-1);
  for (size_t i = 0; i < vocabulary.size(); ++i) {
    id[static_cast<unsigned char>(vocabulary[i])] = static_cast<int32_t>(i);
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const int32_t t = id[static_cast<unsigned char>(text[i])];
    if (t < 0) {
      return InvalidArgument("character code " +
                             std::to_string(static_cast<unsigned char>(text[i])) + " at offset " +
                             std::to_string(i) + " is not in the vocabulary");
    }
    ids.push_back(t);
  }
  return ids;
}

std::string TokenCorpus::Decode(std::span<const int32_t> ids) const {
  std::string text;
  text.reserve(ids.size());
  for (int32_t t : ids) {
    PIPECAST_CHECK(t >= 0 && static_cast<size_t>(t) < vocabulary.size())
        << "token " << t << " with a vocabulary of " << vocabulary.size() << " characters";
    text.push_back(vocabulary[static_cast<size_t>(t)]);
  }
  return text;
}

TokenCorpus MakeCharCorpus(std::string_view text, double heldout_fraction) {
  PIPECAST_CHECK(heldout_fraction >= 0 && heldout_fraction < 1) << heldout_fraction;
  std::array<bool, 256> present{};
  for (char c : text) present[static_cast<unsigned char>(c)] = true;
  TokenCorpus corpus;
  for (int b = 0; b < 256; ++b) {
    if (present[static_cast<size_t>(b)]) corpus.vocabulary.push_back(static_cast<char>(b));
  }
  corpus.vocab_size = static_cast<int32_t>(corpus.vocabulary.size());
  std::vector<int32_t> ids = std::move(corpus.Encode(text)).value();  // every byte is present
  const auto heldout =
      static_cast<size_t>(std::floor(static_cast<double>(ids.size()) * heldout_fraction));
  corpus.heldout.assign(ids.end() - static_cast<std::ptrdiff_t>(heldout), ids.end());
  ids.resize(ids.size() - heldout);
  corpus.train = std::move(ids);
  return corpus;
}

Result<std::string> ReadFortunesText(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("fortunes not found at " + dir + ": " + kFortunesInstallHint);
  }
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // symlink_status: the package's *.u8 names are links to the plain files.
    if (!fs::is_regular_file(it->symlink_status(ec))) continue;
    if (name.empty() || name[0] == '.' || EndsWith(name, ".dat")) continue;
    names.push_back(name);
  }
  if (ec) return IoError(dir + ": cannot list the directory: " + ec.message());
  if (names.empty()) {
    return NotFound("fortunes not found at " + dir +
                    " (no fortune files): " + kFortunesInstallHint);
  }
  std::sort(names.begin(), names.end());
  std::string text;
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    if (!in.is_open()) return IoError(path + ": cannot open");
    std::ostringstream raw;
    raw << in.rdbuf();
    if (in.bad()) return IoError(path + ": read failed");
    text += CleanFortuneFile(raw.str());
  }
  return text;
}

Result<TokenCorpus> LoadFortunes(const std::string& dir, double heldout_fraction) {
  if (!(heldout_fraction >= 0 && heldout_fraction < 1)) {
    return InvalidArgument("held-out fraction must be in [0, 1)");
  }
  Result<std::string> text = ReadFortunesText(dir);
  if (!text.ok()) return text.status();
  return MakeCharCorpus(*text, heldout_fraction);
}

}  // namespace pipecast::models
