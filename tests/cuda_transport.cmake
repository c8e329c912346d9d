# The GPU transports (runtime/cuda/): host tests of their order check and tables, and tests
# labelled `gpu` that skip without a CUDA device.
pipecast_add_test(transport_order_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/transport_order_test.cc
  LIBS pipecast_transport_order)
