# Data sets: batches and the seeded loader, synthetic data, Fashion-MNIST (IDX through zlib,
# linked privately as ZLIB::ZLIB in CMakeLists.txt) and the fortunes character corpus.
target_sources(pipecast_models PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/data.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/idx.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/text_corpus.cc)
