# leasehold — see README.md. Every target installs what it needs first.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 15
TSAN_BUILD  ?= build-tsan
JOBS        ?= $(shell nproc)
TESTENV_BIN := $(shell testenv/build.sh --print-bin)
TESTENV_DIR ?= $(CURDIR)/$(BUILD)/testenv-dev
CMAKE_FLAGS ?=
WERROR      := $(if $(CI),-DLEASEHOLD_WERROR=ON,)

.PHONY: all deps testenv build install demo test test-unit test-asan test-tsan test-fuzz fuzz bench bench-failover testenv-up testenv-down clean

all: build

deps:
	scripts/deps.sh

testenv: deps
	testenv/build.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The command, headers, static library, CMake package and pkg-config file:
# make install [PREFIX=/usr/local] [DESTDIR=/tmp/stage]
PREFIX      ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)

demo: build
	scripts/demo.sh $(BUILD)/leasehold

# Everything: unit, sim (10,000 seeds), integration on the real control plane,
# then unit+sim again under ASan+UBSan, every parser under libFuzzer, and
# unit+sim under ThreadSanitizer.
test: deps testenv
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) \
	  -DLEASEHOLD_TESTENV_BIN=$(TESTENV_BIN) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	trap '$(TESTENV_BIN)/testenv down --dir $(CURDIR)/$(BUILD)/testenv-state >/dev/null 2>&1 || true' EXIT
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz
	$(MAKE) --no-print-directory test-tsan

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L 'unit|sim'

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug $(WERROR) \
	  -DLEASEHOLD_SANITIZE=address,undefined -DLEASEHOLD_SIM_SEEDS=2000 >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -L 'unit|sim'

test-fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DLEASEHOLD_FUZZ=ON -DLEASEHOLD_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS) -L fuzz

# Longer fuzzing: make fuzz [LONG_FUZZ_SECONDS=600]
LONG_FUZZ_SECONDS ?= 300
fuzz:
	$(MAKE) --no-print-directory test-fuzz FUZZ_SECONDS=$(LONG_FUZZ_SECONDS)

test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLEASEHOLD_SANITIZE=thread \
	  -DLEASEHOLD_SIM_SEEDS=500 >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -L 'unit|sim'

# Electors per process (mem lock), then leasehold's Kubernetes client beside
# client-go on a control plane of its own (~1 min): Lease encode+decode, GET
# and PUT round trips; writes bench/results/kube_client.json, prints ratios.
bench: build testenv
	mkdir -p bench/results
	$(BUILD)/bench/leasehold_electors_bench --out bench/results/electors.json
	$(BUILD)/bench/leasehold_kube_client_bench --testenv-bin $(TESTENV_BIN) --out bench/results/kube_client.json

# leasehold against the client-go peer on the real control plane, in one run
# (~12 min): failover after release and after SIGKILL, apiserver requests per
# minute (audit log). Writes bench/results/failover.json and prints a table.
# Fewer trials: make bench-failover FAILOVER_FLAGS="--graceful-trials 20".
FAILOVER_FLAGS ?=
bench-failover: deps testenv
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) \
	  -DLEASEHOLD_TESTENV_BIN=$(TESTENV_BIN) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate
	mkdir -p bench/results
	python3 bench/failover.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --dir $(CURDIR)/$(BUILD)/bench-testenv --out bench/results/failover.json $(FAILOVER_FLAGS)

testenv-up: testenv
	$(TESTENV_BIN)/testenv up --dir $(TESTENV_DIR) --bin $(TESTENV_BIN)
	@echo "kubeconfigs: $(TESTENV_DIR)/kubeconfig-{admin,elector,nobody,cert-admin}"

testenv-down:
	$(TESTENV_BIN)/testenv down --dir $(TESTENV_DIR)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
