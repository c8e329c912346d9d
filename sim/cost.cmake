# Scenario -> CostModel: sim/cost_builder.{h,cc} (transformer formulas; the balanced partition
# of layers into stages is common/partition.h, shared with models/).
target_sources(pipecast_sim PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/cost_builder.cc)
