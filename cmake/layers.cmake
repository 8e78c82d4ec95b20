# The layers of src/ (docs/architecture.md "Layers"), each folder its own static library, and the rule that
# a layer includes only itself and the layers below it - enforced by the compiler: a layer's sources see an
# include root of their own (<build>/layers/<layer>/) holding one link per folder it may include, so
# `#include "model/config.h"` in io/ fails with "No such file or directory" instead of compiling.
#
#   wick_layer(<folder> [BELOW <layer>...] [PUBLIC_HEADERS <header>...] [OWNS <path>...])
#
# BELOW names the layers directly underneath; the include root gets their closure (a header of io/ includes
# core/ headers, so whatever may include io/ may include core/). A folder that does not exist (yet) is
# skipped, and so is a BELOW entry naming one: src/dist/ and src/serve/ drop in with no edit here.
# PUBLIC_HEADERS: files of include/wick/ the layer may include (they appear as wick/<file> in its root).
# OWNS: files (relative to src/) that belong to this layer though they sit in a higher layer's folder; they
# are compiled here, not there, and appear at their path in this layer's root (and in those above it).
# Each layer also links PRIVATE to the libraries below it, so CMake refuses a cycle.
#
# The installed library (libwick.a, wick::wick) is one archive of every layer's objects: consumers link one
# library whatever the layering (wick_lib, in the top-level CMakeLists).

set(WICK_LAYERS "")  # in order, lowest first

function(wick_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 L "" "" "BELOW;PUBLIC_HEADERS;OWNS")
  set(dir ${CMAKE_SOURCE_DIR}/src/${name})
  if(NOT IS_DIRECTORY ${dir})
    return()
  endif()
  set(closure ${name})
  set(public ${L_PUBLIC_HEADERS})
  set(owned ${L_OWNS})
  set(below "")
  foreach(b ${L_BELOW})
    if(TARGET wick_${b})
      list(APPEND below ${b})
      list(APPEND closure ${WICK_LAYER_CLOSURE_${b}})
      list(APPEND public ${WICK_LAYER_PUBLIC_${b}})
      list(APPEND owned ${WICK_LAYER_OWNS_${b}})
    elseif(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${b})
      message(FATAL_ERROR "layer ${name}: ${b} is declared below it but comes later in cmake/layers.cmake")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES closure)
  list(REMOVE_DUPLICATES public)
  list(REMOVE_DUPLICATES owned)
  set(WICK_LAYER_CLOSURE_${name} ${closure} PARENT_SCOPE)
  set(WICK_LAYER_PUBLIC_${name} ${public} PARENT_SCOPE)
  set(WICK_LAYER_OWNS_${name} ${owned} PARENT_SCOPE)

  # The include root: <layer> -> src/<layer> for every layer in the closure, wick/<h> -> include/wick/<h>.
  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root})
  foreach(l ${closure})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${l} ${root}/${l} SYMBOLIC)
  endforeach()
  foreach(f ${owned})  # a file of a folder not in the closure: linked alone (a folder link shows it already)
    string(REGEX REPLACE "/.*" "" top ${f})
    if(NOT top IN_LIST closure)
      get_filename_component(d ${root}/${f} DIRECTORY)
      file(MAKE_DIRECTORY ${d})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${f} ${root}/${f} SYMBOLIC)
    endif()
  endforeach()
  if(public)
    file(MAKE_DIRECTORY ${root}/wick)
    foreach(h ${public})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/include/wick/${h} ${root}/wick/${h} SYMBOLIC)
    endforeach()
  endif()

  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${dir}/*.cpp)
  if(WICK_HAVE_CUDA)
    file(GLOB_RECURSE cuda_sources CONFIGURE_DEPENDS ${dir}/*.cu)
    list(APPEND sources ${cuda_sources})
  endif()
  list(REMOVE_ITEM sources ${WICK_OWNED_ELSEWHERE})  # files a lower layer OWNS
  foreach(f ${L_OWNS})
    if(f MATCHES "\\.cpp$" OR (WICK_HAVE_CUDA AND f MATCHES "\\.cu$"))
      list(APPEND sources ${CMAKE_SOURCE_DIR}/src/${f})
    endif()
    list(APPEND WICK_OWNED_ELSEWHERE ${CMAKE_SOURCE_DIR}/src/${f})
  endforeach()
  set(WICK_OWNED_ELSEWHERE ${WICK_OWNED_ELSEWHERE} PARENT_SCOPE)
  if(name STREQUAL "cli")
    return()  # the executable, made in the top-level CMakeLists with this include root
  endif()
  add_library(wick_${name} STATIC ${sources})
  set_target_properties(wick_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(wick_${name} PRIVATE ${root})
  target_compile_options(wick_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
  target_link_libraries(wick_${name} PRIVATE wick_third_party)
  foreach(b ${below})
    target_link_libraries(wick_${name} PRIVATE wick_${b})
  endforeach()
  if(WICK_HAVE_CUDA)
    target_compile_options(wick_${name} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
    set_target_properties(wick_${name} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  endif()
  set(WICK_LAYERS ${WICK_LAYERS} ${name} PARENT_SCOPE)
endfunction()
