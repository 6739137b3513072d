#!/usr/bin/env bash
# install.consumer: install this build into a temporary prefix, then use it
# the two ways a user would:
#   1. CMake: configure, build and run tests/install/consumer and examples/cpp
#      with find_package(leasehold CONFIG) and leasehold::leasehold;
#   2. pkg-config: compile and run the same consumer with
#      `pkg-config --cflags --libs leasehold`;
#   3. add_subdirectory: leasehold configures as a subproject (tests and
#      install rules off, leasehold::leasehold defined).
# Also checks that the "runtime" component is the command alone (what the
# sidecar image installs), and that nothing points back into the build tree.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cxx=${CXX:-c++}
work=$(mktemp -d "${TMPDIR:-/tmp}/leasehold-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

prefix="$work/prefix"
step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in bin/leasehold include/leasehold/elector.h include/leasehold/mem_lock.h; do
  [[ -e "$prefix/$f" ]] || fail "$f was not installed"
done
config=$(find "$prefix" -name leaseholdConfig.cmake)
[[ -n "$config" ]] || fail "leaseholdConfig.cmake was not installed"
pc=$(find "$prefix" -name leasehold.pc)
[[ -n "$pc" ]] || fail "leasehold.pc was not installed"
ls "$(dirname "$pc")"/../libleasehold.* >/dev/null 2>&1 || fail "libleasehold was not installed next to pkgconfig/"
if grep -rIl -- "$build\|$src" "$prefix" >/dev/null; then
  fail "installed files name the build or source tree: $(grep -rIl -- "$build\|$src" "$prefix" | tr '\n' ' ')"
fi
"$prefix/bin/leasehold" version | grep -q '^leasehold [0-9]' || fail "installed leasehold version"

step "the runtime component is the command alone"
cmake --install "$build" --prefix "$work/runtime" --component runtime >/dev/null
runtime_files=$(cd "$work/runtime" && find . -type f | sort | tr '\n' ' ')
case "$runtime_files" in
  "./bin/leasehold " | "./bin/leasehold ./lib"*) ;;
  *) fail "runtime component installed: $runtime_files" ;;
esac

# Build as a user would: the installed prefix only, never the source tree;
# the installed headers must compile clean under a strict user's warnings.
warn="-Wall -Wextra -Wpedantic -Werror"
cmake_consumer() { # name, source dir
  local name=$1 dir=$2
  step "find_package(leasehold CONFIG): configure and build $name"
  cmake -S "$dir" -B "$work/$name" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS="$warn" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/$name.log" 2>&1 \
    || { cat "$work/$name.log"; fail "configure $name"; }
  cmake --build "$work/$name" >>"$work/$name.log" 2>&1 || { cat "$work/$name.log"; fail "build $name"; }
}
cmake_consumer consumer "$src/tests/install/consumer"
grep -q "leasehold .* from $prefix" "$work/consumer.log" || { cat "$work/consumer.log"; fail "leasehold was not found in $prefix"; }
step "run the CMake-built consumer"
"$work/consumer/consumer" || fail "the CMake-built consumer"

cmake_consumer example "$src/examples/cpp"
step "run examples/cpp: two workers on one file lock"
lease="file://$work/example.lease"
"$work/example/leader_worker" --lock "$lease" --identity first --ticks 2 >"$work/first.out" 2>&1 \
  || { cat "$work/first.out"; fail "leader_worker first"; }
grep -q "first: working, term 0/first, tick 2" "$work/first.out" || { cat "$work/first.out"; fail "first did not lead term 0"; }
# The first released the lease on its way out, so the second takes it at once
# with the next term.
"$work/example/leader_worker" --lock "$lease" --identity second --ticks 1 >"$work/second.out" 2>&1 \
  || { cat "$work/second.out"; fail "leader_worker second"; }
grep -q "second: working, term 1/second, tick 1" "$work/second.out" || { cat "$work/second.out"; fail "second did not lead term 1"; }
"$prefix/bin/leasehold" status "$lease" -o json | grep -q '"transitions": *1' \
  || fail "leasehold status does not show 1 transition: $("$prefix/bin/leasehold" status "$lease" -o json)"
if "$work/example/leader_worker" --bogus 1 >/dev/null 2>&1; then fail "leader_worker accepted --bogus"; fi

step "add_subdirectory(leasehold): configure as a subproject"
cmake -S "$src/tests/install/subdir" -B "$work/subdir" -G Ninja -DLEASEHOLD_SOURCE_DIR="$src" \
      >"$work/subdir.log" 2>&1 || { cat "$work/subdir.log"; fail "configure leasehold as a subproject"; }
tests=$(ctest --test-dir "$work/subdir" -N | sed -n 's/^Total Tests: //p')
[[ "$tests" == 0 ]] || fail "leasehold as a subproject defined $tests tests"

step "pkg-config --cflags --libs leasehold"
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --cflags --libs leasehold) || fail "pkg-config leasehold"
echo "   $flags"
[[ "$(pkg-config --modversion leasehold)" == "$(sed -n 's/^project(leasehold VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ]] \
  || fail "pkg-config --modversion $(pkg-config --modversion leasehold)"
# shellcheck disable=SC2086  # word splitting of the flags is intended
"$cxx" -std=c++20 $warn "$src/tests/install/consumer/main.cc" -o "$work/consumer-pc" $flags \
  || fail "compiling with pkg-config flags"
# (A shared libleasehold is found through LD_LIBRARY_PATH here, as through
# ldconfig after a system-wide install.)
LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer-pc" \
  || fail "the pkg-config-built consumer"
echo "install_test: OK"
