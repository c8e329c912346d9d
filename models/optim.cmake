# Optimizers (with the ΔW of weight prediction) and learning-rate schedules.
target_sources(pipecast_models PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/optimizer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lr_schedule.cc)
