# Project-internal targets (tests, examples, benchmarks) build with these
# warnings; the library target itself never imposes flags on its consumers.
set(SLUICE_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion)
option(SLUICE_WERROR "Treat warnings as errors in project targets" OFF)
if(SLUICE_WERROR)
  list(APPEND SLUICE_WARNINGS -Werror)
endif()

# sluice_target_defaults(<target>): C++23, warnings, threads, the library.
function(sluice_target_defaults target)
  target_compile_features(${target} PRIVATE cxx_std_23)
  target_compile_options(${target} PRIVATE ${SLUICE_WARNINGS})
  target_link_libraries(${target} PRIVATE sluice::sluice)
endfunction()
