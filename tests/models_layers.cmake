# models/: layers (finite-difference checks), loss, models, balancing and stages.
pipecast_add_test(layers_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/models/balance_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/layers_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/loss_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/model_test.cc
  LIBS pipecast_models)

# The layers' passes allocate nothing (every allocation of the process is counted).
pipecast_add_test(allocation_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/models/allocation_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/support/counting_allocator.cc
  LIBS pipecast_models)
