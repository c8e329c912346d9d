# Tests of the output writers (sim/report, sim/trace, sim/svg, sim/chart). They build SimResults by hand, so
# they do not depend on the engine or the generators. nlohmann-json parses the JSON back.
pipecast_add_test(report_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/report_test.cc
                  LIBS pipecast_sim nlohmann_json::nlohmann_json)
pipecast_add_test(trace_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/trace_test.cc
                  LIBS pipecast_sim nlohmann_json::nlohmann_json)
pipecast_add_test(svg_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/svg_test.cc
                  LIBS pipecast_sim)
pipecast_add_test(chart_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sim/chart_test.cc
                  LIBS pipecast_sim)
