#!/usr/bin/env bash
# CI for C++ users: the library alone (CONVCORE_PYTHON=OFF: no Python, no pybind11),
# its CTest tests, `cmake --install` into a temporary prefix, the example built against
# that prefix with find_package(convcore CONFIG) and run, and the same example in a
# throwaway parent project that uses add_subdirectory(convcore); the tests also run under
# ASan+UBSan. Needs CMake >= 3.18 and a C++17 compiler (GCC or Clang). Runs on a clean
# checkout; leaves nothing behind.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if ! command -v cmake >/dev/null; then
  if [ -n "${VIRTUAL_ENV:-}" ]; then python -m pip install --quiet cmake ninja
  else echo "cpp.sh: CMake >= 3.18 is needed" >&2; exit 1; fi
fi
gen=()
if command -v ninja >/dev/null; then gen=(-G Ninja); fi
build() { cmake --build "$1" --parallel 2; }

echo "== library alone, with tests"
cmake -S "$src" -B "$tmp/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCONVCORE_PYTHON=OFF -DCONVCORE_BUILD_TESTS=ON
if grep -Eq '^(Python[0-9]*_|pybind11_)' "$tmp/build/CMakeCache.txt"; then
  echo "cpp.sh: the library build looked for Python or pybind11" >&2; exit 1
fi
build "$tmp/build"
ctest --test-dir "$tmp/build" --output-on-failure
# The start values read from the environment.
CONVCORE_ISA=scalar CONVCORE_NUM_THREADS=3 ctest --test-dir "$tmp/build" --output-on-failure

echo "== the tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1 as in sanitize.sh: at -O3 the instrumented AVX-512 kernels take GCC many minutes each.
cmake -S "$src" -B "$tmp/asan" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCONVCORE_PYTHON=OFF \
      -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
      -DCONVCORE_BUILD_TESTS=ON -DCONVCORE_INSTALL=OFF -DCMAKE_CXX_FLAGS="$san" \
      -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
build "$tmp/asan" >/dev/null
ctest --test-dir "$tmp/asan" --output-on-failure
CONVCORE_ISA=scalar ctest --test-dir "$tmp/asan" --output-on-failure

echo "== install into a temporary prefix"
cmake --install "$tmp/build" --prefix "$tmp/prefix"
for f in include/convcore/convcore.hpp include/convcore/conv2d.hpp \
         lib/cmake/convcore/convcoreConfig.cmake lib/cmake/convcore/convcoreConfigVersion.cmake; do
  ls "$tmp/prefix/$f" "$tmp/prefix/lib/libconvcore.a" >/dev/null
done

echo "== the example against the installed package (moved: the package is relocatable)"
mv "$tmp/prefix" "$tmp/moved"
cmake -S "$src/examples/cpp" -B "$tmp/example" "${gen[@]}" -DCMAKE_PREFIX_PATH="$tmp/moved"
build "$tmp/example"
(cd "$tmp" && "$tmp/example/convcore_example" && "$tmp/example/convcore_example" edges.pgm edges2.pgm)

echo "== SameMajorVersion: asking for convcore 1.x must fail"
mkdir "$tmp/v1"
cat > "$tmp/v1/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.18)
project(v1 LANGUAGES CXX)
find_package(convcore 1 CONFIG REQUIRED)
CMAKE
if cmake -S "$tmp/v1" -B "$tmp/v1/build" -DCMAKE_PREFIX_PATH="$tmp/moved" >/dev/null 2>&1; then
  echo "cpp.sh: find_package(convcore 1) accepted version 0.x" >&2; exit 1
fi

echo "== add_subdirectory(convcore) from a parent project"
mkdir "$tmp/parent"
cat > "$tmp/parent/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(parent LANGUAGES CXX)
add_subdirectory("$src" convcore)
add_subdirectory("$src/examples/cpp" example)
CMAKE
cmake -S "$tmp/parent" -B "$tmp/parent/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release
if grep -Eq '^(Python[0-9]*_|pybind11_)' "$tmp/parent/build/CMakeCache.txt"; then
  echo "cpp.sh: add_subdirectory(convcore) looked for Python or pybind11" >&2; exit 1
fi
build "$tmp/parent/build"
(cd "$tmp" && "$tmp/parent/build/example/convcore_example")
echo "cpp.sh: all C++ checks passed"
