# QuiverArrow.cmake — find Arrow C++ and Arrow Flight C++.
#
# Order (see docs/ARCHITECTURE.md, "Dependencies"):
#   1. find_package(Arrow CONFIG) — a system or conda install that ships a CMake config.
#   2. Fallback: the pyarrow wheel in the project venv (${QUIVER_PYTHON}). The wheel ships
#      headers and shared libraries but no CMake config (apache/arrow#14914), so the
#      IMPORTED targets are defined here, with an RPATH to the wheel's lib dir.
#
# Result: targets Arrow::arrow_shared, ArrowCompute::arrow_compute_shared and (if available)
# ArrowFlight::arrow_flight_shared, and the variables QUIVER_ARROW_SOURCE ("config" |
# "wheel"), QUIVER_ARROW_VERSION, QUIVER_ARROW_LIBDIR (wheel only).
#
# Also installed beside QuiverConfig.cmake (cmake/QuiverInstall.cmake), which includes it
# with QUIVER_ARROW_PACKAGE_MODE set: a consumer of an installed Quiver finds Arrow the same
# way. There a failure does not stop the configure: it sets QUIVER_ARROW_NOT_FOUND_MESSAGE
# and returns (find_package(Quiver) then reports Quiver as not found, with that message).
# Either way binaries get the wheel's lib dir in their build and install RPATHs.

# The interpreter whose pyarrow is the fallback. The top-level build: the project's .venv (as
# `make deps` makes it). A subproject, or a consumer of the installed package: the first of
# Python3_EXECUTABLE, Python_EXECUTABLE, <top source dir>/.venv, <project>/.venv, and a
# python3 on the PATH.
if(DEFINED QUIVER_PYTHON)
  # Given (-DQUIVER_PYTHON=..., or cached by an earlier configure of the top-level build).
elseif(QUIVER_ARROW_PACKAGE_MODE OR NOT PROJECT_IS_TOP_LEVEL)
  set(QUIVER_PYTHON "")
  foreach(_cand "${Python3_EXECUTABLE}" "${Python_EXECUTABLE}"
                "${CMAKE_SOURCE_DIR}/.venv/bin/python" "${PROJECT_SOURCE_DIR}/.venv/bin/python")
    if(_cand AND EXISTS "${_cand}")
      set(QUIVER_PYTHON "${_cand}")
      break()
    endif()
  endforeach()
  if(NOT QUIVER_PYTHON)
    find_program(QUIVER_PYTHON3_ON_PATH NAMES python3 python)
    if(QUIVER_PYTHON3_ON_PATH)
      set(QUIVER_PYTHON "${QUIVER_PYTHON3_ON_PATH}")
    else()
      set(QUIVER_PYTHON "python3 (none on the PATH)")
    endif()
  endif()
  # Not cached, so that a later -DPython3_EXECUTABLE=... still counts.
else()
  set(QUIVER_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
      "Python interpreter whose pyarrow wheel provides Arrow C++ when no Arrow CMake config is found")
endif()
option(QUIVER_ARROW_FROM_WHEEL "Skip find_package(Arrow) and always use the pyarrow wheel" OFF)

# Stops: a FATAL_ERROR in a build of Quiver, a "not found" for find_package(Quiver).
macro(_quiver_arrow_fail)
  string(CONCAT _quiver_arrow_msg ${ARGN})
  if(QUIVER_ARROW_PACKAGE_MODE)
    set(QUIVER_ARROW_NOT_FOUND_MESSAGE "${_quiver_arrow_msg}")
    return()
  endif()
  message(FATAL_ERROR "${_quiver_arrow_msg}")
endmacro()
unset(QUIVER_ARROW_NOT_FOUND_MESSAGE)

if(NOT QUIVER_ARROW_FROM_WHEEL)
  find_package(Arrow CONFIG QUIET)
endif()

if(Arrow_FOUND AND TARGET Arrow::arrow_shared)
  set(QUIVER_ARROW_SOURCE "config")
  set(QUIVER_ARROW_VERSION "${Arrow_VERSION}")
  find_package(ArrowFlight CONFIG QUIET)
  find_package(ArrowCompute CONFIG QUIET)
  if(NOT TARGET ArrowCompute::arrow_compute_shared)  # Arrow < 21: compute is in libarrow
    add_library(ArrowCompute::arrow_compute_shared INTERFACE IMPORTED GLOBAL)
    set_target_properties(ArrowCompute::arrow_compute_shared PROPERTIES
      INTERFACE_LINK_LIBRARIES Arrow::arrow_shared)
  endif()
  if(NOT TARGET ArrowFlight::arrow_flight_shared AND NOT QUIVER_ARROW_PACKAGE_MODE)
    message(WARNING "Quiver: Arrow ${Arrow_VERSION} found via CMake config (${Arrow_DIR}) "
                    "but ArrowFlight was not; the Flight layer will not build.")
  endif()
  message(STATUS "Quiver: Arrow ${Arrow_VERSION} from CMake config: ${Arrow_DIR}")
  return()
endif()

# ---------------------------------------------------------------------------------------
# Fallback: the pyarrow wheel.
# ---------------------------------------------------------------------------------------
if(QUIVER_ARROW_PACKAGE_MODE)
  set(_quiver_fix_hint
      "pass -DQUIVER_PYTHON=/path/to/python (or -DPython3_EXECUTABLE=...) of a Python with "
      "pyarrow ${QUIVER_ARROW_VERSION_WANTED} installed, or install Arrow C++ with its CMake "
      "config and set Arrow_DIR / CMAKE_PREFIX_PATH.")
else()
  set(_quiver_fix_hint
      "Run `make deps` (or scripts/bootstrap.sh) to create .venv and install pyarrow, "
      "or pass -DQUIVER_PYTHON=/path/to/python (with pyarrow installed), "
      "or install Arrow C++ with its CMake config and set Arrow_DIR / CMAKE_PREFIX_PATH.")
endif()

if(NOT EXISTS "${QUIVER_PYTHON}")
  _quiver_arrow_fail(
    "Quiver: Arrow C++ not found.\n"
    "  find_package(Arrow CONFIG) found no Arrow CMake config, and the fallback interpreter\n"
    "  QUIVER_PYTHON=${QUIVER_PYTHON} does not exist.\n"
    "  Fix: " ${_quiver_fix_hint})
endif()

execute_process(
  COMMAND "${QUIVER_PYTHON}" -c [=[
import json, os, sys
try:
    import pyarrow
    pyarrow.get_include
except (ImportError, AttributeError) as e:
    # AttributeError: a leftover site-packages/pyarrow directory (pip uninstall keeps the
    # untracked libarrow.so symlinks made by create_library_symlinks) imports as an empty
    # namespace package.
    sys.exit("pyarrow is not installed for %s (%s: %s)" % (sys.executable, type(e).__name__, e))
try:
    pyarrow.create_library_symlinks()   # makes libarrow.so -> libarrow.so.NNNN etc.
except Exception as e:                  # e.g. read-only site-packages: use versioned names
    print("create_library_symlinks failed: %s" % e, file=sys.stderr)
print(json.dumps({"version": pyarrow.__version__,
                  "include": pyarrow.get_include(),
                  "libdirs": pyarrow.get_library_dirs()}))
]=]
  RESULT_VARIABLE _quiver_py_rc
  OUTPUT_VARIABLE _quiver_py_out
  ERROR_VARIABLE _quiver_py_err
  OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_STRIP_TRAILING_WHITESPACE)

if(NOT _quiver_py_rc EQUAL 0)
  _quiver_arrow_fail(
    "Quiver: Arrow C++ not found.\n"
    "  find_package(Arrow CONFIG) found no Arrow CMake config, and\n"
    "  the fallback, the pyarrow wheel of QUIVER_PYTHON=${QUIVER_PYTHON}, is unusable:\n"
    "    ${_quiver_py_err}\n"
    "  Fix: " ${_quiver_fix_hint})
endif()
if(_quiver_py_err)
  message(STATUS "Quiver: pyarrow said: ${_quiver_py_err}")
endif()

string(JSON QUIVER_ARROW_VERSION GET "${_quiver_py_out}" version)
string(JSON _quiver_arrow_include GET "${_quiver_py_out}" include)
string(JSON _quiver_arrow_libdir GET "${_quiver_py_out}" libdirs 0)

# Locate a shared library in the wheel: prefer the unversioned symlink, else libX.so.NNNN.
function(_quiver_wheel_lib out name)
  set(_lib "${_quiver_arrow_libdir}/lib${name}.so")
  if(NOT EXISTS "${_lib}")
    file(GLOB _cands "${_quiver_arrow_libdir}/lib${name}.so.[0-9]*")
    list(SORT _cands)
    list(LENGTH _cands _n)
    if(_n EQUAL 0)
      set(${out} "" PARENT_SCOPE)
      return()
    endif()
    list(GET _cands 0 _lib)
  endif()
  set(${out} "${_lib}" PARENT_SCOPE)
endfunction()

_quiver_wheel_lib(_quiver_libarrow arrow)
_quiver_wheel_lib(_quiver_libflight arrow_flight)
_quiver_wheel_lib(_quiver_libcompute arrow_compute)
if(NOT _quiver_libarrow OR NOT EXISTS "${_quiver_arrow_include}/arrow/api.h")
  _quiver_arrow_fail(
    "Quiver: the pyarrow ${QUIVER_ARROW_VERSION} wheel at ${_quiver_arrow_libdir} has no "
    "libarrow.so or no headers (${_quiver_arrow_include}/arrow/api.h). Reinstall pyarrow "
    "from a binary wheel (pip install --force-reinstall --only-binary=:all: pyarrow).")
endif()

# --- libstdc++ ABI check ---------------------------------------------------------------
# manylinux_2_28 wheels (what pip picks on Debian 12) use the new C++11 ABI, as g++ 12 does
# by default. A manylinux2014 wheel uses the old ABI: std::string/std::list in Arrow's API
# would then not link (or worse, link and crash). Checked once per libarrow file.
# (A consumer project without C++ enabled has no compiler to check with.)
get_property(_quiver_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if("CXX" IN_LIST _quiver_languages AND
   NOT QUIVER_ARROW_ABI_CHECKED STREQUAL "${_quiver_libarrow}|${CMAKE_CXX_COMPILER}|${CMAKE_CXX_FLAGS}")
  # 1. Symbol scan: a new-ABI libarrow exports symbols mangled with the abi:cxx11 tag.
  if(CMAKE_NM)
    set(_nm "${CMAKE_NM}")
  else()
    find_program(QUIVER_NM_EXECUTABLE nm)
    set(_nm "${QUIVER_NM_EXECUTABLE}")
  endif()
  if(_nm)
    execute_process(
      COMMAND "${_nm}" -D --defined-only "${_quiver_libarrow}"
      COMMAND grep -c __cxx11
      OUTPUT_VARIABLE _quiver_cxx11_syms
      OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _quiver_nm_rc)
    if(NOT _quiver_cxx11_syms OR _quiver_cxx11_syms EQUAL 0)
      _quiver_arrow_fail(
        "Quiver: ${_quiver_libarrow} exports no `__cxx11` symbols: this pyarrow wheel "
        "(${QUIVER_ARROW_VERSION}) was built with the OLD libstdc++ ABI "
        "(a manylinux2014 wheel), but g++ uses the new C++11 ABI by default.\n"
        "  Either install a manylinux_2_28 wheel (pip install --force-reinstall "
        "--only-binary=:all: 'pyarrow>=17' on a glibc>=2.28 system), or build all of "
        "Quiver with the old ABI: -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 "
        "(then every C++ dependency, GTest/benchmark included, must use the old ABI too).")
    endif()
  else()
    message(WARNING "Quiver: no `nm` found; skipping the symbol-based libstdc++ ABI scan.")
  endif()

  # 2. Compile, link and run a program that passes std::string across the libarrow
  #    boundary: fails to link if our ABI (incl. any _GLIBCXX_USE_CXX11_ABI in
  #    CMAKE_CXX_FLAGS) differs from the wheel's.
  set(_src "${CMAKE_BINARY_DIR}/CMakeFiles/quiver_arrow_abi_check.cc")
  file(WRITE "${_src}" [=[
#include <arrow/status.h>
#include <arrow/type.h>
#include <string>
int main() {
  std::string s = arrow::Status::Invalid("quiver-abi-probe").ToString();
  if (s.find("quiver-abi-probe") == std::string::npos) return 2;
  std::string t = arrow::field(std::string("f"), arrow::utf8())->ToString();
  return t == "f: string" ? 0 : 3;
}
]=])
  try_run(_quiver_abi_run _quiver_abi_compile
    "${CMAKE_BINARY_DIR}/CMakeFiles/quiver_arrow_abi_check" "${_src}"
    CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${_quiver_arrow_include}"
    LINK_LIBRARIES "${_quiver_libarrow}"
    LINK_OPTIONS "-Wl,-rpath,${_quiver_arrow_libdir}"
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    COMPILE_OUTPUT_VARIABLE _quiver_abi_compile_out
    RUN_OUTPUT_VARIABLE _quiver_abi_run_out)
  if(NOT _quiver_abi_compile)
    _quiver_arrow_fail(
      "Quiver: a test program could not be compiled/linked against ${_quiver_libarrow}.\n"
      "  If the errors are undefined references mentioning std::__cxx11 / [abi:cxx11], the "
      "wheel and the compiler disagree on the libstdc++ ABI: the wheel uses the new "
      "C++11 ABI (_GLIBCXX_USE_CXX11_ABI=1); remove any "
      "-D_GLIBCXX_USE_CXX11_ABI=0 from CMAKE_CXX_FLAGS, or install a matching wheel.\n"
      "  Compiler output:\n${_quiver_abi_compile_out}")
  endif()
  if(NOT _quiver_abi_run EQUAL 0)
    _quiver_arrow_fail(
      "Quiver: a test program linked against ${_quiver_libarrow} failed to run "
      "(result: ${_quiver_abi_run}). Output:\n${_quiver_abi_run_out}")
  endif()
  set(QUIVER_ARROW_ABI_CHECKED "${_quiver_libarrow}|${CMAKE_CXX_COMPILER}|${CMAKE_CXX_FLAGS}"
      CACHE INTERNAL "libarrow for which the ABI check passed")
  message(STATUS "Quiver: libstdc++ ABI check passed (new C++11 ABI, "
                 "${_quiver_cxx11_syms} __cxx11 symbols)")
endif()

# --- IMPORTED targets --------------------------------------------------------------------
if(NOT TARGET Arrow::arrow_shared)
  add_library(Arrow::arrow_shared SHARED IMPORTED GLOBAL)
  set_target_properties(Arrow::arrow_shared PROPERTIES
    IMPORTED_LOCATION "${_quiver_libarrow}"
    INTERFACE_INCLUDE_DIRECTORIES "${_quiver_arrow_include}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS}")
endif()
# Arrow compute (casts): its own library since Arrow 21, part of libarrow before.
if(_quiver_libcompute AND NOT TARGET ArrowCompute::arrow_compute_shared)
  add_library(ArrowCompute::arrow_compute_shared SHARED IMPORTED GLOBAL)
  set_target_properties(ArrowCompute::arrow_compute_shared PROPERTIES
    IMPORTED_LOCATION "${_quiver_libcompute}"
    INTERFACE_INCLUDE_DIRECTORIES "${_quiver_arrow_include}"
    INTERFACE_LINK_LIBRARIES Arrow::arrow_shared)
elseif(NOT TARGET ArrowCompute::arrow_compute_shared)
  add_library(ArrowCompute::arrow_compute_shared INTERFACE IMPORTED GLOBAL)
  set_target_properties(ArrowCompute::arrow_compute_shared PROPERTIES
    INTERFACE_LINK_LIBRARIES Arrow::arrow_shared)
endif()
if(_quiver_libflight AND NOT TARGET ArrowFlight::arrow_flight_shared)
  add_library(ArrowFlight::arrow_flight_shared SHARED IMPORTED GLOBAL)
  set_target_properties(ArrowFlight::arrow_flight_shared PROPERTIES
    IMPORTED_LOCATION "${_quiver_libflight}"
    INTERFACE_INCLUDE_DIRECTORIES "${_quiver_arrow_include}"
    INTERFACE_LINK_LIBRARIES Arrow::arrow_shared)
elseif(NOT _quiver_libflight AND NOT QUIVER_ARROW_PACKAGE_MODE)
  message(WARNING "Quiver: the pyarrow wheel has no libarrow_flight; the Flight layer will not build.")
endif()

# Binaries find the wheel's libraries without LD_LIBRARY_PATH (build tree and install).
list(APPEND CMAKE_BUILD_RPATH "${_quiver_arrow_libdir}")
list(APPEND CMAKE_INSTALL_RPATH "${_quiver_arrow_libdir}")
list(REMOVE_DUPLICATES CMAKE_BUILD_RPATH)
list(REMOVE_DUPLICATES CMAKE_INSTALL_RPATH)

set(QUIVER_ARROW_SOURCE "wheel")
set(QUIVER_ARROW_LIBDIR "${_quiver_arrow_libdir}")
message(STATUS "Quiver: Arrow ${QUIVER_ARROW_VERSION} from the pyarrow wheel: ${_quiver_arrow_libdir}")
