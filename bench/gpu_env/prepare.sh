#!/usr/bin/env bash
# A folder that runs bench/faiss_gpu.py on a GPU machine with CUDA 13 and no network
# (docs/benchmarks/issue-14-log.md, "faiss-gpu at k=100"): faiss-gpu's PyPI wheel (CUDA 12) with
# CUDA 12's runtime library, a shim that forwards its cuBLAS calls to CUDA 13's cuBLAS, and its
# libfaiss.so cut to one GPU architecture's code
# (the wheel's other architectures zeroed, so that the folder compresses to ~25 MB); the project's
# pydantic wheels; the build's dense section and its encoded queries. Then, on the GPU machine, from
# the repository root: bash OUT/run.sh
#
#   bash bench/gpu_env/prepare.sh BUILD_DIR OUT [ARCH]     # ARCH: 90 (H100/H200, the default)
set -euo pipefail
build=$1 out=$2 arch=${3:-90}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
wheel() { "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$1" "${@:2}"; }
wheel "$work" faiss-gpu==1.15.1 'nvidia-cuda-runtime-cu12==12.9.*'
mkdir -p "$work/site" "$work/stub/nvidia/cuda_runtime/lib" "$work/stub/nvidia/cublas/lib" "$work/stub/nvidia/curand/lib"
(cd "$work/site" && "$py" -m zipfile -e "$work"/faiss_gpu-*.whl .)
"$py" "$here/one_arch.py" "$work/site/faiss/libfaiss.so" "$arch"
"$py" -m zipfile -e "$work"/nvidia_cuda_runtime_cu12-*.whl "$work/rt"
cp "$work/rt/nvidia/cuda_runtime/lib/libcudart.so.12" "$work/stub/nvidia/cuda_runtime/lib/"
# faiss imports nvidia.<component> to find each library: regular packages here, in front of the machine's own
gcc -O2 -shared -fPIC -o "$work/stub/nvidia/cublas/lib/libcublas.so.12" "$here/cublas12_shim.c" -ldl -Wl,-soname,libcublas.so.12 \
  -Wl,--version-script=<(echo "libcublas.so.12 { global: cublas*; local: *; };")
echo > "$work/empty.c"  # libfaiss.so names libcublasLt.so.12 and faiss preloads libcurand.so.10; it calls neither
gcc -shared -fPIC -o "$work/stub/nvidia/cublas/lib/libcublasLt.so.12" "$work/empty.c" -Wl,-soname,libcublasLt.so.12
gcc -shared -fPIC -o "$work/stub/nvidia/curand/lib/libcurand.so.10" "$work/empty.c" -Wl,-soname,libcurand.so.10
touch "$work"/stub/nvidia/__init__.py "$work"/stub/nvidia/{cuda_runtime,cublas,curand}/__init__.py
cp -r "$work"/stub/nvidia "$work/site/"
tar -C "$work/site" -cf - faiss faiss_gpu.libs nvidia | xz -6 -T0 > "$out/faiss-gpu-site.tar.xz"
versions=$("$py" -c "import importlib.metadata as m; print(' '.join(f'{p}=={m.version(p)}' for p in
  ('pydantic', 'pydantic_core', 'pydantic-settings', 'python-dotenv', 'annotated-types', 'typing-inspection', 'typing_extensions')))")
wheel "$out" $versions
mkdir -p "$out/build" && cp -r "$build/columns" "$build/dense" "$build/manifest.json" "$out/build/"
"$py" "$here/../faiss_gpu.py" query-vectors --build "$build" --out "$out/q.npy"
cp "$here/run.sh" "$out/run.sh"
du -sh "$out"
