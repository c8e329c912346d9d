// PyTorch pipelining CSV schedules: the "compute_only" format that
// torch.distributed.pipelining writes with PipelineScheduleMulti._dump_csv and reads with
// _load_csv (docs/schedule-formats.md describes it and what was checked against torch).
//
// One row per pipeline rank, one cell per action: "<stage><type><microbatch>", e.g. "0F1",
// "2B0", "1W3", "3I2", where F is a forward, B a full backward, I a backward-input pass and W a
// backward-weight pass. Empty cells (idle steps torch writes for None) are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir {

// The compute actions of `p`, one row per device, cells separated by ',' and rows ended by
// "\r\n" as Python's csv.writer does. Sends, receives, Steps and weight annotations are dropped.
std::string ProgramToTorchCsv(const Program& p);

struct ScheduleSource;  // schedule_source.h

// Builds a Program from a compute-only CSV: one device per row, stage placement from the row
// holding the stage (a stage on two rows, or on none, is an error), stages = largest stage + 1,
// total microbatches = largest microbatch + 1, split into `minibatches` minibatches (which must
// divide it), method "torch-csv", and on every device a Step right after its last compute
// action of each minibatch (one flushed iteration per minibatch, as torch's schedules step).
// Round trip: ParseTorchCsv(ProgramToTorchCsv(p), .., N) == p for such programs. When `source`
// is given, it receives the text and where every cell was written.
Result<Program> ParseTorchCsv(std::string_view csv, std::string_view filename,
                              int32_t minibatches = 1, ScheduleSource* source = nullptr);

}  // namespace pipecast::ir
