# statherd — top-level commands (`make help` lists them). Each target installs the Debian
# packages it needs (scripts/install-deps.sh; root or sudo) and builds first, into $(BUILD)
# (default build/: build/statherd-server, build/statherd-agent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
# -Werror for developer and CI builds only (a plain cmake build, as a packager runs it, has it off).
WERROR     ?= ON
# Keep the build output readable (no "Entering directory" lines from the nested makes).
MAKEFLAGS += --no-print-directory
PREFIX     ?= /usr/local
CHAOS_SECONDS ?= 600
CHAOS_KILLS   ?= 25
CHAOS_SEED    ?=

.PHONY: all help deps build build-asan test test-unit test-asan demo bench chaos fuzz clean install package

all: build

help:
	@echo 'make            build everything (daemons, tests, benchmarks) into $(BUILD)/'
	@echo 'make demo       build only the two daemons, then a ~30 s live demo on loopback'
	@echo '                (DEMO_ARGS="--seconds 60 --keep" to run longer / keep the server up)'
	@echo 'make test       every test: unit + integration (real carbon-cache, Prometheus), then'
	@echo '                the unit and C++ etcd tests under AddressSanitizer + UBSan (in $(ASAN_BUILD)/)'
	@echo 'make test-unit  the unit tests only'
	@echo 'make bench      benchmarks, printed as tables'
	@echo 'make chaos      10-minute chaos test (root: it mounts a tmpfs); CHAOS_SECONDS,'
	@echo '                CHAOS_KILLS (of each of the four kill kinds), CHAOS_SEED'
	@echo 'make fuzz       every libFuzzer target (clang) for FUZZ_SECONDS (60) or FUZZ_RUNS each,'
	@echo '                from the committed corpora in tests/fuzz/corpus/'
	@echo 'make install    binaries, example configs (/etc/statherd when PREFIX=/usr), systemd'
	@echo '                units; PREFIX (default /usr/local) and DESTDIR honoured'
	@echo 'make package    Debian package $(BUILD)/statherd_<version>_<arch>.deb (CPack)'
	@echo 'make clean      remove $(BUILD), $(ASAN_BUILD) and build-fuzz'
	@echo 'Variables: BUILD (build), JOBS (nproc), WERROR (ON), CMAKE_ARGS.'

deps:
	@scripts/install-deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTATHERD_WERROR=$(WERROR) \
	  -DSTATHERD_TESTS=ON -DSTATHERD_BENCH=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSTATHERD_SANITIZE=ON -DSTATHERD_BENCH=OFF -DSTATHERD_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

test: build
	@scripts/install-deps.sh all
	@MAKE="$(MAKE)" scripts/test.sh $(BUILD) $(ASAN_BUILD)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -L 'unit|cpp_integration'

# The demo needs only the packages of the two daemons and python3, and builds only the daemons.
# A new build dir is configured for that alone: no tests, no benchmarks (their packages are not
# needed), build type Demo (-O1, no debug info: ~45 % less compile time than RelWithDebInfo).
# `make build` turns it into the usual RelWithDebInfo build with tests in the same dir.
demo:
	@scripts/install-deps.sh demo
	@if [ -f $(BUILD)/CMakeCache.txt ]; then \
	  cmake -S . -B $(BUILD) -DSTATHERD_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null; \
	else \
	  echo "demo: building statherd-server and statherd-agent into $(BUILD)/ (a few minutes the first time)"; \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Demo -DCMAKE_CXX_FLAGS_DEMO="-O1 -DNDEBUG" \
	    -DSTATHERD_WERROR=$(WERROR) -DSTATHERD_TESTS=OFF -DSTATHERD_BENCH=OFF $(CMAKE_ARGS) >/dev/null; \
	fi
	@cmake --build $(BUILD) -j$(JOBS) --target statherd-server statherd-agent | grep -v '^\[' || true
	@scripts/demo.sh $(BUILD) $(DEMO_ARGS)

bench: build
	@scripts/bench.sh $(BUILD)

chaos: build
	@scripts/install-deps.sh all
	cd tests/integration && STATHERD_BIN_DIR=$(abspath $(BUILD)) STATHERD_SOURCE_DIR=$(CURDIR) \
	  STATHERD_CHAOS_SECONDS=$(CHAOS_SECONDS) STATHERD_CHAOS_KILLS=$(CHAOS_KILLS) \
	  $(if $(CHAOS_SEED),STATHERD_CHAOS_SEED=$(CHAOS_SEED)) /usr/bin/python3 -m unittest -v test_chaos

fuzz:
	@scripts/install-deps.sh all
	@CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTATHERD_FUZZ=ON -DSTATHERD_TESTS=OFF -DSTATHERD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@scripts/fuzz.sh build-fuzz $(or $(FUZZ_SECONDS),60) $(or $(FUZZ_RUNS),-1)

install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

package: build
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
