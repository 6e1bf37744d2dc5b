# The folders of src/ and the direction of their includes (see DEVELOPING.md, "Layout").
#
# bpftap_layer(FOLDER [PUBLIC layer...] [PRIVATE layer...]) makes the static library
# bpftap_FOLDER from src/FOLDER/*.cpp, links it to bpftap_<layer> for each layer listed (PUBLIC
# where that layer's headers appear in FOLDER's headers) and checks that src/FOLDER includes no
# other folder: the layers a folder links are exactly the folders it may include.
# bpftap_check_includes(FOLDER layer...) is the check alone (for the executable in src/cli).
#
# The check runs at configure time (scripts/build configures on every run): it reads every
# source and header under src/FOLDER, takes each `#include "X/..."` whose X is a folder of src/,
# and stops with a one-line message when X is neither FOLDER, bpf (the headers shared with the
# kernel programs, open to all) nor one of the layers listed.

function(bpftap_check_includes folder)
  set(allowed ${folder} bpf ${ARGN})
  file(GLOB_RECURSE files CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/src/${folder}/*.h ${CMAKE_SOURCE_DIR}/src/${folder}/*.hpp
       ${CMAKE_SOURCE_DIR}/src/${folder}/*.c ${CMAKE_SOURCE_DIR}/src/${folder}/*.cpp)
  foreach(file IN LISTS files)
    file(STRINGS ${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"/]+/")
    foreach(line IN LISTS includes)
      string(REGEX MATCH "\"([^\"/]+)/[^\"]*\"" include "${line}")
      set(dir ${CMAKE_MATCH_1})
      if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${dir} AND NOT dir IN_LIST allowed)
        file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${file})
        list(JOIN allowed ", " allowed_text)
        # Indented: CMake prints the message as it is, on one line.
        message(FATAL_ERROR "  ${rel}: #include ${include} is not allowed in src/${folder} (it may include: ${allowed_text})")
      endif()
    endforeach()
  endforeach()
endfunction()

function(bpftap_layer folder)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "PUBLIC;PRIVATE")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "bpftap_layer(${folder}): unexpected ${arg_UNPARSED_ARGUMENTS}")
  endif()
  bpftap_check_includes(${folder} ${arg_PUBLIC} ${arg_PRIVATE})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${folder}/*.cpp)
  add_library(bpftap_${folder} STATIC ${sources})
  target_include_directories(bpftap_${folder} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  foreach(layer IN LISTS arg_PUBLIC)
    target_link_libraries(bpftap_${folder} PUBLIC bpftap_${layer})
  endforeach()
  foreach(layer IN LISTS arg_PRIVATE)
    target_link_libraries(bpftap_${folder} PRIVATE bpftap_${layer})
  endforeach()
endfunction()
