# Sources of `pipecast report` in pipecast_cli: the inputs (report_json, report_documents,
# report_inputs), the joined model, the sections, the page renderers, the timelines (re-simulated)
# and the subcommand.
target_sources(pipecast_cli PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/report_json.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_documents.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_inputs.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_model.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_sections.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_summary.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_sim_sections.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_staleness_section.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_run_sections.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_plan_section.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_page.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_timelines.cc
  ${CMAKE_CURRENT_LIST_DIR}/report_command.cc
)
