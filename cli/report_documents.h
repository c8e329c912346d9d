// Internal to report_inputs.cc: one reader per document kind, each taking the parsed root of a
// file whose schema and version were checked, and recording the first bad field in the reader.
#pragma once

#include "cli/report_inputs.h"
#include "cli/report_json.h"

namespace pipecast::cli::report {

SimInput ReadSimDocument(FieldReader& r, const Json& doc);
RunInput ReadRunDocument(FieldReader& r, const Json& doc);
PlanInput ReadPlanDocument(FieldReader& r, const Json& doc);

}  // namespace pipecast::cli::report
