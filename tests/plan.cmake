# The planner (pipecast plan): the plan section, convergence profiles, writing scenarios back,
# enumeration, exactness against independent re-simulation, the Pareto front and time to loss.
pipecast_add_test(plan_space_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/common/plan_space_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/convergence_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/common/scenario_writer_test.cc
  LIBS pipecast_common)
pipecast_add_test(planner_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sim/planner_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/sim/time_to_loss_test.cc
  LIBS pipecast_sim)
pipecast_add_test(plan_cli_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/cli/plan_cli_test.cc
  LIBS nlohmann_json::nlohmann_json)
add_dependencies(plan_cli_test pipecast)
target_compile_definitions(plan_cli_test PRIVATE PIPECAST_EXE="$<TARGET_FILE:pipecast>")
