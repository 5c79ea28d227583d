# QuiverInstall.cmake — what `cmake --install` puts under the prefix (QUIVER_INSTALL=ON,
# the default at the top level; never in a Python wheel build):
#
#   include/quiver/*.h                        the public headers
#   lib/libquiver_{common,shm,channel,payload,control}.a
#                                             the layers the public headers need (static)
#   bin/quiver                                the CLI (QUIVER_BUILD_CLI)
#   lib/cmake/Quiver/QuiverConfig.cmake       find_package(Quiver), with
#     QuiverConfigVersion.cmake, QuiverTargets*.cmake (the exported targets) and
#     QuiverArrow.cmake (the Arrow finder of the build, run again for the consumer)
#   lib/pkgconfig/quiver.pc, quiver-arrow.pc, quiver-control.pc
#
# Exported targets (namespace Quiver::, the same names as the aliases of an add_subdirectory
# build):
#   Quiver::quiver   the core: channels of raw samples (channel.h, status.h); no Arrow
#   Quiver::arrow    Arrow RecordBatches, tensors, frames (arrow.h, tensor.h, frame.h, ...):
#                    the payload layer; Arrow::arrow_shared in its INTERFACE_LINK_LIBRARIES
#   Quiver::control  the control plane (envelope.h, control.h); nlohmann_json in its interface
#   Quiver::common, Quiver::shm, Quiver::channel, Quiver::payload   the layers beneath
#   Quiver::cli      the `quiver` executable (an imported executable)
# Not installed: supervisor, discovery and flight (no public headers; the CLI links them in).
#
# RPATH: the installed CLI gets CMAKE_INSTALL_RPATH, to which cmake/QuiverArrow.cmake adds the
# pyarrow wheel's directory (an absolute path: the install uses the venv it was built with),
# plus the directories of any other shared library it links outside the system's
# (INSTALL_RPATH_USE_LINK_PATH; an Arrow from a CMake config in a custom prefix). The same
# RUNPATH in the build tree (build/quiver) and installed (bin/quiver).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Where find_package(Quiver)'s files and the .pc files go, relative to the prefix; follow
# CMAKE_INSTALL_LIBDIR unless given (-DQUIVER_INSTALL_CMAKEDIR=..., -DQUIVER_INSTALL_PKGCONFIGDIR=...).
if(NOT DEFINED QUIVER_INSTALL_CMAKEDIR)
  set(QUIVER_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/Quiver")
endif()
if(NOT DEFINED QUIVER_INSTALL_PKGCONFIGDIR)
  set(QUIVER_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

# --- Headers -----------------------------------------------------------------------------
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/quiver"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        COMPONENT Quiver_Development
        FILES_MATCHING PATTERN "*.h")

# --- Libraries and the CLI ---------------------------------------------------------------
# Every library a user of the public headers links, and what those link in turn:
# install(EXPORT) fails if one is missing from the set.
set(QUIVER_INSTALLED_LAYERS quiver_common quiver_shm quiver_channel quiver_payload quiver_control)
install(TARGETS ${QUIVER_INSTALLED_LAYERS} quiver quiver_arrow
        EXPORT QuiverTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT Quiver_Development
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(TARGET quiver_cli)
  # BUILD_WITH_INSTALL_RPATH: the CLI links no shared library of this build, so its install
  # RPATH serves the build tree as well; and CMake, which pads a build RPATH that it must
  # rewrite at install with a trailing ':' (an empty entry: ld.so would then look in the
  # current directory too), leaves build/quiver's RUNPATH as it was.
  set_target_properties(quiver_cli PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE
                                              BUILD_WITH_INSTALL_RPATH TRUE)
  install(TARGETS quiver_cli
          EXPORT QuiverTargets
          RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT Quiver_Runtime)
endif()

install(EXPORT QuiverTargets
        NAMESPACE Quiver::
        FILE QuiverTargets.cmake
        DESTINATION "${QUIVER_INSTALL_CMAKEDIR}"
        COMPONENT Quiver_Development)

# --- CMake package -----------------------------------------------------------------------
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/QuiverConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/QuiverConfig.cmake"
  INSTALL_DESTINATION "${QUIVER_INSTALL_CMAKEDIR}")
# 0.x: a new minor version may change the API (and the shared-memory layout).
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/QuiverConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/QuiverConfig.cmake"
              "${PROJECT_BINARY_DIR}/QuiverConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/QuiverArrow.cmake"
        DESTINATION "${QUIVER_INSTALL_CMAKEDIR}"
        COMPONENT Quiver_Development)

# --- pkg-config --------------------------------------------------------------------------
# Relocatable: prefix is found from the .pc file's own directory (${pcfiledir}), so
# `cmake --install --prefix <elsewhere>` works too.
function(_quiver_pc_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
if(IS_ABSOLUTE "${QUIVER_INSTALL_PKGCONFIGDIR}")
  set(QUIVER_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _quiver_pc_up "/quiver-prefix/${QUIVER_INSTALL_PKGCONFIGDIR}" "/quiver-prefix")
  string(REGEX REPLACE "/$" "" _quiver_pc_up "${_quiver_pc_up}")
  set(QUIVER_PC_PREFIX "\${pcfiledir}/${_quiver_pc_up}")
endif()
_quiver_pc_dir(QUIVER_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
_quiver_pc_dir(QUIVER_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

# Arrow, as far as pkg-config can say it. The pyarrow wheel ships no arrow.pc: its include
# and library directories go into quiver-arrow.pc as they are (absolute paths of the wheel
# this install was built with), with an rpath so that programs find libarrow at run time.
# An Arrow from a CMake config comes with arrow.pc (and arrow-compute.pc since Arrow 21).
set(QUIVER_PC_ARROW_REQUIRES "")
set(QUIVER_PC_ARROW_CFLAGS "")
set(QUIVER_PC_ARROW_LIBS "")
if(QUIVER_ARROW_SOURCE STREQUAL "wheel")
  get_target_property(_quiver_arrow_inc Arrow::arrow_shared INTERFACE_INCLUDE_DIRECTORIES)
  set(QUIVER_PC_ARROW_CFLAGS "-I${_quiver_arrow_inc}")
  set(QUIVER_PC_ARROW_LIBS "-L${QUIVER_ARROW_LIBDIR} -Wl,-rpath,${QUIVER_ARROW_LIBDIR}")
  # libstdc++ before Arrow compute: see quiver_payload in CMakeLists.txt.
  string(APPEND QUIVER_PC_ARROW_LIBS " -lstdc++")
  foreach(_quiver_t ArrowCompute::arrow_compute_shared Arrow::arrow_shared)
    get_target_property(_quiver_type ${_quiver_t} TYPE)
    if(_quiver_type STREQUAL "SHARED_LIBRARY")
      get_target_property(_quiver_loc ${_quiver_t} IMPORTED_LOCATION)
      get_filename_component(_quiver_file "${_quiver_loc}" NAME)
      if(_quiver_file MATCHES "^lib(.+)\\.so$")
        string(APPEND QUIVER_PC_ARROW_LIBS " -l${CMAKE_MATCH_1}")
      else()  # only a versioned name (libarrow.so.2600): link it by file name
        string(APPEND QUIVER_PC_ARROW_LIBS " -l:${_quiver_file}")
      endif()
    endif()
  endforeach()
  foreach(_quiver_l IN LISTS CMAKE_DL_LIBS)  # Arrow::arrow_shared's interface has them
    string(APPEND QUIVER_PC_ARROW_LIBS " -l${_quiver_l}")
  endforeach()
else()
  set(QUIVER_PC_ARROW_REQUIRES ", arrow")
  get_target_property(_quiver_type ArrowCompute::arrow_compute_shared TYPE)
  if(NOT _quiver_type STREQUAL "INTERFACE_LIBRARY")
    set(QUIVER_PC_ARROW_REQUIRES ", arrow-compute, arrow")
  endif()
  set(QUIVER_PC_ARROW_LIBS "-lstdc++")
endif()
string(STRIP "${QUIVER_PC_ARROW_LIBS}" QUIVER_PC_ARROW_LIBS)

foreach(_quiver_pc quiver quiver-arrow quiver-control)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/${_quiver_pc}.pc.in"
                 "${PROJECT_BINARY_DIR}/pkgconfig/${_quiver_pc}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/pkgconfig/${_quiver_pc}.pc"
          DESTINATION "${QUIVER_INSTALL_PKGCONFIGDIR}"
          COMPONENT Quiver_Development)
endforeach()
