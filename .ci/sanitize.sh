#!/usr/bin/env bash
# The Python test suite against a _core built with AddressSanitizer + UBSan.
# Python itself is not instrumented, so the sanitizer runtimes are preloaded
# (LD_PRELOAD) before the interpreter starts; leak checking is off (CPython keeps
# objects alive until exit by design); huge requests return NULL as malloc would, so
# they surface as MemoryError. Any report fails the run.
# Usage: bash .ci/sanitize.sh [pytest args]   (default: the whole tests/ directory)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python -c "import pybind11" 2>/dev/null || python -m pip install --quiet pybind11
gen=()
if command -v ninja >/dev/null; then gen=(-G Ninja); fi
# -O1, as the AddressSanitizer documentation suggests: at -O2 GCC took over ten minutes of
# CPU per AVX-512 kernel file with the instrumentation; at -O1 under a minute.
cmake -S "$src" -B "$tmp/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
      -DCONVCORE_SANITIZE=ON -DCONVCORE_BUILD_TESTS=OFF -DCONVCORE_INSTALL=OFF \
      -DCONVCORE_COPY_MODULE=OFF -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$tmp/build" --parallel 2 >/dev/null

# The package from the sources with the sanitized module beside it.
mkdir "$tmp/pkg"
cp -r "$src/src/convcore" "$tmp/pkg/"
rm -f "$tmp/pkg/convcore/"_core*.so
cp "$tmp/build/"_core*.so "$tmp/pkg/convcore/"

runtime="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
cd "$tmp"
LD_PRELOAD="$runtime" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
PYTHONPATH="$tmp/pkg" \
  python -m pytest -q -p no:cacheprovider --rootdir="$src" "${@:-$src/tests}"
