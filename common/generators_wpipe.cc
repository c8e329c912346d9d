// WPipe (Yang et al., "Group-based Interleaved Pipeline Parallelism for Large-scale DNN
// Training", ICLR'22): double-grouped weight updates (2GW). Each device k holds two chunks, virtual
// stage k of the first group G0 and virtual stage D + k of the second group G1, so a microbatch
// runs through G0 on devices 0 .. D-1 and then through G1 on devices 0 .. D-1.
//
// Device k's program is a sequence of windows, each closed by a Step. Window p (0-based) holds
// the forwards of minibatch p on both chunks, G1's backwards of minibatch p and G0's backwards
// of minibatch p - 1: in G0 the next period's forwards move in front of the current period's
// backwards, G1 keeps its order. The window after the last minibatch holds only G0's last
// backwards. So Step p + 1 applies G1's gradients of minibatch p and G0's of minibatch p - 1,
// which is the paper's alternating update of the two groups (the first Step has nothing for G0,
// the last nothing for G1; a Step leaves a stage without gradients as it is). Every F and G1's
// B use the current weights, version p in window p; G0's B of minibatch p runs in window p + 1
// and uses the older buffer, version p, the weights its F used. docs/methods.md states the rule.
//
// Within a window the order is the one a unit-time list schedule gives: all devices start at
// time 0 and every op lasts one tick; a free device starts, among the next op of each of its
// four streams of the window (G1's B, G0's F, G1's F, G0's B, in that priority, each stream in
// microbatch order) the first whose input is ready, and closes the window with its Step as soon
// as all of the window's ops have run. Links are FIFO (docs/schedule-formats.md, rule 10): an op
// whose input comes from another device starts only when that input is the oldest message still
// waiting on the link, and a G1 backward sends its gradient only when no forward of its window
// that sends on the same link is left (G1's first stage sends to G0's last stage, which takes
// the gradient a window later; this binds at D = 2 only, where each window then runs G1's
// forwards before its backwards). Devices are
// visited in order 0 .. D-1 every tick and an op's output is ready the tick after it ends, so the
// order is a pure function of D, M and N.
#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/generators_internal.h"

namespace pipecast::ir::internal {
namespace {

// The streams of a window in priority order.
enum Stream : int32_t { kBackward1 = 0, kForward0 = 1, kForward1 = 2, kBackward0 = 3 };
constexpr bool IsForwardStream(int32_t s) { return s == kForward0 || s == kForward1; }
constexpr int32_t kStreams = 4;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Cursor {
  int32_t window = 0;
  std::array<int32_t, kStreams> next{};  // microbatches of each stream already issued
  int64_t free = 0;                      // tick at which the device is free
  bool done = false;
  std::vector<Action> out;
};

class WPipeScheduler {
 public:
  WPipeScheduler(int32_t d, int32_t m, int32_t n) : d_(d), m_(m), n_(n) {
    const size_t cells = static_cast<size_t>(2 * d) * static_cast<size_t>(m) * n;
    f_end_.assign(cells, kNever);
    b_end_.assign(cells, kNever);
    cursors_.resize(d);
    links_.resize(static_cast<size_t>(d) * d);
    for (Cursor& c : cursors_) c.out.reserve(static_cast<size_t>(4 * int64_t{m} * n + n + 1));
  }

  // Runs the list schedule; afterwards Take(k) gives device k's program.
  void Run() {
    // An op issued at tick t is ready at t + 1, so a tick at which no device issues anything
    // leaves the state as it was and the run would never end. Some device always can: every
    // input comes from the same or an earlier window, and the oldest message on a link belongs
    // to its receiver's current window (a sender finishes a window before it starts the next,
    // and at D = 2 sends G1's gradients after the window's forwards on that link). So each tick
    // issues an op, and a run longer than there are ops is a bug.
    const int64_t limit = (4 * int64_t{m_} * n_ + n_ + 1) * d_ + 1;
    int32_t finished = 0;
    for (int64_t t = 0; finished < d_; ++t) {
      PIPECAST_CHECK(t <= limit) << "wpipe: the list schedule made no progress";
      for (int32_t k = 0; k < d_; ++k) finished += Tick(k, t) ? 1 : 0;
    }
  }

  std::vector<Action> Take(int32_t k) { return std::move(cursors_[k].out); }

 private:
  // The minibatch stream `s` of window w runs, or -1 if the window has no such stream.
  int32_t Minibatch(int32_t s, int32_t w) const {
    const int32_t b = s == kBackward0 ? w - 1 : w;
    return b >= 0 && b < n_ ? b : -1;
  }
  int32_t Stage(int32_t s, int32_t k) const {
    return s == kForward0 || s == kBackward0 ? k : d_ + k;
  }
  size_t Cell(int32_t stage, int32_t mb) const { return static_cast<size_t>(stage) * m_ * n_ + mb; }
  // Tick at which the input of (stream s, stage, microbatch) is ready.
  int64_t InputReady(int32_t s, int32_t stage, int32_t mb) const {
    if (IsForwardStream(s)) return stage == 0 ? 0 : f_end_[Cell(stage - 1, mb)];
    if (stage == 2 * d_ - 1) return f_end_[Cell(stage, mb)];
    return b_end_[Cell(stage + 1, mb)];
  }
  int32_t Device(int32_t stage) const { return stage % d_; }
  // The stage a pass of stream s on `stage` sends its output to, or -1 (none, or the same device
  // hands it over).
  int32_t Destination(int32_t s, int32_t stage) const {
    const int32_t to = IsForwardStream(s) ? stage + 1 : stage - 1;
    if (to < 0 || to >= 2 * d_ || Device(to) == Device(stage)) return -1;
    return to;
  }
  // The stage a pass of stream s on `stage` receives its input from, or -1.
  int32_t Source(int32_t s, int32_t stage) const {
    const int32_t from = IsForwardStream(s) ? stage - 1 : stage + 1;
    if (from < 0 || from >= 2 * d_ || Device(from) == Device(stage)) return -1;
    return from;
  }
  std::deque<int64_t>& Link(int32_t from_stage, int32_t to_stage) {
    return links_[static_cast<size_t>(Device(from_stage)) * d_ + Device(to_stage)];
  }
  // The message a pass of stream s on `stage` for microbatch mb consumes.
  int64_t Message(int32_t s, int32_t stage, int32_t mb) const {
    return static_cast<int64_t>(Cell(stage, mb)) * 2 + (IsForwardStream(s) ? 0 : 1);
  }
  // True if the next op of stream s may start at this point of the FIFO links.
  bool LinksAllow(const Cursor& c, int32_t s, int32_t stage, int32_t mb) {
    const int32_t from = Source(s, stage);
    if (from >= 0) {
      const std::deque<int64_t>& link = Link(from, stage);
      if (link.empty() || link.front() != Message(s, stage, mb)) return false;
    }
    const int32_t to = Destination(s, stage);
    if (s != kBackward1 || to < 0) return true;
    // A G1 gradient waits for the window's forwards that send on the same link (D = 2 only).
    for (int32_t other : {kForward0, kForward1}) {
      if (Minibatch(other, c.window) < 0 || c.next[other] >= m_) continue;
      const int32_t dest = Destination(other, Stage(other, Device(stage)));
      if (dest >= 0 && Device(dest) == Device(to)) return false;
    }
    return true;
  }

  bool Exhausted(const Cursor& c) const {
    for (int32_t s = 0; s < kStreams; ++s)
      if (Minibatch(s, c.window) >= 0 && c.next[s] < m_) return false;
    return true;
  }

  // Device k at tick t; true when its program has just ended.
  bool Tick(int32_t k, int64_t t) {
    Cursor& c = cursors_[k];
    if (c.done || c.free > t) return false;
    while (Exhausted(c)) {
      c.out.push_back({ActionKind::kStep, -1, -1, {}});
      c.next = {};
      if (++c.window > n_) {
        c.done = true;
        return true;
      }
    }
    for (int32_t s = 0; s < kStreams; ++s) {
      const int32_t b = Minibatch(s, c.window);
      if (b < 0 || c.next[s] >= m_) continue;
      const int32_t stage = Stage(s, k), mb = b * m_ + c.next[s];
      if (InputReady(s, stage, mb) > t || !LinksAllow(c, s, stage, mb)) continue;
      if (const int32_t from = Source(s, stage); from >= 0) Link(from, stage).pop_front();
      if (const int32_t to = Destination(s, stage); to >= 0)
        Link(stage, to).push_back(Message(IsForwardStream(s) ? kForward0 : kBackward0, to, mb));
      const bool forward = IsForwardStream(s);
      // G0's backward runs one window after its forward: the older buffer holds that version.
      const WeightRef weights = s == kBackward0 ? WeightRef{WeightSource::kBufferOlder, 0}
                                                : WeightRef{WeightSource::kCurrent, 0};
      c.out.push_back({forward ? ActionKind::kForward : ActionKind::kBackward, stage, mb, weights});
      (forward ? f_end_ : b_end_)[Cell(stage, mb)] = t + 1;
      ++c.next[s];
      c.free = t + 1;
      break;
    }
    return false;
  }

  const int32_t d_, m_, n_;
  std::vector<int64_t> f_end_, b_end_;  // [stage][microbatch]: tick the pass ended
  std::vector<Cursor> cursors_;
  // [from device * D + to device]: the messages sent and not yet taken, oldest first.
  std::vector<std::deque<int64_t>> links_;
};

}  // namespace

Result<Program> BuildWPipe(const BuildContext& ctx) {
  PIPECAST_RETURN_IF_ERROR(CheckVirtualStages(ctx.options.devices, 2));
  Program p = EmptyProgram(ctx, 2);
  WPipeScheduler scheduler(p.num_devices, p.microbatches, p.minibatches);
  scheduler.Run();
  for (int32_t k = 0; k < p.num_devices; ++k) ctx.Emit(p, k, scheduler.Take(k));
  // The current weights and the older buffer G0's backwards read.
  p.max_live_versions.assign(p.num_devices, 2);
  return p;
}

}  // namespace pipecast::ir::internal
