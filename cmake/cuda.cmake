# The CUDA backend (runtime/cuda/), built according to MEMPLAN_CUDA:
#   AUTO (default)  build it when nvcc is found on PATH or under CUDA_HOME
#                   (or, last, /usr/local/cuda/bin);
#   ON              build it, and fail configuration if nvcc is not found;
#   OFF             never build it (the ASan build).
# Result: MEMPLAN_HAVE_CUDA (ON/OFF) and, when ON, the static library
# memplan_cuda with the public compile definition MEMPLAN_HAVE_CUDA.
#
# MEMPLAN_CUDA_ARCHS is passed to CMAKE_CUDA_ARCHITECTURES. The default gives
# real code for sm_80 (A100, RTX 30/40 run it too) and sm_90 (H100/H200) and
# PTX for sm_90, which newer GPUs JIT-compile. CI builds one real arch.

set(MEMPLAN_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO, ON or OFF")
set_property(CACHE MEMPLAN_CUDA PROPERTY STRINGS AUTO ON OFF)
set(MEMPLAN_CUDA_ARCHS "80-real;90-real;90-virtual" CACHE STRING
    "CUDA architectures for the CUDA backend (CMAKE_CUDA_ARCHITECTURES syntax)")
option(MEMPLAN_BUNDLE "Binaries look for shared libraries in $ORIGIN/lib first (make gpu-bundle)" OFF)
if(MEMPLAN_BUNDLE)
  # Set before any target exists; the bundle copies the binaries next to lib/.
  set(CMAKE_BUILD_RPATH "\$ORIGIN/lib")
  # DT_RPATH, not DT_RUNPATH: it also applies to the bundled libraries' own
  # dependencies (libonnx -> libprotobuf).
  add_link_options(-Wl,--disable-new-dtags)
endif()

string(TOUPPER "${MEMPLAN_CUDA}" _mp_cuda)
if(NOT _mp_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "MEMPLAN_CUDA='${MEMPLAN_CUDA}' is not one of AUTO, ON, OFF")
endif()

set(MEMPLAN_HAVE_CUDA OFF)
if(NOT _mp_cuda STREQUAL "OFF")
  # nvcc: an explicit CMAKE_CUDA_COMPILER, else PATH, else $CUDA_HOME/bin.
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(MEMPLAN_NVCC nvcc HINTS "$ENV{CUDA_HOME}/bin" "$ENV{CUDA_PATH}/bin"
                 PATHS /usr/local/cuda/bin)  # the toolkit's default prefix, last
    if(MEMPLAN_NVCC)
      set(CMAKE_CUDA_COMPILER "${MEMPLAN_NVCC}")
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    set(MEMPLAN_HAVE_CUDA ON)
  elseif(_mp_cuda STREQUAL "ON")
    message(FATAL_ERROR
      "MEMPLAN_CUDA=ON but nvcc was found neither on PATH nor under CUDA_HOME "
      "('$ENV{CUDA_HOME}'). Install the CUDA toolkit and set CUDA_HOME (e.g. "
      "CUDA_HOME=/usr/local/cuda), or configure with -DMEMPLAN_CUDA=OFF.")
  else()
    message(STATUS "memplan: CUDA backend not built (no nvcc on PATH or under CUDA_HOME)")
  endif()
endif()

if(NOT MEMPLAN_HAVE_CUDA)
  return()
endif()

set(CMAKE_CUDA_ARCHITECTURES "${MEMPLAN_CUDA_ARCHS}")
enable_language(CUDA)
# CMake 3.25 knows no C++20 flag for nvcc 13; the .cu files are C++17 and
# include only runtime/cuda/device.h (no project headers).
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)

find_library(MEMPLAN_CUDNN_LIBRARY cudnn
  HINTS "${CUDAToolkit_LIBRARY_DIR}" "${CUDAToolkit_LIBRARY_ROOT}/lib" "$ENV{CUDA_HOME}/lib"
        "$ENV{CUDA_HOME}/lib64")
find_path(MEMPLAN_CUDNN_INCLUDE_DIR cudnn.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS} "$ENV{CUDA_HOME}/include")
if(NOT MEMPLAN_CUDNN_LIBRARY OR NOT MEMPLAN_CUDNN_INCLUDE_DIR)
  message(FATAL_ERROR
    "the CUDA backend needs cuDNN 9 (libcudnn.so and cudnn.h), not found under "
    "${CUDAToolkit_LIBRARY_DIR} or CUDA_HOME; install cuDNN or configure with -DMEMPLAN_CUDA=OFF")
endif()
message(STATUS "memplan: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${MEMPLAN_CUDNN_LIBRARY})")

# The .cu files include only runtime/cuda/device.h and CUDA headers: they are
# an object library of their own, so that the host libraries' include paths
# (-isystem /usr/include from fmt/json) never reach nvcc, which breaks on them.
file(GLOB MEMPLAN_CUDA_KERNELS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/runtime/cuda/*.cu)
add_library(memplan_cuda_kernels OBJECT ${MEMPLAN_CUDA_KERNELS})
target_include_directories(memplan_cuda_kernels PRIVATE ${PROJECT_SOURCE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
# nvcc: the host compiler's warnings through -Xcompiler, all warnings errors in CI.
target_compile_options(memplan_cuda_kernels PRIVATE
  --expt-relaxed-constexpr -Xcompiler=-Wall
  $<$<BOOL:${MEMPLAN_WERROR}>:-Werror=all-warnings>)

file(GLOB MEMPLAN_CUDA_SRC CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/runtime/cuda/*.cc)
list(FILTER MEMPLAN_CUDA_SRC EXCLUDE REGEX ".*/no_cuda\\.cc$")
add_library(memplan_cuda STATIC ${MEMPLAN_CUDA_SRC} $<TARGET_OBJECTS:memplan_cuda_kernels>)
target_compile_definitions(memplan_cuda PUBLIC MEMPLAN_HAVE_CUDA)
target_include_directories(memplan_cuda PRIVATE ${MEMPLAN_CUDNN_INCLUDE_DIR})
# The CUDA runtime is linked statically (only the driver's libcuda is needed
# for it); cuBLAS, cuBLASLt and cuDNN are the GPU machine's shared libraries.
# memplan_runtime (CPU geometry helpers, weights, data feed) and memplan_cuda
# depend on each other; CMake links such static-library cycles correctly.
target_link_libraries(memplan_cuda
  PUBLIC memplan_core memplan_runtime CUDA::cudart_static CUDA::cublas CUDA::cublasLt
         ${MEMPLAN_CUDNN_LIBRARY} ${CMAKE_DL_LIBS})
