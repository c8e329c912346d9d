// The job file of one `pipecast plan` configuration: a job (common/job.h) with the
// configuration's pipeline shape and method, so `pipecast run` trains the job's model on the
// chosen schedule (`pipecast plan --emit-job`). The rest of the job (model, data, optimizer,
// schedule, length) is kept as written; comments are not.
#pragma once

#include <string>
#include <string_view>

#include "common/plan_space.h"
#include "common/status.h"

namespace pipecast::ir {

// `job_text` (the file `filename`) with pipeline.stages, .microbatches and .microbatch_size and
// methods replaced by `config`'s, opening with `comment` ("# " lines). Errors: the job's own
// (ParseJob), on the text given or on the result.
Result<std::string> ConfiguredJobYaml(std::string_view job_text, std::string_view filename,
                                      const PlanConfig& config, const std::string& comment);

}  // namespace pipecast::ir
