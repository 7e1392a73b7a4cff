# Compiles SOURCE with COMPILER and succeeds only if compilation fails with a
# diagnostic matching PATTERN (the error must name the requirement).
execute_process(
  COMMAND ${COMPILER} -std=c++23 -fsyntax-only -I${INCLUDE_DIR} ${SOURCE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected")
endif()
if(NOT "${out}${err}" MATCHES "${PATTERN}")
  message(FATAL_ERROR "${SOURCE} was rejected, but the diagnostic does not match '${PATTERN}':\n${err}")
endif()
message(STATUS "rejected as expected")
