# Schedule formats (text, JSON, PyTorch CSV) and validation (a linear dry run finds cycles).
target_sources(pipecast_common PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/format_text.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/format_json.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/format_torch_csv.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/validate.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/validate_cycles.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/schedule_source.cc
)
