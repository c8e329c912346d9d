// Batches, the Loader's seeded epoch order, portable randomness and the synthetic data sets.
// Fashion-MNIST is in idx.cc and the fortunes corpus in text_corpus.cc.
#include "models/data.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <numeric>

#include "common/check.h"

namespace pipecast::models {
namespace {

class ClassificationDataset final : public Dataset {
 public:
  ClassificationDataset(std::shared_ptr<const ClassificationData> data, std::string name)
      : data_(std::move(data)), name_(std::move(name)) {
    PIPECAST_CHECK(data_ != nullptr);
    PIPECAST_CHECK(data_->x.size() == static_cast<size_t>(data_->count) * data_->features &&
                   data_->labels.size() == static_cast<size_t>(data_->count))
        << name_ << ": inconsistent sizes";
  }
  std::string name() const override { return name_; }
  int64_t size() const override { return data_->count; }
  int32_t rows_per_example() const override { return 1; }
  int32_t columns() const override { return data_->features; }
  int32_t num_classes() const override { return data_->num_classes; }

 protected:
  void Fill(int64_t i, float* x, int32_t* labels) const override {
    const float* src = data_->x.data() + i * data_->features;
    if (x != nullptr) std::copy(src, src + data_->features, x);
    if (labels != nullptr) labels[0] = data_->labels[static_cast<size_t>(i)];
  }

 private:
  std::shared_ptr<const ClassificationData> data_;
  std::string name_;
};

class TokenWindows final : public Dataset {
 public:
  TokenWindows(std::shared_ptr<const std::vector<int32_t>> tokens, int32_t sequence,
               int32_t vocab_size, std::string name)
      : tokens_(std::move(tokens)),
        sequence_(sequence),
        vocab_size_(vocab_size),
        name_(std::move(name)) {}
  std::string name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(tokens_->size() - 1) / sequence_; }
  int32_t rows_per_example() const override { return sequence_; }
  int32_t columns() const override { return 1; }
  int32_t num_classes() const override { return vocab_size_; }

 protected:
  void Fill(int64_t i, float* x, int32_t* labels) const override {
    const int32_t* src = tokens_->data() + i * sequence_;
    for (int32_t r = 0; r < sequence_; ++r) {
      if (x != nullptr) x[r] = static_cast<float>(src[r]);
      if (labels != nullptr) labels[r] = src[r + 1];
    }
  }

 private:
  std::shared_ptr<const std::vector<int32_t>> tokens_;
  int32_t sequence_;
  int32_t vocab_size_;
  std::string name_;
};

// Strict decimal integer (no sign other than '-', no spaces).
bool ParseInt(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Randomness.

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t UniformBelow(Rng& rng, uint64_t n) {
  PIPECAST_CHECK(n > 0);
  // Reject the top partial block of 2^64 so that every residue is equally likely.
  const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n + 1) % n;
  uint64_t r;
  do {
    r = rng();
  } while (r > limit);
  return r % n;
}

double Uniform01(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double StandardNormal(Rng& rng) {
  const double u1 = 1.0 - Uniform01(rng);  // (0, 1]: log is finite
  const double u2 = Uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// ---------------------------------------------------------------------------------------------
// Dataset and Loader.

Batch Dataset::Gather(std::span<const int64_t> indices) const {
  const int64_t rows = static_cast<int64_t>(indices.size()) * rows_per_example();
  Batch batch;
  batch.x.resize(rows, columns());
  batch.labels.resize(static_cast<size_t>(rows));
  GatherInto(indices, std::span<float>(batch.x.data(), static_cast<size_t>(batch.x.size())),
             batch.labels);
  return batch;
}

void Dataset::GatherInto(std::span<const int64_t> indices, std::span<float> x,
                         std::span<int32_t> labels) const {
  const int64_t rpe = rows_per_example();
  const int64_t cols = columns();
  const auto n = static_cast<int64_t>(indices.size());
  PIPECAST_CHECK(x.empty() || static_cast<int64_t>(x.size()) == n * rpe * cols)
      << name() << ": " << x.size() << " floats for " << n << " examples";
  PIPECAST_CHECK(labels.empty() || static_cast<int64_t>(labels.size()) == n * rpe)
      << name() << ": " << labels.size() << " labels for " << n << " examples";
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = indices[static_cast<size_t>(k)];
    PIPECAST_CHECK(i >= 0 && i < size()) << name() << ": example " << i << " of " << size();
    Fill(i, x.empty() ? nullptr : x.data() + k * rpe * cols,
         labels.empty() ? nullptr : labels.data() + k * rpe);
  }
}

Batch Dataset::Range(int64_t first, int64_t count) const {
  PIPECAST_CHECK(first >= 0 && count >= 0 && first + count <= size())
      << name() << ": range " << first << "+" << count << " of " << size();
  std::vector<int64_t> indices(static_cast<size_t>(count));
  std::iota(indices.begin(), indices.end(), first);
  return Gather(indices);
}

std::string DataPosition::ToString() const {
  return "epoch=" + std::to_string(epoch) + " index=" + std::to_string(index);
}

Result<DataPosition> ParsePosition(std::string_view text) {
  const std::string_view kEpoch = "epoch=", kIndex = " index=";
  const size_t sep = text.find(kIndex);
  DataPosition p;
  if (text.substr(0, kEpoch.size()) != kEpoch || sep == std::string_view::npos ||
      !ParseInt(text.substr(kEpoch.size(), sep - kEpoch.size()), &p.epoch) ||
      !ParseInt(text.substr(sep + kIndex.size()), &p.index) || p.epoch < 0 || p.index < 0) {
    return ParseError("expected a data position such as 'epoch=3 index=120', got '" +
                      std::string(text) + "'");
  }
  return p;
}

Loader::Loader(std::shared_ptr<const Dataset> data, uint64_t seed, bool shuffle)
    : data_(std::move(data)), seed_(seed), shuffle_(shuffle) {
  PIPECAST_CHECK(data_ != nullptr);
}

int64_t Loader::BatchesPerEpoch(int32_t batch_size) const {
  PIPECAST_CHECK(batch_size > 0 && batch_size <= data_->size())
      << data_->name() << ": batch size " << batch_size << " with " << data_->size() << " examples";
  return data_->size() / batch_size;
}

DataPosition Loader::PositionOf(int64_t batch_index, int32_t batch_size) const {
  PIPECAST_CHECK(batch_index >= 0);
  const int64_t per_epoch = BatchesPerEpoch(batch_size);
  return {batch_index / per_epoch, batch_index % per_epoch};
}

int64_t Loader::BatchIndex(const DataPosition& position, int32_t batch_size) const {
  const int64_t per_epoch = BatchesPerEpoch(batch_size);
  PIPECAST_CHECK(position.epoch >= 0 && position.index >= 0 && position.index < per_epoch)
      << position.ToString() << " with " << per_epoch << " batches per epoch";
  return position.epoch * per_epoch + position.index;
}

Batch Loader::Get(int64_t batch_index, int32_t batch_size) const {
  return Get(PositionOf(batch_index, batch_size), batch_size);
}

Batch Loader::Get(const DataPosition& position, int32_t batch_size) const {
  BatchIndex(position, batch_size);  // checks the position
  std::vector<int64_t> indices(static_cast<size_t>(batch_size));
  CopyOrder(position.epoch, position.index * batch_size, indices);
  return data_->Gather(indices);
}

void Loader::Fill(int64_t batch_index, int32_t batch_size, std::span<int64_t> indices,
                  std::span<float> x, std::span<int32_t> labels) const {
  PIPECAST_CHECK(static_cast<int64_t>(indices.size()) == batch_size);
  const DataPosition position = PositionOf(batch_index, batch_size);
  CopyOrder(position.epoch, position.index * batch_size, indices);
  data_->GatherInto(indices, x, labels);
}

std::vector<int64_t> Loader::EpochOrder(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(data_->size()));
  CopyOrder(epoch, 0, order);
  return order;
}

void Loader::CopyOrder(int64_t epoch, int64_t first, std::span<int64_t> out) const {
  PIPECAST_CHECK(epoch >= 0);
  PIPECAST_CHECK(first >= 0 && first + static_cast<int64_t>(out.size()) <= data_->size());
  std::lock_guard<std::mutex> lock(mu_);
  CachedOrder* slot = nullptr;
  for (CachedOrder& c : cache_)
    if (c.epoch == epoch) slot = &c;
  if (slot == nullptr) {
    slot = &cache_[older_];
    older_ = 1 - older_;
    std::vector<int64_t>& order = slot->order;
    order.resize(static_cast<size_t>(data_->size()));
    std::iota(order.begin(), order.end(), int64_t{0});
    if (shuffle_) {  // Fisher-Yates from a stream that depends only on (seed, epoch)
      Rng rng(SplitMix64(seed_ ^ SplitMix64(static_cast<uint64_t>(epoch))));
      for (size_t i = order.size(); i > 1; --i) {
        std::swap(order[i - 1], order[UniformBelow(rng, i)]);
      }
    }
    slot->epoch = epoch;
  }
  std::copy_n(slot->order.begin() + first, out.size(), out.begin());
}

// ---------------------------------------------------------------------------------------------
// Classification.

std::shared_ptr<const Dataset> MakeClassificationDataset(
    std::shared_ptr<const ClassificationData> data, std::string name) {
  return std::make_shared<ClassificationDataset>(std::move(data), std::move(name));
}

ClassificationData MakeGaussianClusters(int64_t count, int32_t features, int32_t num_classes,
                                        double separation, double noise, uint64_t seed) {
  PIPECAST_CHECK(count >= 0 && features >= 1 && num_classes >= 1 && num_classes <= 256)
      << count << " examples, " << features << " features, " << num_classes << " classes";
  Rng rng(SplitMix64(seed));
  std::vector<double> centres(static_cast<size_t>(num_classes) * features);
  for (double& c : centres) c = separation * StandardNormal(rng);
  // Balanced labels in a seeded order.
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[UniformBelow(rng, i)]);
  ClassificationData data;
  data.count = count;
  data.features = features;
  data.num_classes = num_classes;
  data.x.resize(static_cast<size_t>(count) * features);
  data.labels.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const int32_t label = static_cast<int32_t>(order[static_cast<size_t>(i)] % num_classes);
    data.labels[static_cast<size_t>(i)] = static_cast<uint8_t>(label);
    for (int32_t f = 0; f < features; ++f) {
      const double centre = centres[static_cast<size_t>(label) * features + f];
      data.x[static_cast<size_t>(i) * features + f] =
          static_cast<float>(centre + noise * StandardNormal(rng));
    }
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Tokens.

TokenCorpus MakeSyntheticTokens(int64_t length, int32_t vocab_size, double predictability,
                                double heldout_fraction, uint64_t seed) {
  PIPECAST_CHECK(length >= 0 && vocab_size >= 1 && predictability >= 0 && predictability <= 1 &&
                 heldout_fraction >= 0 && heldout_fraction < 1);
  Rng rng(SplitMix64(seed));
  const uint64_t v = static_cast<uint64_t>(vocab_size);
  std::vector<int32_t> successor(v);
  for (int32_t& s : successor) s = static_cast<int32_t>(UniformBelow(rng, v));
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool follow = i > 0 && Uniform01(rng) < predictability;
    tokens[i] = follow ? successor[static_cast<size_t>(tokens[i - 1])]
                       : static_cast<int32_t>(UniformBelow(rng, v));
  }
  TokenCorpus corpus;
  corpus.vocab_size = vocab_size;
  const auto heldout =
      static_cast<size_t>(std::floor(static_cast<double>(length) * heldout_fraction));
  corpus.heldout.assign(tokens.end() - static_cast<std::ptrdiff_t>(heldout), tokens.end());
  tokens.resize(tokens.size() - heldout);
  corpus.train = std::move(tokens);
  return corpus;
}

Result<std::shared_ptr<const Dataset>> MakeTokenWindows(
    std::shared_ptr<const std::vector<int32_t>> tokens, int32_t sequence, int32_t vocab_size,
    std::string name) {
  PIPECAST_CHECK(tokens != nullptr);
  if (sequence < 1) {
    return InvalidArgument(name + ": sequence length must be positive, got " +
                           std::to_string(sequence));
  }
  if (tokens->size() < static_cast<size_t>(sequence) + 1) {
    return InvalidArgument(name + ": " + std::to_string(tokens->size()) +
                           " tokens are too few for one window of " + std::to_string(sequence) +
                           " (need sequence + 1)");
  }
  for (size_t i = 0; i < tokens->size(); ++i) {
    const int32_t t = (*tokens)[i];
    if (t < 0 || t >= vocab_size) {
      return InvalidArgument(name + ": token " + std::to_string(t) + " at " + std::to_string(i) +
                             " is outside the vocabulary of " + std::to_string(vocab_size));
    }
  }
  return std::shared_ptr<const Dataset>(
      std::make_shared<TokenWindows>(std::move(tokens), sequence, vocab_size, std::move(name)));
}

}  // namespace pipecast::models
