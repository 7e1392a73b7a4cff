# Compiles SOURCE (syntax only, templates instantiated) with COMPILER and the
# project's warning flags FLAGS plus -Werror, and succeeds only if that
# compiles: the library's headers must be warning-free in every form a user
# instantiates.
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(
  COMMAND ${COMPILER} -std=c++23 ${flags} -Werror -fsyntax-only -I${INCLUDE_DIR} ${SOURCE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(NOT result EQUAL 0)
  string(SUBSTRING "${out}${err}" 0 6000 shown)
  message(FATAL_ERROR "${SOURCE} does not compile warning-free with ${FLAGS}:\n${shown}")
endif()
message(STATUS "compiles warning-free")
