# The CUDA device's host-side planning (always), and the device itself (with nvcc).
pipecast_add_test(pool_plan_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/pool_plan_test.cc
  LIBS pipecast_pool_plan)
if(TARGET pipecast_cuda_run)
  # Green contexts' SM split and the refusals of a run without its GPUs (no GPU needed).
  pipecast_add_test(cuda_host_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_host_test.cc
    LIBS pipecast_cuda_run)
  # Every method x optimizer on both devices; flush schedules bit for bit; errors (GPU only).
  pipecast_add_gpu_test(cuda_device_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_device_test.cc
    LIBS pipecast_cuda_run)
endif()

# No binary links libcuda (it would not start without a driver) or a shared cudart: the driver
# API is reached through cudaGetDriverEntryPointByVersion and cudart is static.
if(TARGET pipecast_cuda_run)
  add_test(NAME pipecast_links_neither_libcuda_nor_a_shared_cudart
           COMMAND sh -c "! readelf -d \"$1\" | grep -E 'NEEDED.*(libcuda\\.so|libcudart\\.so)'"
                   sh $<TARGET_FILE:pipecast>)
  add_test(NAME pipecast_without_a_gpu_says_so_in_one_line
           COMMAND sh -c "[ -e /dev/nvidia0 ] && exit 77; out=$(\"$1\" run \"$2\" -q --methods 1f1b --device cuda 2>&1); rc=$?; echo \"$out\"; [ $rc -eq 1 ] && [ \"$(printf '%s\\n' \"$out\" | wc -l)\" -eq 1 ] && printf '%s' \"$out\" | grep -q 'no CUDA device was found'"
                   sh $<TARGET_FILE:pipecast> ${PROJECT_SOURCE_DIR}/bench/gpu/gpt-small.job.yaml)
endif()
if(TARGET pipecast_cuda_run)
  # One process per device (torchrun's variables): a checkpoint would need every stage's state,
  # so --checkpoint-dir is refused before any GPU or store is touched; rank 0 says so in one
  # line, rank 1 says nothing; both exit with the usage code.
  add_test(NAME pipecast_refuses_checkpoints_with_a_process_per_device
           COMMAND sh -c "d=$(mktemp -d); for r in 0 1; do out=$(env WORLD_SIZE=2 RANK=$r LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 \"$1\" run \"$2\" -q --methods 1f1b --device cuda --checkpoint-dir $d/ck 2>&1); rc=$?; echo \"rank $r: $out\"; [ $rc -eq 2 ] || exit 1; if [ $r -eq 0 ]; then [ \"$(printf '%s\\n' \"$out\" | wc -l)\" -eq 1 ] && printf '%s' \"$out\" | grep -q 'checkpoint-dir is not supported with one process per device' || exit 1; else [ -z \"$out\" ] || exit 1; fi; done; [ ! -e $d/ck ]"
                   sh $<TARGET_FILE:pipecast> ${PROJECT_SOURCE_DIR}/bench/gpu/gpt-small.job.yaml)
endif()
if(TEST pipecast_without_a_gpu_says_so_in_one_line)
  set_tests_properties(pipecast_without_a_gpu_says_so_in_one_line PROPERTIES SKIP_RETURN_CODE 77)
endif()
if(TARGET pipecast_cuda_run)
  # A program beyond the memory limit is refused naming the stage and the bytes (GPU only).
  pipecast_add_gpu_test(cuda_device_memory_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_device_memory_test.cc
    LIBS pipecast_runtime_cuda)
endif()
