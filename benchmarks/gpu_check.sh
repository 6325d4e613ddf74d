#!/usr/bin/env bash
# The GPU configuration of bench_search_quality, as one prepared script (issue 13).
#
# Full width, the full Fashion-MNIST (60k train / 10k test, Debian's
# dataset-fashion-mnist or FASHION_DIR=...), CUDA latency models: it profiles
# fbnet-cifar's blocks on cuda:0 (PyTorch + CUDA events) and on
# cuda:0:onnxruntime, fits both, times the search step modes on the GPU, then
# runs the Fashion-MNIST race (search at the 30th/70th percentile targets of
# cuda:0's predicted latency, random architectures of matched *measured*
# latency, every one trained from scratch with 3 seeds).
#
# Needs nothing from the network: run it from a checkout where `make install`
# (or the venv below) already exists.  Budget: under 8 minutes on one GPU.
# Each stage has its own time cap and the benchmark caches every step under
# $WORK, so a second run continues where the first stopped; the figures it
# printed say how far it got.
#
#   benchmarks/gpu_check.sh [WORK]        (default WORK=gpu-check-out)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-gpu-check-out}
PY=${PY:-.venv/bin/python}
DATA=${FASHION_DIR:+fashion-mnist:$FASHION_DIR}
DATA=${DATA:-fashion-mnist}
mkdir -p "$WORK"
START=$(date +%s)
left() { echo $(( 470 - ($(date +%s) - START) )); }

"$PY" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (torch %s); nothing to check" % torch.__version__)
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv,noheader || true
uptime

echo "== 1. CUDA latency models (blocks + 20 random networks, fit) =="
for dev in "cuda:0" "cuda:0:onnxruntime"; do
  slug=$("$PY" -c 'import sys; from benchmarks.suites.bench_search_quality import _slug; print(_slug(sys.argv[1]))' "$dev")
  timeout 100 "$PY" -m hwnas profile --space fbnet-cifar --device "$dev?max_seconds=0.1" --store "$WORK/hwnas.db" || echo "profile $dev stopped (time cap); rerun continues"
  timeout 40 "$PY" -m hwnas profile --space fbnet-cifar --device "$dev?max_seconds=0.1" --store "$WORK/hwnas.db" \
      --no-blocks --archs random:20 --seed 0 || echo "network profile $dev stopped (time cap)"
  "$PY" -m hwnas fit --store "$WORK/hwnas.db" --device "$dev" --space fbnet-cifar \
      --out "$WORK/$slug.latency.json" || echo "fit $dev failed"  # the race (3.) reuses cuda-0.latency.json
done

echo "== 2. Search step cost on the GPU (sampled / plain / all-path, peak CUDA memory) =="
timeout 60 "$PY" - "$WORK" <<'EOF' || echo "GPU step timing stopped (time cap)"
import json, sys, time, statistics, torch
from torch.nn import functional as F
from hwnas.search.blocks import build_network
from hwnas.search.build import build_supernet
from hwnas.search.fbnet.cost import mac_cost
from hwnas.search.space import get_space
sp = get_space("fbnet-cifar").with_options(num_classes=10)
dev = torch.device("cuda")
x = torch.randn(256, 3, 32, 32, device=dev); y = torch.randint(0, 10, (256,), device=dev)
def step(net, opt):
    opt.zero_grad(set_to_none=True); F.cross_entropy(net(x), y).backward(); opt.step()
def timed(net, opt, n=10):
    step(net, opt); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    t = []
    for _ in range(n):
        s = time.perf_counter(); step(net, opt); torch.cuda.synchronize(); t.append(time.perf_counter() - s)
    return statistics.median(t), (torch.cuda.max_memory_allocated() - base) / 2**20, base / 2**20
out = {}
torch.manual_seed(0)
for paths in ("sampled", "all"):
    net = build_supernet(sp, mac_cost(sp), paths=paths).to(dev).train()
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9)
    out[paths] = timed(net, opt)
    if paths == "sampled":
        plain = build_network(sp, net.last_sample()).to(dev).train()
        out["plain"] = timed(plain, torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9))
    del net, opt; torch.cuda.empty_cache()
for k, (s, act, state) in out.items():
    print(f"{k:8s} {s * 1e3:8.2f} ms/step  peak above state {act:8.1f} MiB  state (weights, grads, momentum) {state:7.1f} MiB")
print(f"sampled/plain {out['sampled'][0] / out['plain'][0]:.2f}  all/sampled {out['all'][0] / out['sampled'][0]:.2f}")
json.dump(out, open(f"{sys.argv[1]}/gpu_cost.json", "w"), indent=2)
EOF

echo "== 3. Fashion-MNIST race on cuda:0 latency (full width, full data) =="
timeout "$(left)" "$PY" -m benchmarks.suites.bench_search_quality --part fashion --work "$WORK" --device cuda:0 \
    --data "$DATA" --width-mult 1 --threads 4 --limit 60000 --search-epochs 3 --search-batch 256 \
    --train-limit 60000 --test-limit 10000 --train-epochs 2 --train-batch 256 --train-lr 0.1 --seeds 3 \
    --random 20 --max-measured 80 --max-seconds 0.1 \
  || echo "Fashion-MNIST race stopped at the 8-minute cap; its finished steps are cached in $WORK (rerun continues)"
echo "finished in $(( $(date +%s) - START )) s"; uptime
