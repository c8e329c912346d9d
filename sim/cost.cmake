# Scenario -> CostModel: sim/cost_builder.{h,cc} (transformer formulas) and sim/partition.{h,cc}
# (balanced contiguous partition of layers into stages).
target_sources(pipecast_sim PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/cost_builder.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/partition.cc)
