# bpf_object(NAME SOURCE): compiles a BPF C program with clang and generates a libbpf skeleton
# (NAME.skel.h) with bpftool. The object is embedded in the skeleton, so nothing is loaded
# from a path at run time. Link against the INTERFACE target NAME_skel to get the include path.
# SOURCE is relative to the calling CMakeLists.txt; every program gets -I src/bpf (of the top
# source directory) for the headers shared with user space (bpftap.h, filter_stub.h).
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE BPF_UNAME_M OUTPUT_STRIP_TRAILING_WHITESPACE)
if(BPF_UNAME_M STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
  set(BPF_MULTIARCH_INCLUDE /usr/include/x86_64-linux-gnu)
elseif(BPF_UNAME_M STREQUAL "aarch64")
  set(BPF_TARGET_ARCH arm64)
  set(BPF_MULTIARCH_INCLUDE /usr/include/aarch64-linux-gnu)
else()
  message(FATAL_ERROR "bpftap: unsupported architecture ${BPF_UNAME_M}")
endif()

function(bpf_object name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${CMAKE_SOURCE_DIR}/src/bpf -I${BPF_MULTIARCH_INCLUDE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${src} ${bpf_headers}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
