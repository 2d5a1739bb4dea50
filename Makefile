# draft.cpp: the two commands of the README, and a few more for developers.
#   make demo       install what is missing, build, run the main job
#   make test       install what is missing, build, run the unit tests
#   make test-slow  the slow tests too
#   make test-gpu   the tests that need CUDA (a CUDA LibTorch build; skipped without a GPU)
#   make test-browser  installs Chromium if missing, then the `browser` label: `draft report`'s page in headless
#                   Chromium (every image loads, no script error, a screenshot that is not blank)
#   make test-asan  the library and unit tests built with clang, AddressSanitizer + UndefinedBehaviorSanitizer
#                   (in build-asan), then the `unit` label with leak detection on and UBSan halting
#   make fuzz       the libFuzzer targets of fuzz/ (same build-asan), each for FUZZ_SECONDS (default 600);
#                   FUZZ_KINDS="idx png" runs only those
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

# The sanitizer build: clang, -O1 with line tables (readable reports), fuzz targets included (DRAFT_FUZZ).
ASAN_BUILD ?= build-asan
ASAN_CMAKE_FLAGS = -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DDRAFT_FUZZ=ON -DDRAFT_BUILD_BENCHMARKS=OFF \
  -DDRAFT_BUILD_EXAMPLES=OFF
# Leaks fail a test (LibTorch, not instrumented, leaves none that LeakSanitizer reports: no suppressions needed);
# UBSan halts on its first report.
SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

.PHONY: deps build demo test test-slow test-gpu test-browser asan-build test-asan fuzz clean

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo.sh $(BUILD)

test: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

test-slow: build
	ctest --test-dir $(BUILD) -L 'unit|slow' --output-on-failure -j $(JOBS)

test-gpu: build
	ctest --test-dir $(BUILD) -L gpu --output-on-failure

test-browser: build
	@scripts/install-deps.sh --browser
	ctest --test-dir $(BUILD) -L browser --output-on-failure

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) $(ASAN_CMAKE_FLAGS)

asan-build: deps
	@scripts/install-deps.sh --fuzz
	$(MAKE) $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: asan-build
	$(SANITIZER_ENV) ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

fuzz: deps
	@scripts/install-deps.sh --fuzz
	$(MAKE) $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target draft_fuzzers
	BUILD=$(ASAN_BUILD) scripts/fuzz.sh $${FUZZ_SECONDS:-600} $${FUZZ_KINDS:-}

clean:
	rm -rf $(BUILD)
