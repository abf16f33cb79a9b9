#!/usr/bin/env bash
# On the GPU machine, from the repository root: bash FOLDER/run.sh [SECONDS] (FOLDER made by prepare.sh).
# Results: JSON lines on stdout and in $OUT/faiss_gpu.jsonl (OUT defaults to /tmp).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
mkdir -p /tmp/site && tar -C /tmp/site -xJf "$dir/faiss-gpu-site.tar.xz" || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$dir"/*.whl || exit 1
cublas=$(find /opt /usr/local /usr/lib -name 'libcublas.so.13' 2>/dev/null | head -1)
[ -n "$cublas" ] || { echo "no libcublas.so.13 on this machine" >&2; exit 1; }
export LD_LIBRARY_PATH=$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import faiss; print('faiss', faiss.__version__, 'GPUs', faiss.get_num_gpus())" || exit 1
lscpu | grep -m1 'Model name'; echo "$(nproc) CPU threads"
timeout "${1:-400}" python3 bench/faiss_gpu.py search --build "$dir/build" --queries "$dir/q.npy" \
  --stand-ins 1000000 --ivf-pq --json "${OUT:-/tmp}/faiss_gpu.jsonl"
