# Builds BPF C programs into libbpf skeleton headers at build time:
#   X.bpf.c --clang -g -O2 -target bpf--> X.bpf.o --bpftool gen object--> X.linked.o
#   --bpftool gen skeleton--> X.skel.h (build tree only; nothing is shipped or committed).
# sy_bpf_skeleton(NAME SOURCE [DEPENDS...] [SKEL_NAME S] [OUT_DIR DIR] [DEFINES D...]) defines
# the INTERFACE target NAME_skel whose include directory holds S.skel.h (S defaults to NAME,
# DIR to bpf_gen in the build tree). DEFINES are -D flags for clang: a variant of a program
# (tests/upgrade builds the next layout's skeletons under the released names in another DIR).

function(sy_require_program var program package)
  find_program(${var} NAMES ${program} ${ARGN})
  if(NOT ${var})
    message(FATAL_ERROR "'${program}' not found: install the Debian package '${package}' "
                        "(scripts/install-deps.sh installs everything)")
  endif()
endfunction()

sy_require_program(SY_CLANG clang clang clang-14 clang-15 clang-16)
sy_require_program(SY_BPFTOOL bpftool bpftool /usr/sbin/bpftool)

execute_process(COMMAND gcc -print-multiarch OUTPUT_VARIABLE SY_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(SY_MULTIARCH)
  set(SY_BPF_SYS_INCLUDE "-I/usr/include/${SY_MULTIARCH}")  # asm/types.h
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(SY_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(SY_BPF_ARCH arm64)
else()
  set(SY_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# The BPF objects follow SY_WERROR (top-level CMakeLists.txt) like the C++ code.
set(SY_BPF_WERROR "")
if(SY_WERROR)
  set(SY_BPF_WERROR -Werror)
endif()

function(sy_bpf_skeleton name src)
  cmake_parse_arguments(ARG "" "SKEL_NAME;OUT_DIR" "DEFINES" ${ARGN})
  set(skel_name ${name})
  if(ARG_SKEL_NAME)
    set(skel_name ${ARG_SKEL_NAME})
  endif()
  set(out_dir ${CMAKE_BINARY_DIR}/bpf_gen)
  if(ARG_OUT_DIR)
    set(out_dir ${ARG_OUT_DIR})
  endif()
  set(defines)
  foreach(d ${ARG_DEFINES})
    list(APPEND defines -D${d})
  endforeach()
  file(MAKE_DIRECTORY ${out_dir})
  set(obj ${out_dir}/${skel_name}.bpf.o)
  set(linked ${out_dir}/${skel_name}.linked.o)
  set(skel ${out_dir}/${skel_name}.skel.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${SY_CLANG} -g -O2 -Wall ${SY_BPF_WERROR} -target bpf -D__TARGET_ARCH_${SY_BPF_ARCH}
            ${defines} ${SY_BPF_SYS_INCLUDE} -I${CMAKE_SOURCE_DIR} -c ${src} -o ${obj}
    COMMAND ${SY_BPFTOOL} gen object ${linked} ${obj}
    COMMAND ${SY_BPFTOOL} gen skeleton ${linked} name ${skel_name} > ${skel}
    DEPENDS ${src} ${ARG_UNPARSED_ARGUMENTS}
    COMMENT "BPF ${name}: clang -target bpf ${defines}, bpftool gen skeleton"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
endfunction()

# sy_bpf_object(NAME SOURCE DEFINES...): only the BPF object NAME.bpf.o (no skeleton), built
# from SOURCE with extra -D defines: test variants of a program that the tests load with
# libbpf directly. The target NAME_obj; the path is ${CMAKE_BINARY_DIR}/bpf_gen/NAME.bpf.o.
function(sy_bpf_object name src)
  set(out_dir ${CMAKE_BINARY_DIR}/bpf_gen)
  file(MAKE_DIRECTORY ${out_dir})
  set(obj ${out_dir}/${name}.bpf.o)
  set(defines)
  foreach(d ${ARGN})
    list(APPEND defines -D${d})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${SY_CLANG} -g -O2 -Wall ${SY_BPF_WERROR} -target bpf -D__TARGET_ARCH_${SY_BPF_ARCH}
            ${defines} ${SY_BPF_SYS_INCLUDE} -I${CMAKE_SOURCE_DIR} -c ${src} -o ${obj}
    DEPENDS ${src} ${CMAKE_SOURCE_DIR}/bpf/abi.h ${CMAKE_SOURCE_DIR}/bpf/maps.bpf.h
            ${CMAKE_SOURCE_DIR}/bpf/lb.bpf.h ${CMAKE_SOURCE_DIR}/bpf/tc_dsr.bpf.h ${CMAKE_SOURCE_DIR}/bpf/jhash.h
            ${CMAKE_SOURCE_DIR}/bpf/tc_policy.bpf.h ${CMAKE_SOURCE_DIR}/bpf/policy.bpf.h
            ${CMAKE_SOURCE_DIR}/bpf/policy_abi.h
    COMMENT "BPF ${name}: clang -target bpf ${defines}"
    VERBATIM)
  add_custom_target(${name}_obj DEPENDS ${obj})
endfunction()
