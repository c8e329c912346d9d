// "Did you mean" suggestions for misspelt keys, methods, parameters and tokens: one edit
// distance and one rule for what counts as a likely typo, shared by every parser and checker.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pipecast::ir {

// Case-insensitive Levenshtein distance.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is a likely typo: at most a third of the word's letters
// (at least one) differ, and not the whole candidate. "" otherwise. The first of equally close
// candidates wins, so the answer is deterministic.
std::string ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace pipecast::ir
