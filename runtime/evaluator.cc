#include "runtime/evaluator.h"

#include <algorithm>
#include <vector>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

int32_t Chunks(const Session& s) {
  const int64_t n = s.data().test->size();
  return static_cast<int32_t>((n + Session::kEvalChunk - 1) / Session::kEvalChunk);
}

}  // namespace

MessageSpace EvalSpace(const Session& session) {
  return {session.num_stages(), 1, Chunks(session)};
}

Result<TestScore> Evaluate(Session& session, Transport& transport, Clock::duration deadline,
                           const std::function<Status(int, std::span<double>)>& share) {
  const models::Dataset& test = *session.data().test;
  auto first = session.ProgramFor(session.SegmentLength(0));
  if (!first.ok()) return first.status();
  const ir::Program& p = **first;
  const int32_t stages = p.num_stages, last = stages - 1;
  const int64_t rpe = test.rows_per_example();
  std::vector<Handle> pending(stages);  // the send still reading each stage's output
  for (int32_t c = 0; c < Chunks(session); ++c) {
    const int64_t begin = c * Session::kEvalChunk;
    const int64_t count = std::min<int64_t>(Session::kEvalChunk, test.size() - begin);
    const int64_t rows = count * rpe;
    const models::Batch batch = test.Range(begin, count);
    for (int32_t s = 0; s < stages; ++s) {
      const int32_t d = p.device_of(s);
      if (!session.IsLocal(d)) continue;
      Device& dev = *session.devices()[d];
      const auto until = Clock::now() + deadline;
      if (s == 0) {
        dev.EvalLoadInput(s, std::span<const float>(batch.x.data(), batch.x.size()), rows);
      } else if (p.device_of(s - 1) != d) {
        const Handle h =
            transport.Recv(d, p.device_of(s - 1), {MessageKey::Kind::kEvalActivation, s, c},
                           dev.EvalBuffer(s, RecordPart::kInput, rows));
        PIPECAST_RETURN_IF_ERROR(transport.WaitReceived(h, dev, Lane::kCompute, until));
      }
      if (pending[s].valid()) PIPECAST_RETURN_IF_ERROR(transport.WaitSent(pending[s], until));
      pending[s] = {};
      dev.EvalForward(s, rows);
      if (s == last) {
        dev.EvalLoss(s, batch.labels, rows);
      } else if (p.device_of(s + 1) == d) {
        dev.EvalHandOver(s, s + 1, rows);
      } else {
        pending[s] = transport.Send(
            d, p.device_of(s + 1), {MessageKey::Kind::kEvalActivation, s + 1, c},
            dev.EvalBuffer(s, RecordPart::kOutput, rows), dev, dev.Record(Lane::kCompute));
      }
    }
  }
  for (int32_t s = 0; s < stages; ++s)
    if (pending[s].valid())
      PIPECAST_RETURN_IF_ERROR(transport.WaitSent(pending[s], Clock::now() + deadline));
  double totals[3] = {0, 0, 0};  // loss sum, correct, rows
  const int32_t owner = p.device_of(last);
  if (session.IsLocal(owner)) {
    Device& dev = *session.devices()[owner];
    PIPECAST_RETURN_IF_ERROR(dev.Synchronize(Clock::now() + deadline));
    int64_t correct = 0, rows = 0;
    dev.ReadEval(&totals[0], &correct, &rows);
    totals[1] = static_cast<double>(correct);
    totals[2] = static_cast<double>(rows);
  }
  if (share) PIPECAST_RETURN_IF_ERROR(share(owner, totals));
  TestScore score;
  if (totals[2] > 0) {
    score.loss = totals[0] / totals[2];
    score.accuracy = totals[1] / totals[2];
  }
  return score;
}

}  // namespace pipecast::runtime
