# draft.cpp: the two commands of the README, and a few more for developers.
#   make demo       install what is missing, build, run the main job
#   make test       install what is missing, build, run the unit tests
#   make test-slow  the slow tests too
#   make test-gpu   the tests that need CUDA (a CUDA LibTorch build; skipped without a GPU)
#   make fuzz       build the safetensors fuzzer with clang and run it (FUZZ_SECONDS, default 600)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps build demo test test-slow test-gpu fuzz clean

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

fuzz:
	@scripts/install-deps.sh --fuzz
	scripts/fuzz.sh $${FUZZ_SECONDS:-600}

clean:
	rm -rf $(BUILD)
