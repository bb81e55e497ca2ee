# Fails when a doctest test name would not survive CTest discovery. doctest_discover_tests looks up each
# test's suite (its CTest label) by running the binary with --test-case=NAME, and doctest splits that filter at
# commas: a name with a comma gets no label and silently drops out of `ctest -L cpu` (the sanitizer run). In
# the filter a backslash escapes and * and ? are wildcards (the entry would run no test, or others too); a
# semicolon or a bracket breaks CMake's lists.
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
    if(line MATCHES "^\\[doctest\\] " OR line MATCHES "^=+$")  # doctest's own header and footer
      continue()
    endif()
    if(line MATCHES "[,*?\\[]" OR line MATCHES "]")
      string(APPEND bad "\n  ${line}")
    endif()
  endforeach()
endforeach()
if(NOT bad STREQUAL "")
  message(FATAL_ERROR "test names with a comma, backslash, * ? [ or ] (use ' - '):${bad}")
endif()
message(STATUS "test names: none with characters CTest discovery splits at")
