# Sanitizer and fuzzing builds (make test-asan, make fuzz; both use the build folder build-asan).
#   DRAFT_SANITIZE=ON  every target of the project (library, tests, CLI) with AddressSanitizer +
#                      UndefinedBehaviorSanitizer; undefined behaviour halts (-fno-sanitize-recover).
#   DRAFT_FUZZ=ON      (clang only; implies DRAFT_SANITIZE) also compiles everything with the coverage
#                      instrumentation libFuzzer follows (-fsanitize=fuzzer-no-link) and builds the fuzz
#                      targets in fuzz/, one per input kind. The same objects serve the unit tests, whose
#                      binaries get the coverage callbacks' default (no-op) definitions from the ASan runtime.
# LibTorch, libpng, zlib and the other system libraries are not instrumented: ASan still checks every access our
# code makes to memory they return, but not their own internals.
option(DRAFT_SANITIZE "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(DRAFT_FUZZ "Build the libFuzzer targets in fuzz/ (clang; implies DRAFT_SANITIZE)" OFF)

# gtest_discover_tests lists each test binary's tests at build time (POST_BUILD). A sanitized build lists them
# when ctest starts instead (PRE_TEST): the listing then runs under the sanitizer options `make test-asan` sets,
# not the build's environment, and the slower-starting binaries get more time.
set(DRAFT_TEST_DISCOVERY_TIMEOUT 60)
set(DRAFT_TEST_DISCOVERY_MODE POST_BUILD)

if(DRAFT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "DRAFT_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ "
      "(scripts/install-deps.sh --fuzz installs it)")
  endif()
  set(DRAFT_SANITIZE ON)
endif()

if(DRAFT_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "DRAFT_SANITIZE needs GCC or clang")
  endif()
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(DRAFT_FUZZ)
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
  set(DRAFT_TEST_DISCOVERY_TIMEOUT 300)
  set(DRAFT_TEST_DISCOVERY_MODE PRE_TEST)
  message(STATUS "Sanitizers: address, undefined; fuzz targets: ${DRAFT_FUZZ}")
endif()
