# Portable baseline: x86-64-v3 (AVX2, FMA, F16C). Wider SIMD (AVX-512) is
# compiled per translation unit and picked at run time; never -march=native.
set(PAGODA_X86_BASELINE "")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(PAGODA_X86_BASELINE -march=x86-64-v3)
  set(PAGODA_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq)
endif()

add_library(pagoda_warnings INTERFACE)
target_compile_options(pagoda_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wno-missing-field-initializers>
  $<$<COMPILE_LANGUAGE:CXX>:${PAGODA_X86_BASELINE}>)

if(PAGODA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
