# The planner of `pipecast plan`: enumerating a scenario's search space, simulating every
# configuration, constraints, ranking, the Pareto front and time to a target loss (docs/plan.md).
target_sources(pipecast_sim PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/planner.cc
  ${CMAKE_CURRENT_LIST_DIR}/plan_enumerate.cc
  ${CMAKE_CURRENT_LIST_DIR}/plan_infeasible.cc
  ${CMAKE_CURRENT_LIST_DIR}/time_to_loss.cc
)
