# Optimizers, ΔW rules and learning-rate schedules; data sets (Fashion-MNIST and fortunes from
# the Debian packages that scripts/setup.sh installs, plus synthetic data).
pipecast_add_test(optim_test SOURCES models/optim_test.cc LIBS pipecast_models)
pipecast_add_test(data_test SOURCES models/data_test.cc LIBS pipecast_models)
# The element-wise optimizer mathematics shared with the CUDA kernels, on hand-worked values.
pipecast_add_test(optimizer_math_test SOURCES models/optimizer_math_test.cc LIBS pipecast_models)
