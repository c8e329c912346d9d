# Layers, loss, models and their partitioning into stages (see docs/models.md).
target_sources(pipecast_models PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/activations.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/attention.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/balance.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/composite.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/embedding.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/gemm.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/init.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/layer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/layernorm.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/linear.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/loss.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/model.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/stage.cc)
