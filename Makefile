# The two commands of the README: `make run` and `make test`. Everything else is CMake.
BUILD ?= build
RUN ?= $(CURDIR)/run
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# make fuzz: the libFuzzer targets of tests/fuzz, built with clang in FUZZ_BUILD, each run for
# FUZZ_SECONDS; what they find goes to FUZZ_WORK (new inputs, crashes), never to the checked-in
# corpus.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_WORK ?= $(FUZZ_BUILD)/fuzz-work
FUZZ_TARGETS ?=

.PHONY: all deps build run stop test test-unit test-sanitize fuzz format check-format clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/demo.sh start $(BUILD) $(RUN)

stop:
	@scripts/demo.sh stop $(RUN)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

# The same tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-sanitize: export LSAN_OPTIONS = suppressions=$(CURDIR)/tests/lsan.supp
test-sanitize: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
test-sanitize:
	$(MAKE) test BUILD=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DCORCH_SANITIZE=ON -DCORCH_BUILD_BENCH=OFF"

# Fuzzing (tests/fuzz/README.md): only the fuzz targets and the libraries they link are built.
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DCORCH_FUZZ=ON -DCORCH_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_WORK) $(FUZZ_TARGETS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) build-asan $(FUZZ_BUILD)
