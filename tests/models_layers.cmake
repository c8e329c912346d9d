# models/: layers (finite-difference checks), loss, models, balancing and stages.
pipecast_add_test(layers_test
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/models/balance_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/layers_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/loss_test.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/models/model_test.cc
  LIBS pipecast_models)
