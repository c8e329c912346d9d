// Data sets for the CPU executor: Fashion-MNIST (Debian's dataset-fashion-mnist), a
// character-level corpus from Debian's fortunes, and seeded synthetic sets for fast tests;
// plus one batch interface over all of them with a deterministic, seeded epoch order.
//
// Everything is deterministic across platforms: random numbers come from std::mt19937_64 (whose
// output the standard fixes) through our own uniform/normal transforms, never through
// std::*_distribution (whose output differs between standard libraries).
//
// A Dataset is immutable once built; all its methods and Loader's are const and thread-safe, so
// every stage's thread may fetch batches concurrently (Loader caches epoch orders under a lock).
// docs/data.md describes the files, the formats and the sampling.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "models/layer.h"

namespace pipecast::models {

// Where the Debian packages put their files.
inline constexpr char kFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
inline constexpr char kFortunesDir[] = "/usr/share/games/fortunes";

// ---------------------------------------------------------------------------------------------
// Batches.

// Rows of examples and one label per row. Classification: x is batch × features, labels the
// classes. Token windows (GPT): x is (batch·sequence) × 1 holding token ids as floats (exact below
// 2^24), labels the next token of each row.
struct Batch {
  Matrix<float> x;
  std::vector<int32_t> labels;
};

// An immutable collection of examples; example i contributes rows_per_example() rows.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::string name() const = 0;
  virtual int64_t size() const = 0;              // number of examples
  virtual int32_t rows_per_example() const = 0;  // 1, or the sequence length
  virtual int32_t columns() const = 0;           // features, or 1 for token ids
  virtual int32_t num_classes() const = 0;       // classes, or the vocabulary size

  // The examples `indices`, in that order. REQUIRES: every index in [0, size()).
  Batch Gather(std::span<const int64_t> indices) const;
  // The same into caller memory, allocating nothing: x (indices × rows_per_example() ×
  // columns() floats) and/or labels (indices × rows_per_example()); either may be empty.
  void GatherInto(std::span<const int64_t> indices, std::span<float> x,
                  std::span<int32_t> labels) const;
  // Examples first .. first+count−1 in storage order (evaluation). REQUIRES: in range.
  Batch Range(int64_t first, int64_t count) const;

 protected:
  // Writes example i: rows_per_example() rows of columns() floats at x, and as many labels;
  // a null pointer skips that part.
  virtual void Fill(int64_t i, float* x, int32_t* labels) const = 0;
};

// Where a training run is in its data: batch `index` (counted in batches of the run's batch size)
// of epoch `epoch`. Two integers: ToString gives "epoch=E index=I", which ParsePosition reads.
struct DataPosition {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const DataPosition&) const = default;
  std::string ToString() const;
};
Result<DataPosition> ParsePosition(std::string_view text);

// Deterministic access to batches of a Dataset. Epoch e visits the examples in a permutation
// drawn from (seed, e) (identity when shuffle is false); an epoch has floor(size/batch_size)
// batches (the partial last batch is dropped, as torch's drop_last=True), so batch n of a run is
// batch n mod BatchesPerEpoch of epoch n div BatchesPerEpoch, whatever was fetched before. The
// executor fetches micro-batch j of mini-batch n as Get(n·M + j, micro_batch_size).
class Loader {
 public:
  // REQUIRES: data != nullptr.
  Loader(std::shared_ptr<const Dataset> data, uint64_t seed, bool shuffle = true);

  const Dataset& data() const { return *data_; }
  // REQUIRES: 0 < batch_size <= data().size().
  int64_t BatchesPerEpoch(int32_t batch_size) const;
  DataPosition PositionOf(int64_t batch_index, int32_t batch_size) const;
  int64_t BatchIndex(const DataPosition& position, int32_t batch_size) const;

  // Batch `batch_index` of the run. REQUIRES: batch_index >= 0, batch_size as above.
  Batch Get(int64_t batch_index, int32_t batch_size) const;
  Batch Get(const DataPosition& position, int32_t batch_size) const;

  // Batch `batch_index` into caller memory (Dataset::GatherInto), allocating nothing once the
  // batch's epoch order is cached; `indices` receives the batch's example indices.
  // REQUIRES: indices.size() == batch_size; x and labels empty or of the batch's size.
  void Fill(int64_t batch_index, int32_t batch_size, std::span<int64_t> indices, std::span<float> x,
            std::span<int32_t> labels) const;

  // The example order of `epoch` (a permutation of 0..size−1).
  std::vector<int64_t> EpochOrder(int64_t epoch) const;

 private:
  // Copies `count` entries of epoch `epoch`'s order from `first` into `out`, computing the order
  // into the older of two cached slots if needed (storage reused: no allocation after the
  // first two epochs). Thread-safe.
  void CopyOrder(int64_t epoch, int64_t first, std::span<int64_t> out) const;

  std::shared_ptr<const Dataset> data_;
  uint64_t seed_;
  bool shuffle_;
  mutable std::mutex mu_;
  // The two most recent epochs' orders: stages fetch around one epoch boundary at a time.
  struct CachedOrder {
    int64_t epoch = -1;
    std::vector<int64_t> order;
  };
  mutable CachedOrder cache_[2];
  mutable int32_t older_ = 0;  // the slot to overwrite next
};

// ---------------------------------------------------------------------------------------------
// Classification data (Fashion-MNIST, synthetic clusters).

struct ClassificationData {
  int64_t count = 0;
  int32_t features = 0;     // 784 for Fashion-MNIST (28×28, row-major)
  int32_t num_classes = 0;  // at most 256
  std::vector<float> x;     // count × features, row-major; Fashion-MNIST pixels are byte/255
  std::vector<uint8_t> labels;
};

std::shared_ptr<const Dataset> MakeClassificationDataset(
    std::shared_ptr<const ClassificationData> data, std::string name);

// One IDX file (the MNIST format: a big-endian header 0x00 0x00 type ndims, then ndims uint32
// dimensions, then the values), unsigned-byte type only, read through zlib (gzip-compressed or
// not). Errors name the file and what is wrong: missing (NotFound), a gzip error (IoError), a bad
// magic number, type or rank, or a data length that does not match the header (ParseError).
struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> values;
};
// max_items >= 0 reads only the first max_items entries of dimension 0 (and then does not check
// the rest of the file); -1 reads and checks everything.
Result<IdxArray> ReadIdxFile(const std::string& path, int64_t max_items = -1);

enum class FashionMnistSplit { kTrain, kTest };  // 60000 and 10000 images

// One split of Fashion-MNIST from `dir` (train-images-idx3-ubyte.gz and
// train-labels-idx1-ubyte.gz, or t10k-*): images 28×28, labels 0..9, counts equal. A missing
// directory or file gives NotFound "Fashion-MNIST not found at <path>: install it with
// `apt-get install dataset-fashion-mnist`". max_examples >= 0 loads only the first ones.
Result<ClassificationData> LoadFashionMnist(FashionMnistSplit split,
                                            const std::string& dir = kFashionMnistDir,
                                            int64_t max_examples = -1);

// Seeded Gaussian clusters: class c has a centre drawn from N(0, 1) per feature, scaled by
// `separation`; example i has label i mod num_classes (balanced) and x = centre + N(0, noise²).
// The examples' storage order is then shuffled with the seed. REQUIRES: count >= 0,
// features >= 1, 1 <= num_classes <= 256.
ClassificationData MakeGaussianClusters(int64_t count, int32_t features, int32_t num_classes,
                                        double separation, double noise, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Token data (the fortunes corpus, synthetic sequences).

struct TokenCorpus {
  int32_t vocab_size = 0;
  // For a character corpus, the byte each id stands for, sorted (id i is vocabulary[i]); empty
  // for synthetic tokens.
  std::string vocabulary;
  std::vector<int32_t> train;
  std::vector<int32_t> heldout;  // the last heldout_fraction of the text, by position

  // Characters to ids and back. Encode fails on a byte that is not in the vocabulary.
  Result<std::vector<int32_t>> Encode(std::string_view text) const;
  std::string Decode(std::span<const int32_t> ids) const;
};

// A character-level (byte-level) corpus of `text`: the vocabulary is the sorted set of bytes
// present, and the last floor(size·heldout_fraction) ids are held out.
// REQUIRES: 0 <= heldout_fraction < 1.
TokenCorpus MakeCharCorpus(std::string_view text, double heldout_fraction);

// The text of the fortunes package: every regular file in `dir` (not *.dat, not symlinks such as
// *.u8, no subdirectories), in sorted file-name order, with each "%" separator line replaced by an
// empty line, CR removed, and overstrike sequences ("x\b", for bold and underline) resolved to
// the character shown. A missing directory or no files gives NotFound naming
// `apt-get install fortunes`.
Result<std::string> ReadFortunesText(const std::string& dir = kFortunesDir);
Result<TokenCorpus> LoadFortunes(const std::string& dir = kFortunesDir,
                                 double heldout_fraction = 0.1);

// Seeded synthetic tokens with learnable structure: a first-order Markov chain in which token a
// is followed by a fixed, seeded successor f(a) with probability `predictability`, otherwise by a
// uniform token. REQUIRES: length >= 0, vocab_size >= 1, predictability in [0, 1].
TokenCorpus MakeSyntheticTokens(int64_t length, int32_t vocab_size, double predictability,
                                double heldout_fraction, uint64_t seed);

// Next-token windows over `tokens`: example i is the window starting at i·sequence, x = tokens
// [i·s, i·s + s), labels = tokens [i·s + 1, i·s + s + 1); size() = (tokens − 1) div sequence.
// Errors: sequence < 1, fewer than sequence + 1 tokens, an id outside [0, vocab_size).
Result<std::shared_ptr<const Dataset>> MakeTokenWindows(
    std::shared_ptr<const std::vector<int32_t>> tokens, int32_t sequence, int32_t vocab_size,
    std::string name);

// ---------------------------------------------------------------------------------------------
// Portable seeded randomness (shared by the synthetic sets and the epoch shuffles).

// SplitMix64, to derive independent seeds: Mix(seed ^ stream).
uint64_t SplitMix64(uint64_t x);
// Uniform in [0, n) without modulo bias. REQUIRES: n > 0.
uint64_t UniformBelow(Rng& rng, uint64_t n);
// Uniform in [0, 1) with 53 random bits.
double Uniform01(Rng& rng);
// Standard normal (Box-Muller, one value per call).
double StandardNormal(Rng& rng);

}  // namespace pipecast::models
