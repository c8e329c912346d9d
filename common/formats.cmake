# Schedule formats (text, JSON, PyTorch CSV) and validation (Boost.Graph cycle detection).
target_sources(pipecast_common PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/format_text.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/format_json.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/format_torch_csv.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/validate.cc
)
