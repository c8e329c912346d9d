# pipecast_flight_recorder: each device's last transport actions, for the report of a failed or
# hung run. Host code only, always built (the NCCL and same-process CUDA transports use it).
add_library(pipecast_flight_recorder flight_recorder.cc)
target_link_libraries(pipecast_flight_recorder
  PUBLIC pipecast_runtime PRIVATE pipecast_warnings)
