# The flight recorder (runtime/flight_recorder.h), host code.
pipecast_add_test(flight_recorder_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/flight_recorder_test.cc
  LIBS pipecast_flight_recorder Threads::Threads)
