// The weight copies a device holds, reference-counted: what the version plan (version_plan.h)
// and the simulator's fused pass (sim/engine_versions.h) both count. A device holds a few copies
// at most, so a flat vector beats any map.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace pipecast::ir {

// One weight copy: a real version (horizon 0) or a predicted/corrected copy derived from one.
struct CopyKey {
  int32_t version = 0;
  int32_t horizon = 0;  // 0 for real versions; > 0 a prediction; < 0 a correction (negated)
  friend bool operator==(const CopyKey&, const CopyKey&) = default;
};

// Entries with no references are removed, so every entry is a held copy.
class CopySet {
 public:
  void Add(CopyKey k) {
    for (auto& [key, refs] : entries_) {
      if (key == k) {
        ++refs;
        return;
      }
    }
    entries_.push_back({k, 1});
    ++distinct_;
  }
  void Remove(CopyKey k) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first == k) {
        if (--entries_[i].second == 0) {
          --distinct_;
          entries_[i] = entries_.back();
          entries_.pop_back();
        }
        return;
      }
    }
    // Not held: only an invalid program (a microbatch with two stash-using backwards) gets here;
    // the validator reports it, so the count is left as it is.
  }
  bool Contains(CopyKey k) const {
    for (const auto& [key, refs] : entries_)
      if (key == k) return true;
    return false;
  }
  int32_t distinct() const { return distinct_; }

 private:
  std::vector<std::pair<CopyKey, int32_t>> entries_;
  int32_t distinct_ = 0;
};

}  // namespace pipecast::ir
