#!/usr/bin/env bash
# One lent-GPU session (run through the device tool, or by hand on any CUDA machine):
#  1. mock-survey throughput on the GPU (benchmarks/simulation.py),
#  2. pretraining of the default model with on-device simulation (configs/pretrain_gpu_h100.toml, or
#     CONFIG=configs/continue_gpu_h100.toml to continue from the shipped model),
#  3. the model converted to float16 for shipping (halves its size; inference runs in float32).
# Expects: wheels for packages the GPU image lacks in .whl/ (astropy, pyerfa, astropy-iers-data,
# pooch, platformdirs), the extracted stellar-population library under .carry/cache/sps/, and
# $OUT (where results are written). TRAIN_SECONDS overrides the training time budget.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export JWST_EMBED_CACHE=${JWST_EMBED_CACHE:-$PWD/.carry/cache}
DEVICE=${DEVICE:-cuda}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"

echo "== simulation throughput"
if [ "$DEVICE" = cuda ] && [ -z "${SKIP_SIM:-}" ]; then
    timeout 90 python3 benchmarks/simulation.py --json --skip-cpu ${SIM_ARGS:-} 2>&1 | tail -3 | tee "$OUT/simulation_gpu.json"
fi

echo "== pretraining"
RUN=/tmp/jwst_embed_pretrain
[ -n "${RESUME:-}" ] || rm -rf "$RUN"
timeout $(( ${TRAIN_SECONDS:-420} + 150 )) python3 -m jwst_embed.cli train --config "${CONFIG:-configs/pretrain_gpu_h100.toml}" \
    --device "$DEVICE" --out "$RUN" --max-time "${TRAIN_SECONDS:-420}" ${TRAIN_ARGS:-} --no-progress 2>&1 | tee "$OUT/train.log" | tail -40
cp "$RUN/metrics.csv" "$OUT/metrics.csv" 2>/dev/null

echo "== float16 copy of the model"
python3 - "$RUN/model.pt" "$OUT/default-small.pt" <<'PY'
import sys, torch
from jwst_embed.training.checkpoint import content_checksum
payload = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
state = payload["state_dict"] if "state_dict" in payload else payload["model"]
for key, value in state.items():
    if torch.is_tensor(value) and value.is_floating_point():
        state[key] = value.to(torch.float16)
if "checksum" in payload:  # the weights changed: the file's content checksum must follow
    payload["checksum"] = content_checksum(payload["config"], state)
torch.save(payload, sys.argv[2])
print("wrote", sys.argv[2], sum(v.numel() for v in state.values() if torch.is_tensor(v)), "values")
PY
echo "== embedding throughput (F150W + PRISM, prepared batches)"
for bs in ${THROUGHPUT_BATCHES:-256 1024}; do
    timeout 60 python3 benchmarks/embedding_throughput.py --model "$RUN/model.pt" --device "$DEVICE" \
        --n-objects ${THROUGHPUT_OBJECTS:-8192} --batch-size $bs --skip-astropy --json 2>&1 | tail -1 | tee "$OUT/embedding_throughput_bs$bs.json"
done
ls -la "$OUT"
