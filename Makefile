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
# Configures $(BUILD) for the targets that test or benchmark on testenv's
# control plane.
CONFIGURE    = cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) \
               -DLEASEHOLD_TESTENV_BIN=$(TESTENV_BIN) $(CMAKE_FLAGS) >/dev/null
CMAKE_FLAGS ?=
WERROR      := $(if $(CI),-DLEASEHOLD_WERROR=ON,)

.PHONY: all deps testenv build install image image-lock demo test test-unit test-asan test-tsan test-fuzz fuzz bench bench-etcd bench-failover bench-cadence torture torture-etcd stress-test testenv-up testenv-down clean

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

# The sidecar image, from scratch with buildah (no registry, no base image):
# build-image/image/leasehold-VERSION.oci.tar. See scripts/image.sh.
IMAGE_BUILD ?= build-image
image: deps
	cmake -S . -B $(IMAGE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel -DLEASEHOLD_BUILD_TESTS=OFF $(WERROR) >/dev/null
	cmake --build $(IMAGE_BUILD) -j $(JOBS) --target leasehold_cli
	scripts/image.sh $(IMAGE_BUILD)/image $(IMAGE_BUILD)/leasehold

# Records the Debian packages (and versions) the last make image put in the image.
image-lock: image
	cp $(IMAGE_BUILD)/image/packages.txt deploy/image/packages.lock

demo: build
	scripts/demo.sh $(BUILD)/leasehold

# Everything: unit, sim (10,000 seeds), integration on the real control plane,
# then unit+sim again under ASan+UBSan, every parser under libFuzzer, and
# unit+sim under ThreadSanitizer.
test: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)
	trap '$(TESTENV_BIN)/testenv down --dir $(CURDIR)/$(BUILD)/testenv-state >/dev/null 2>&1 || true' EXIT
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) || { scripts/failed_output.py $(BUILD); exit 1; }
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz
	$(MAKE) --no-print-directory test-tsan

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L 'unit|sim'

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug $(WERROR) \
	  -DLEASEHOLD_SANITIZE=address,undefined -DLEASEHOLD_SIM_SEEDS=2000 >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD) --output-on-failure -L 'unit|sim' || { scripts/failed_output.py $(ASAN_BUILD); exit 1; }

test-fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DLEASEHOLD_FUZZ=ON -DLEASEHOLD_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure -j $(JOBS) -L fuzz || { scripts/failed_output.py $(FUZZ_BUILD); exit 1; }

# Longer fuzzing: make fuzz [LONG_FUZZ_SECONDS=600]
LONG_FUZZ_SECONDS ?= 300
fuzz:
	$(MAKE) --no-print-directory test-fuzz FUZZ_SECONDS=$(LONG_FUZZ_SECONDS)

test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLEASEHOLD_SANITIZE=thread \
	  -DLEASEHOLD_SIM_SEEDS=500 >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	ctest --test-dir $(TSAN_BUILD) --output-on-failure -L 'unit|sim' || { scripts/failed_output.py $(TSAN_BUILD); exit 1; }

# Everything leasehold is compared on, beside the client-go peer in the same
# run and on the same control plane build (~60 min on 2 cores; each driver
# starts a control plane of its own and prints its progress):
#   1 electors per process (mem lock)       bench/results/electors.json
#   2 GET/PUT round trips and client CPU    bench/results/kube_client.json
#   3 graceful and crash failover, crash take-over lateness and requests/min
#     of one Lease with 3 candidates, from the audit log
#                                           bench/results/failover.json
#   4 renewal cadence: the longest kube-apiserver outage each renew_interval
#     survives (leasehold only; optional: BENCH_CADENCE=0 skips it)
#                                           bench/results/cadence.json
#   5 idle elector process RSS and CPU      bench/results/sidecar.json
#   6 50 cold candidates on one Lease       bench/results/contention.json
#   7 1,000 Leases in one process           bench/results/scale.json
#   8 bench/results/latest.json, docs/benchmarks.md and its plots (bench/report.py)
# Fewer trials or a shorter run: BENCH_FAILOVER_FLAGS="--graceful-trials 20",
# BENCH_SIDECAR_SECONDS=60, BENCH_SCALE_FLAGS="--n 200 --window 30",
# BENCH_CONTENTION_FLAGS="--trials 2", BENCH_CADENCE_FLAGS="--intervals 2s,8s".
# Redraw only: /usr/bin/python3 bench/report.py
BENCH_FAILOVER_FLAGS   ?= --graceful-trials 100 --crash-trials 100
BENCH_SIDECAR_SECONDS  ?= 300
BENCH_SCALE_FLAGS      ?=
BENCH_CONTENTION_FLAGS ?=
BENCH_CADENCE          ?= 1
BENCH_CADENCE_FLAGS    ?=
bench: testenv
	scripts/deps.sh --bench
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_cli leasehold_candidate leasehold_electors_bench \
	  leasehold_kube_client_bench leasehold_scale_bench
	mkdir -p bench/results
	echo "[bench 1/8] electors per process (mem lock)"
	$(BUILD)/bench/leasehold_electors_bench --out bench/results/electors.json
	echo "[bench 2/8] Kubernetes client: GET/PUT beside client-go"
	$(BUILD)/bench/leasehold_kube_client_bench --testenv-bin $(TESTENV_BIN) --out bench/results/kube_client.json
	echo "[bench 3/8] failover and kube-apiserver requests/min beside client-go"
	python3 bench/failover.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --dir $(CURDIR)/$(BUILD)/bench-testenv --out bench/results/failover.json $(BENCH_FAILOVER_FLAGS)
	if [ "$(BENCH_CADENCE)" != 0 ]; then
	  echo "[bench 4/8] renewal cadence: longest kube-apiserver outage survived per renew_interval"
	  python3 bench/cadence.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	    --dir $(CURDIR)/$(BUILD)/bench-cadence-testenv --out bench/results/cadence.json $(BENCH_CADENCE_FLAGS)
	else
	  echo "[bench 4/8] renewal cadence: skipped (BENCH_CADENCE=0)"
	fi
	echo "[bench 5/8] idle elector process: RSS and CPU, leader and follower"
	python3 bench/sidecar.py --bin $(TESTENV_BIN) --leasehold $(BUILD)/leasehold \
	  --dir $(CURDIR)/$(BUILD)/bench-sidecar-testenv --seconds $(BENCH_SIDECAR_SECONDS)
	echo "[bench 6/8] contention: 50 cold candidates on one Lease"
	python3 bench/contention.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --dir $(CURDIR)/$(BUILD)/bench-contention-testenv $(BENCH_CONTENTION_FLAGS)
	echo "[bench 7/8] scale: 1,000 Leases in one process"
	python3 bench/scale.py --bin $(TESTENV_BIN) --scale-bench $(BUILD)/bench/leasehold_scale_bench \
	  --dir $(CURDIR)/$(BUILD)/bench-scale-testenv $(BENCH_SCALE_FLAGS)
	echo "[bench 8/8] report: bench/results/latest.json, docs/benchmarks.md, plots"
	/usr/bin/python3 bench/report.py
	echo "[bench etcd] etcd:// beside Go's concurrency.Election (make bench-etcd)"
	$(MAKE) --no-print-directory bench-etcd

# etcd:// beside Go's concurrency.Election on one etcd (~15 min): graceful
# failover (50 trials), crash take-over past the TTL (20), etcd messages and
# calls per minute for a leader and a standby, 1,000 elections in one process.
# Writes bench/results/etcd.json and docs/benchmarks/etcd-failover.png.
BENCH_ETCD_FLAGS ?=
bench-etcd: deps testenv
	scripts/deps.sh --bench
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate leasehold_scale_bench
	mkdir -p bench/results docs/benchmarks
	/usr/bin/python3 bench/etcd.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --scale-bench $(BUILD)/bench/leasehold_scale_bench --out bench/results/etcd.json \
	  --plot docs/benchmarks/etcd-failover.png $(BENCH_ETCD_FLAGS)

# Only the failover step of `make bench` (~20 min). FAILOVER_FLAGS as above.
FAILOVER_FLAGS ?=
bench-failover: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate
	mkdir -p bench/results
	python3 bench/failover.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --dir $(CURDIR)/$(BUILD)/bench-testenv --out bench/results/failover.json $(FAILOVER_FLAGS)

# Only the renewal-cadence step of `make bench` (~6 min): for each
# renew_interval, the longest kube-apiserver outage (SIGSTOP) a leader survives
# at 15s/10s/2s, beside the theoretical bounds. CADENCE_FLAGS as
# BENCH_CADENCE_FLAGS, e.g. "--intervals 2s,5s --phases worst,best".
CADENCE_FLAGS ?=
bench-cadence: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate
	mkdir -p bench/results
	python3 bench/cadence.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --dir $(CURDIR)/$(BUILD)/bench-cadence-testenv --out bench/results/cadence.json $(CADENCE_FLAGS)

# Fault-injection torture (~10 min): random SIGKILL/SIGTERM/SIGSTOP of
# candidates, kube-apiserver and etcd restarts, partitions and latency through
# a TCP proxy, admin edits of the Lease, over 3 leasehold + 2 client-go
# candidates + 2 `leasehold run` sidecars (a worker that ignores SIGTERM, one
# with a setsid grandchild; their terms timed from outside by pidfd) on a
# control plane of its own. Violations must be 0; writes
# $(BUILD)/torture/torture-summary.json. make torture [TORTURE_SECONDS=600]
# [TORTURE_FLAGS="--seed N"]. `make test` runs the short one (ctest torture.short).
TORTURE_SECONDS ?= 600
TORTURE_FLAGS ?=
torture: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate leasehold_cli
	python3 tests/torture/torture.py --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --leasehold $(BUILD)/leasehold --dir $(CURDIR)/$(BUILD)/torture --duration $(TORTURE_SECONDS) $(TORTURE_FLAGS)

# The same for etcd:// (~5 min at 150 rounds): 3 etcd members, 2 leasehold +
# 2 Go concurrency.Election candidates each behind faultproxies of its own;
# leader SIGKILL/SIGTERM/SIGSTOP past the TTL, member kill and restart, the
# leader cut off from every member shorter and longer than the TTL. The
# checker ends a leasehold term at its reported deadline and checks fencing
# tokens. make torture-etcd [TORTURE_ETCD_ROUNDS=150] [TORTURE_FLAGS="--seed N"].
# `make test` runs 20 rounds (ctest torture.etcd_short).
TORTURE_ETCD_ROUNDS ?= 150
torture-etcd: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target leasehold_candidate
	python3 tests/integration/etcd_fleet.py torture --bin $(TESTENV_BIN) --candidate $(BUILD)/tests/leasehold_candidate \
	  --rounds $(TORTURE_ETCD_ROUNDS) --max-seconds 3600 $(TORTURE_FLAGS)

# The integration and interop suites N times with both cores loaded by a CPU
# burner, failures listed by test: make stress-test [STRESS_ITERATIONS=10].
STRESS_ITERATIONS ?= 10
stress-test: deps testenv
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)
	scripts/stress_test.sh $(BUILD) $(STRESS_ITERATIONS)

testenv-up: testenv
	$(TESTENV_BIN)/testenv up --dir $(TESTENV_DIR) --bin $(TESTENV_BIN)
	@echo "kubeconfigs: $(TESTENV_DIR)/kubeconfig-{admin,elector,nobody,cert-admin}"

testenv-down:
	$(TESTENV_BIN)/testenv down --dir $(TESTENV_DIR)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
