# Quiver — top-level entry points. See docs/ARCHITECTURE.md ("Contracts").
#   make deps    install missing system packages (as root) and the Python venv
#   make build   configure + build (build/, or build-asan/ when sanitizing)
#   make test    deps + build + ctest + type check (scripts/typecheck.sh) + pytest + go test
#                (ASan+UBSan when CI=true or QUIVER_SANITIZE=1)
#   make test-tsan  deps + ThreadSanitizer build (build-tsan/) + ctest (C++ tests only)
#   make demo    the Ledger pipeline (examples/ledger.toml) with a report, vs JSON over stdio,
#                then the Evidence command/result pipeline (examples/evidence.toml)
#   make python  build and install the Python package into .venv (pip install .)
#   make stubs   regenerate the native module's type stubs (python/quiver/_quiver/*.pyi)
#   make bench   deps + Release build (build-release/) + the benchmark suite (bench/suite.py)
#   make bench-quick  the same workloads at small counts (under 2 minutes)
#   make fuzz    libFuzzer fuzzers, FUZZ_SECONDS each (default 60)
#   make chaos   1,000 faults (SIGKILL, SIGSTOP, scribbles) on 4 nodes under load (CHAOS_KILLS)
#   make soak    10 minutes at full rate: RSS and fds flat, counters consistent (SOAK_SECONDS)
#   make format | tidy | clean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

PYTHON ?= $(CURDIR)/.venv/bin/python
JOBS   := $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 2 ? n : 2 )))

# Sanitized builds (ASan+UBSan) get their own tree so they never clobber build/.
SANITIZE := $(if $(filter 1 ON on true TRUE yes,$(QUIVER_SANITIZE))$(filter true TRUE 1,$(CI)),ON,OFF)
ifeq ($(SANITIZE),ON)
  BUILD_DIR := build-asan
else
  BUILD_DIR := build
endif
RELEASE_DIR := build-release
TSAN_DIR    := build-tsan

GENERATOR := $(if $(shell command -v ninja 2>/dev/null),-G Ninja,)
# Only pass a generator when creating a tree: an existing tree keeps the one it has.
gen_for = $(if $(wildcard $(1)/CMakeCache.txt),,$(GENERATOR))

export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS  ?= detect_leaks=1
# Leaks inside the wheel's libraries only; each entry says which report needed it.
export LSAN_OPTIONS  ?= suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

FORMAT_DIRS := include src tests bench examples python
CXX_GLOB    := -name '*.h' -o -name '*.hh' -o -name '*.hpp' -o -name '*.cc' -o -name '*.cpp'

.PHONY: deps build test test-tsan demo python bench bench-quick bench-setup fuzz format tidy clean

deps:
	@bash scripts/bootstrap.sh

build:
	@cmake -S . -B $(BUILD_DIR) $(call gen_for,$(BUILD_DIR)) \
	  -DQUIVER_SANITIZE=$(SANITIZE) -DQUIVER_PYTHON=$(PYTHON)
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@if [ "$(BUILD_DIR)" = build ] && [ ! -e compile_commands.json -o -L compile_commands.json ]; then \
	  ln -sfn build/compile_commands.json compile_commands.json; fi

test: deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory python
	PYTHON=$(PYTHON) bash scripts/typecheck.sh
	QUIVER_TEST_BUILD_DIR=$(CURDIR)/$(BUILD_DIR) $(PYTHON) -m pytest -q python/tests
	@GO=$$(command -v go || ls /usr/local/go/bin/go 2>/dev/null); \
	if [ ! -d go/quiverflight ]; then :; \
	elif [ -z "$$GO" ]; then echo "make test: Go is not installed: go/quiverflight's tests skipped"; \
	else echo "cd go/quiverflight && go test ./..."; cd go/quiverflight && \
	  QUIVER_BUILD_DIR=$(CURDIR)/$(BUILD_DIR) QUIVER_PYTHON=$(PYTHON) $$GO test -count=1 ./...; fi
	@$(MAKE) --no-print-directory wheel
	bash scripts/wheel_test.sh

# The wheel a user installs: pip wheel (isolated) + auditwheel repair into dist/
# (scripts/wheel.sh); wheel-test installs it into a fresh venv without a compiler and runs
# it (scripts/wheel_test.sh, also part of make test).
.PHONY: wheel wheel-test
wheel: deps
	PYTHON=$(PYTHON) bash scripts/wheel.sh

wheel-test: wheel
	bash scripts/wheel_test.sh

# The C++ test suite under ThreadSanitizer, in build-tsan/ (QUIVER_TSAN=ON; TSan cannot be
# combined with ASan, so QUIVER_SANITIZE=1 is refused here; CI=true alone is ignored).
# The Python tests are not part of it: a TSan-built extension module only loads into the
# (uninstrumented) interpreter with libtsan preloaded (LD_PRELOAD=libtsan.so python), and
# then CPython, numpy and pyarrow are all uninstrumented: make test covers them (ASan).
# TSAN_OPTIONS (a TSAN_OPTIONS in the environment replaces them), inherited by the peers
# that tests fork/exec, which are instrumented too:
#   halt_on_error=1          the first report fails the test (exit code 66)
#   second_deadlock_stack=1  lock-order reports show where both locks were taken
#   suppressions=            tests/tsan.supp: false positives of the uninstrumented wheel
#                            libraries (Arrow, Flight/gRPC) only, each with its reason
# die_after_fork stays at its default (1): the forked children of the tests and of the
# supervisor exec a peer at once, or run a few calls and _exit, and none starts a thread,
# the one thing TSan refuses after a multi-threaded fork (the suite passes with it). If one
# ever does, that child dies with "starting new threads after multi-threaded fork is not
# supported": make the child exec a peer instead of setting die_after_fork=0.
TSAN_OPTIONS_DEFAULT := halt_on_error=1 second_deadlock_stack=1 \
  suppressions=$(CURDIR)/tests/tsan.supp
test-tsan: deps
	@if [ -n "$(filter 1 ON on true TRUE yes,$(QUIVER_SANITIZE))" ]; then \
	  echo "test-tsan: QUIVER_SANITIZE=$(QUIVER_SANITIZE) asks for ASan+UBSan, which cannot be" \
	       "combined with TSan; unset it (ASan: make test QUIVER_SANITIZE=1)" >&2; exit 2; fi
	@cmake -S . -B $(TSAN_DIR) $(call gen_for,$(TSAN_DIR)) \
	  -DQUIVER_TSAN=ON -DQUIVER_SANITIZE=OFF -DQUIVER_PYTHON=$(PYTHON)
	@cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && TSAN_OPTIONS="$${TSAN_OPTIONS:-$(TSAN_OPTIONS_DEFAULT)}" \
	  ctest --output-on-failure -j $(JOBS)

# The long forms of tests/chaos (ctest runs short ones): the plain build, so timings are real.
CHAOS_KILLS  ?= 1000
SOAK_SECONDS ?= 600
chaos: deps
	@$(MAKE) --no-print-directory build CI= QUIVER_SANITIZE=0
	build/quiver_chaos --kills $(CHAOS_KILLS)

soak: deps
	@$(MAKE) --no-print-directory build CI= QUIVER_SANITIZE=0
	build/quiver_chaos --soak $(SOAK_SECONDS)

# The Ledger and document pipelines end to end, with a report (always the plain build: demo numbers).
demo: deps
	@$(MAKE) --no-print-directory build CI= QUIVER_SANITIZE=0
	@$(MAKE) --no-print-directory python
	$(PYTHON) examples/ledger/demo.py --build $(CURDIR)/build
	$(PYTHON) examples/evidence/demo.py --build $(CURDIR)/build

# The Python package, installed into .venv the way a user would (`pip install .`), built
# against the venv's own pyarrow (no build isolation), incrementally in build-py/.
python: deps
	$(PYTHON) -m pip install --no-build-isolation --no-deps -q -Cbuild-dir=build-py/{wheel_tag} .

# The native module's type stubs (python/quiver/_quiver/*.pyi, with python/quiver/py.typed),
# made by nanobind.stubgen from the installed quiver._quiver (from a scratch directory, so that
# it imports the installed package) and the patterns of scripts/stubgen-patterns.txt. Commit
# them: python/tests/test_typing.py fails when they differ from what this makes.
.PHONY: test-free-threaded
# The Python suite on a free-threaded CPython (no GIL): scripts/free_threaded.sh builds one
# (or takes QUIVER_FT_PYTHON) and the module for it. Not part of `make test`.
test-free-threaded: build
	bash scripts/free_threaded.sh

.PHONY: stubs
stubs: python
	cd "$${TMPDIR:-/tmp}" && $(PYTHON) -m nanobind.stubgen -m quiver._quiver -r \
	  -O $(CURDIR)/python/quiver -M $(CURDIR)/python/quiver/py.typed -q \
	  -p $(CURDIR)/scripts/stubgen-patterns.txt

# The benchmark suite (bench/suite.py via `quiver bench`): W1-W6 of docs/benchmarks.md against
# real peers, results and plots in bench/results/. bench-quick: the same at small counts.
bench: bench-setup
	$(RELEASE_DIR)/quiver bench

bench-quick: bench-setup
	$(RELEASE_DIR)/quiver bench --quick

# Release build, the Python package, and the suite's peers (each installed on its own: one
# that cannot be installed shows up as unavailable in the results, it does not stop the run).
# W3's native iceoryx2 peer (bench/iceoryx2_peer, Rust) needs cargo (on PATH or in
# ~/.cargo/bin); it builds in $(RELEASE_DIR)/iceoryx2_peer-target and is copied to
# $(RELEASE_DIR)/iceoryx2_peer. Without cargo, or if the build fails, the reason goes to
# $(RELEASE_DIR)/iceoryx2_peer.unavailable, which W3's results quote.
bench-setup: deps
	@cmake -S . -B $(RELEASE_DIR) $(call gen_for,$(RELEASE_DIR)) \
	  -DCMAKE_BUILD_TYPE=Release -DQUIVER_SANITIZE=OFF -DQUIVER_PYTHON=$(PYTHON)
	@cmake --build $(RELEASE_DIR) -j $(JOBS)
	@$(MAKE) --no-print-directory python
	@grep -Ev '^\s*(#|$$)' bench/requirements.txt | while read -r req; do \
	  $(PYTHON) -m pip install -q "$$req" 2>/dev/null || \
	    echo "bench: could not install '$$req'; the results will say it is unavailable"; \
	done
	@peer=$(RELEASE_DIR)/iceoryx2_peer; rm -f $$peer $$peer.unavailable; why=; \
	cargo=$$(command -v cargo || ls $$HOME/.cargo/bin/cargo 2>/dev/null || true); \
	if [ -z "$$cargo" ]; then \
	  why="cargo (Rust) is not installed: install it (https://rustup.rs), then make bench-setup"; \
	elif ! CARGO_TARGET_DIR=$(CURDIR)/$(RELEASE_DIR)/iceoryx2_peer-target $$cargo build \
	    --release --locked -j $(JOBS) --manifest-path bench/iceoryx2_peer/Cargo.toml; then \
	  why="the cargo build of bench/iceoryx2_peer failed (make bench-setup shows why)"; \
	else cp $(RELEASE_DIR)/iceoryx2_peer-target/release/iceoryx2_peer $$peer; fi; \
	if [ -n "$$why" ]; then echo "$$why" > $$peer.unavailable; \
	  echo "bench: iceoryx2_peer unavailable: $$why"; fi

# libFuzzer fuzzers (clang) in build-fuzz/, FUZZ_SECONDS each (default 60) on a copy of
# their seed corpora (tests/fuzz/corpus/); a crash fails with its input kept.
fuzz: deps
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) QUIVER_PYTHON=$(PYTHON) bash scripts/fuzz.sh

format:
	@files=$$(find $(wildcard $(FORMAT_DIRS)) -type f \( $(CXX_GLOB) \) 2>/dev/null || true); \
	if [ -n "$$files" ]; then clang-format -i $$files; echo "formatted $$(echo "$$files" | wc -l) files"; \
	else echo "format: no C++ sources"; fi

tidy:
	@$(MAKE) --no-print-directory build QUIVER_SANITIZE=0 CI=
	@files=$$(find src -type f -name '*.cc' 2>/dev/null || true); \
	if [ -n "$$files" ]; then echo "$$files" | xargs -r -P $(JOBS) -n 1 clang-tidy -p build --quiet; \
	else echo "tidy: no sources under src/"; fi

clean:
	rm -rf build build-asan build-tsan build-release
	@if [ -L compile_commands.json ]; then rm -f compile_commands.json; fi

# The C++ library as an outside project uses it (scripts/consumer_test.sh, tests/consumer/):
# Quiver installed into a temporary prefix and a consumer built against it (find_package,
# pkg-config), then the consumer with Quiver added by add_subdirectory. Also the ctest test
# `consumer` (so part of make test). About 5 minutes on 2 cores.
.PHONY: test-consumer
test-consumer:
	QUIVER_PYTHON=$(PYTHON) JOBS=$(JOBS) bash scripts/consumer_test.sh
