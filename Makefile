# The two commands of the README: `make run` and `make test`. Everything else is CMake.
BUILD ?= build
RUN ?= $(CURDIR)/run
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run stop test test-unit test-sanitize format check-format clean

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

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) build-asan
