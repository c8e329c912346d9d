# Schedule formats (text, JSON, PyTorch CSV) and the validator.
pipecast_add_test(format_test
  SOURCES common/format_test.cc
  LIBS pipecast_common)
pipecast_add_test(validate_test
  SOURCES common/validate_test.cc
  LIBS pipecast_common)
