# Output writers of pipecast_sim: comparison table, JSON and CSV reports (report.cc), Perfetto
# traces (trace.cc), SVG timelines (svg.cc) and the report charts (chart*.cc: bars, lines,
# scatter). Formats are documented in docs/outputs.md.
target_sources(pipecast_sim PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/report.cc
  ${CMAKE_CURRENT_LIST_DIR}/trace.cc
  ${CMAKE_CURRENT_LIST_DIR}/svg.cc
  ${CMAKE_CURRENT_LIST_DIR}/chart.cc
  ${CMAKE_CURRENT_LIST_DIR}/chart_bars.cc
  ${CMAKE_CURRENT_LIST_DIR}/chart_plots.cc
)
