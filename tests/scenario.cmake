# Scenario files, units, the cost builder and the fuzz corpus replay.
pipecast_add_test(units_test
  SOURCES common/units_test.cc
  LIBS pipecast_common)
pipecast_add_test(input_file_test
  SOURCES common/input_file_test.cc
  LIBS pipecast_common)
pipecast_add_test(scenario_test
  SOURCES common/scenario_test.cc
  LIBS pipecast_common pipecast_sim)
# Devices of different speeds and capacities: parsing, partition, costs, engine and planner.
pipecast_add_test(heterogeneous_test
  SOURCES common/scenario_devices_test.cc
          sim/heterogeneous_test.cc
  LIBS pipecast_common pipecast_sim)
pipecast_add_test(cost_builder_test
  SOURCES sim/cost_builder_test.cc
  LIBS pipecast_common pipecast_sim)
# Replays fuzz/corpus/** (seeds and regress-* crash reproducers) through the parsers.
pipecast_add_test(fuzz_corpus_test
  SOURCES ${PROJECT_SOURCE_DIR}/fuzz/fuzz_corpus_test.cc
  LIBS pipecast_common pipecast_sim)
