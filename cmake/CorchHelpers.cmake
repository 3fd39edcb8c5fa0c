# corch_embed(<target> <input> <header-under-generated/> <constant-name>): a build-time header
# holding a text file, regenerated when the file changes.
function(corch_embed target input header name)
  set(out "${PROJECT_BINARY_DIR}/generated/${header}")
  add_custom_command(OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DINPUT=${input} -DOUTPUT=${out} -DNAME=${name}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS "${input}" ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "Embedding ${input}")
  target_sources(${target} PRIVATE "${out}")
  target_include_directories(${target} PUBLIC "${PROJECT_BINARY_DIR}/generated")
endfunction()

# corch_library(<name> <folder> [LIBS ...]): a static library of every .cc in a folder of
# orchestrator/ (headers are included as "<folder>/<file>.h").
function(corch_library name folder)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${folder}/*.cc")
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}/orchestrator"
                                            "${PROJECT_SOURCE_DIR}/orchestrator/include")
  target_link_libraries(${name} PUBLIC ${ARG_LIBS})
  set_target_properties(${name} PROPERTIES LINKER_LANGUAGE CXX)
endfunction()
