# Finds every external dependency, with a message that says how to get it when it is missing.
set(_draft_hint "run scripts/install-deps.sh (Debian/Ubuntu), or point CMAKE_PREFIX_PATH at an install")

find_package(Torch QUIET)
if(NOT Torch_FOUND)
  message(FATAL_ERROR "LibTorch not found: ${_draft_hint}; for a CUDA build pass "
    "-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')")
endif()
message(STATUS "LibTorch ${Torch_VERSION}: ${TORCH_LIBRARIES}")

foreach(pkg nlohmann_json CLI11 spdlog fmt PNG JPEG ZLIB)
  find_package(${pkg} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "${pkg} not found: ${_draft_hint}")
  endif()
endforeach()

find_package(PkgConfig QUIET)

# utf8proc: Unicode categories, case mapping and NFC for the CLIP tokenizer (Debian libutf8proc-dev).
find_library(UTF8PROC_LIB utf8proc REQUIRED)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)

# Gloo (Debian libgloo-dev): the headers c10d's ProcessGroupGloo.hpp includes, and the library LibTorch
# itself links.
find_path(GLOO_INCLUDE_DIR gloo/algorithm.h)
find_library(GLOO_LIB gloo PATHS /usr/lib /usr/lib/x86_64-linux-gnu)
if(NOT GLOO_INCLUDE_DIR OR NOT GLOO_LIB)
  message(FATAL_ERROR "Gloo not found (libgloo-dev, the headers of LibTorch's c10d Gloo backend): ${_draft_hint}")
endif()

# NCCL: c10d's ProcessGroupNCCL, for data-parallel runs on CUDA (--dist-backend nccl). Compiled in when
# LibTorch is a CUDA build (pip's CUDA wheels are, with NCCL) and nccl.h is found (pip: the nvidia-nccl
# package's include folder; pass -DNCCL_INCLUDE_DIR=... if it is elsewhere). Debian's CPU LibTorch has none.
set(DRAFT_NCCL OFF)
if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND OR CUDAToolkit_FOUND)
  execute_process(COMMAND python3 -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__))"
                  OUTPUT_VARIABLE _draft_pip_nccl OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_draft_pip_nccl}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
  if(NCCL_INCLUDE_DIR)
    set(DRAFT_NCCL ON)
    message(STATUS "NCCL: ${NCCL_INCLUDE_DIR}/nccl.h (data-parallel runs on CUDA can use --dist-backend nccl)")
  else()
    message(STATUS "NCCL: nccl.h not found; data-parallel CUDA runs use Gloo (set NCCL_INCLUDE_DIR for NCCL)")
  endif()
endif()
