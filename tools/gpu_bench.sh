#!/usr/bin/env bash
# GPU benchmark of polyalloy: run from the repository root on a CUDA machine where taichi and
# numpy are installed (nothing else is needed: no network, no pip install of polyalloy). Writes
# to $OUT (default ./renders/gpu_bench):
#   env.txt               python, numpy, taichi versions and nvidia-smi
#   bench_cuda.json/.txt  `polyalloy bench --arch cuda` full run (standard 64^3 workloads against
#                         Taichi's mpm3d in 3D and 2D, per-kernel times, roofline, bandwidth) plus
#                         the fluid_block scaling series up to $MAX_PARTICLES particles
#   scaling_cuda.png      the scaling series (when Pillow or matplotlib is importable)
#   bench_cuda_big.json/.txt  a --quick run of the same workloads at $BIG_N_GRID cells per metre
#   validate_cuda.json/.txt   `polyalloy validate --arch cuda --quick` (when scipy is importable)
#   p2g_scaling.json/.log the CPU's P2G against its threads (`tools/p2g_scaling.py`), when P2G_LANES is set
#   launch_ab.jsonl/.log  a substep in two launches against a launch per pass (`tools/launch_ab.py`),
#                         one line per workload of LAUNCH_AB, at N_GRID cells per metre
#   order_ab.jsonl/.log   P2G in grid-block order against slot order (`tools/order_ab.py --order
#                         blocks`, sorted every 16 substeps), the slots as sampled and shuffled, one
#                         line each per workload of ORDER_AB, at ORDER_N_GRID cells per metre
#   status.txt            the exit status of each step
# Knobs (environment): ARCH (cuda), MAX_PARTICLES (17000000: sizes up to 16.7M), BIG_N_GRID (128:
# 524,288 particles; 0 skips), N_GRID (64), QUICK (0; 1 = --quick for the main run), SCALING (1; 0
# drops the scaling series), VALIDATE (1; 0 skips it), P2G_LANES (empty: skip; e.g. 1,4,16: the lane
# counts of the CPU P2G scaling, on the machine's CPU, at P2G_N_GRID cells per metre, 64),
# LAUNCH_AB (fluid_block_2d,fluid_block,polyalloy_block; empty skips), ORDER_AB (fluid_block,
# polyalloy_block; empty skips), ORDER_N_GRID (128), STEP_TIMEOUT (900 s per step). Exit status:
# that of the main bench run.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/renders/gpu_bench}
ARCH=${ARCH:-cuda}
MAX_PARTICLES=${MAX_PARTICLES:-17000000}
BIG_N_GRID=${BIG_N_GRID:-128}
N_GRID=${N_GRID:-64}
QUICK=${QUICK:-0}
SCALING=${SCALING:-1}
VALIDATE=${VALIDATE:-1}
P2G_LANES=${P2G_LANES:-}
P2G_N_GRID=${P2G_N_GRID:-64}
LAUNCH_AB=${LAUNCH_AB-fluid_block_2d,fluid_block,polyalloy_block}
ORDER_AB=${ORDER_AB-fluid_block,polyalloy_block}
ORDER_N_GRID=${ORDER_N_GRID:-128}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # absolute: the steps run from /
: > "$OUT/status.txt"

# polyalloy maps kernels/ and scenes/ into the package (pyproject's package-dir); without an
# install, lay that package out once in a scratch folder and put it on PYTHONPATH
if ! (cd / && "$PYTHON" -c "import polyalloy.bench, polyalloy.kernels.mpm" 2>/dev/null); then
    SITE=$(mktemp -d)
    cp -r "$ROOT/polyalloy" "$SITE/polyalloy"
    cp -r "$ROOT/kernels" "$SITE/polyalloy/kernels"
    cp -r "$ROOT/scenes" "$SITE/polyalloy/scenes"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export ENABLE_TAICHI_HEADER_PRINT=0
has() { "$PYTHON" -c "import $1" 2>/dev/null; }

{
    echo "date: $(date -u +%FT%TZ)"
    "$PYTHON" -c "import sys, platform, numpy, taichi; print('python', sys.version.split()[0], '|', platform.platform()); print('numpy', numpy.__version__, '| taichi', '.'.join(map(str, taichi.__version__)))"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
} > "$OUT/env.txt" 2>&1

step() {  # step NAME OUTFILE-STEM ARGS...: run `polyalloy ARGS --json`, keep JSON, table and log
    local name=$1 stem=$2
    shift 2
    echo "== $name: polyalloy $*" >&2
    # from / so that the checkout's polyalloy/ (without kernels/) cannot shadow the laid-out package
    (cd / && timeout "$STEP_TIMEOUT" "$PYTHON" -m polyalloy.cli "$@" --json) > "$OUT/$stem.json" 2> "$OUT/$stem.log"
    local rc=$?
    echo "$name $rc" >> "$OUT/status.txt"
    if [ -s "$OUT/$stem.json" ]; then
        (cd / && "$PYTHON" - "$OUT/$stem.json" "$1") > "$OUT/$stem.txt" 2>> "$OUT/$stem.log" <<'EOF'
import json, sys
from polyalloy import bench, validate
record = json.load(open(sys.argv[1]))
print(validate.format_table(record) if sys.argv[2] == "validate" else bench.format_table(record))
EOF
    fi
    tail -n 3 "$OUT/$stem.log" >&2
    return $rc
}

main_args=(bench --arch "$ARCH" --n-grid "$N_GRID")
[ "$QUICK" = 1 ] && main_args+=(--quick)
if [ "$SCALING" = 1 ]; then
    main_args+=(--scaling --max-particles "$MAX_PARTICLES")
    if has PIL || has matplotlib; then main_args+=(--plot "$OUT/scaling_$ARCH.png"); fi
fi
step bench "bench_$ARCH" "${main_args[@]}"
status=$?
if [ "$BIG_N_GRID" != 0 ]; then
    step bench_big "bench_${ARCH}_big" bench --arch "$ARCH" --quick --n-grid "$BIG_N_GRID"
fi
if [ "$VALIDATE" != 1 ]; then
    echo "validate skipped (VALIDATE=$VALIDATE)" >> "$OUT/status.txt"
elif has scipy; then
    step validate "validate_$ARCH" validate --arch "$ARCH" --quick
else
    echo "validate skipped (scipy is not installed)" >> "$OUT/status.txt"
fi
if [ -n "$P2G_LANES" ]; then
    echo "== p2g_scaling: lanes $P2G_LANES at $P2G_N_GRID cells per metre" >&2
    (cd / && timeout "$STEP_TIMEOUT" "$PYTHON" "$ROOT/tools/p2g_scaling.py" --lanes "$P2G_LANES" \
        --n-grid "$P2G_N_GRID" --rounds 5) > "$OUT/p2g_scaling.json" 2> "$OUT/p2g_scaling.log"
    echo "p2g_scaling $?" >> "$OUT/status.txt"
    tail -n 3 "$OUT/p2g_scaling.log" >&2
fi
if [ -n "$LAUNCH_AB" ]; then
    : > "$OUT/launch_ab.jsonl"
    for w in ${LAUNCH_AB//,/ }; do
        echo "== launch_ab: $w on $ARCH at $N_GRID cells per metre" >&2
        (cd / && timeout "$STEP_TIMEOUT" "$PYTHON" "$ROOT/tools/launch_ab.py" "$w" --arch "$ARCH" \
            --n-grid "$N_GRID" --pairs 40) >> "$OUT/launch_ab.jsonl" 2>> "$OUT/launch_ab.log"
        echo "launch_ab $w $?" >> "$OUT/status.txt"
    done
    tail -n 3 "$OUT/launch_ab.jsonl" >&2
fi
if [ -n "$ORDER_AB" ]; then
    : > "$OUT/order_ab.jsonl"
    for w in ${ORDER_AB//,/ }; do
        for shuffled in "" --shuffled; do
            echo "== order_ab: $w $shuffled on $ARCH at $ORDER_N_GRID cells per metre" >&2
            (cd / && timeout "$STEP_TIMEOUT" "$PYTHON" "$ROOT/tools/order_ab.py" workload "$w" --order blocks \
                $shuffled --arch "$ARCH" --n-grid "$ORDER_N_GRID" --pairs 30) >> "$OUT/order_ab.jsonl" 2>> "$OUT/order_ab.log"
            echo "order_ab $w $shuffled $?" >> "$OUT/status.txt"
        done
    done
    tail -n 4 "$OUT/order_ab.jsonl" >&2
fi
cat "$OUT/status.txt" >&2
exit $status
