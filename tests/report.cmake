# `pipecast report`: its inputs and page in-process (the fixtures in cli/data/), the command as a
# user runs it, and the page in a real browser (label `browser`; skipped only when Chromium
# cannot be installed).
foreach(test report_inputs_test report_page_test)
  pipecast_add_test(${test}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/${test}.cc
    LIBS pipecast_cli nlohmann_json::nlohmann_json)
endforeach()

pipecast_add_test(report_cli_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/report_cli_test.cc
  LIBS nlohmann_json::nlohmann_json fmt::fmt)
add_dependencies(report_cli_test pipecast)
target_compile_definitions(report_cli_test PRIVATE PIPECAST_EXE="$<TARGET_FILE:pipecast>")

add_test(NAME report_renders_in_chromium
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/cli/report_browser_test.sh $<TARGET_FILE:pipecast>
                 ${PROJECT_BINARY_DIR}/report-browser
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(report_renders_in_chromium PROPERTIES TIMEOUT 300 LABELS browser
                     SKIP_RETURN_CODE 77)
