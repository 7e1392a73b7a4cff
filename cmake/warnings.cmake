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

# sluice_asio_target_defaults(<target>): for a test or example of the token
# forms: links sluice::asio and quiets two GCC warnings raised inside Asio's
# own code, which a SYSTEM include cannot quiet (they are raised where Asio's
# templates are inlined into ours):
# - -Wtsan: ThreadSanitizer does not model the fences of Asio's handler
#   invocation (asio/detail/std_fenced_block.hpp);
# - -Wmaybe-uninitialized: GCC 12, in the sanitizer builds, on the
#   value-initialised result inside Asio's co_spawn (asio/impl/co_spawn.hpp:
#   `handler(e, T())`), a false positive.
function(sluice_asio_target_defaults target)
  target_link_libraries(${target} PRIVATE sluice::asio)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=thread")
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
endfunction()
