# Core: IR, generators, version accounting, lowering and the engine.
pipecast_add_test(ir_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/common/ir_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/generators_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/version_plan_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/execution_plan_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/replicas_test.cc
  LIBS pipecast_common)
pipecast_add_test(engine_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sim/engine_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/closed_form_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/property_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/fused_pass_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/memory_estimate_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/bubble_fill_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/replicas_test.cc
  LIBS pipecast_sim)

# The command line, run as a user would: exit codes, messages and output files.
foreach(test cli_test sim_cli_test)
  pipecast_add_test(${test}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/${test}.cc
    LIBS nlohmann_json::nlohmann_json)
  add_dependencies(${test} pipecast)
  target_compile_definitions(${test} PRIVATE PIPECAST_EXE="$<TARGET_FILE:pipecast>")
endforeach()

pipecast_add_test(run_measured_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_measured_test.cc
  LIBS pipecast_cli)

pipecast_add_test(job_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/common/job_test.cc
  LIBS pipecast_common)
