# Fails when a doctest test name would not survive CTest discovery. doctest_discover_tests looks up each
# test's suite (its CTest label) by running the binary with --test-case=NAME, and doctest splits that filter at
# commas: a name with a comma gets no label and silently drops out of `ctest -L cpu` (the sanitizer run). A
# semicolon would split the name itself (CMake lists).
#   cmake -DBINARIES="a|b" -P check_test_names.cmake
string(REPLACE "|" ";" binaries "${BINARIES}")
set(bad "")
foreach(bin ${binaries})
  execute_process(COMMAND "${bin}" --list-test-cases --no-version OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${bin} --list-test-cases failed (${rc})")
  endif()
  string(FIND "${out}" ";" semicolon)
  if(NOT semicolon EQUAL -1)
    message(FATAL_ERROR "${bin}: a test name contains a semicolon")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line ${lines})
    if(line MATCHES ",")
      string(APPEND bad "\n  ${line}")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "test names with a comma (ctest would not label them; use ' - '):${bad}")
endif()
message(STATUS "test names: no commas or semicolons")
