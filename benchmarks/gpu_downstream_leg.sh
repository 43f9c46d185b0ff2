#!/usr/bin/env bash
# One lent-GPU leg of the default model's downstream training (run through the device tool, or by
# hand on any CUDA machine): a fresh token pool of POOL mock galaxies simulated on the GPU, then
# the line reader, fusion, heads and decoder trained on it from START (the shipped default by
# default; v5 was made from v4: START=jwst_embed-default-v4.pt, from git history at e6706e8)
# until DEADLINE seconds after the training script started; OUT/model.pt (float16) is rewritten
# at every validation, so a leg cut short still leaves its model. See benchmarks/train_default_v4.py.
# Expects: wheels for packages the GPU image lacks in .whl/ (astropy, pyerfa, astropy-iers-data,
# pooch, platformdirs), the stellar-population library as .carry/sps.npz.xz (xz keeps the
# carried tree under the device tool's 64 MiB) or already in $JWST_EMBED_CACHE/sps, and $OUT.
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
export JWST_EMBED_CACHE=${JWST_EMBED_CACHE:-/tmp/jwst_embed_cache}
LIBRARY="$JWST_EMBED_CACHE/sps/jwst_embed-sps-2.npz"
if [ ! -f "$LIBRARY" ] && [ -f .carry/sps.npz.xz ]; then
    mkdir -p "$(dirname "$LIBRARY")"
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
        .carry/sps.npz.xz "$LIBRARY" || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/gpu.txt"
cat "$OUT/gpu.txt"
python3 benchmarks/train_default_v4.py --out "$OUT" --continue-phase2 --leg "${LEG:-4}" \
    --start-from "${START:-jwst_embed/data/jwst_embed-default-v8.pt}" \
    --pool "${POOL:-200000}" --validation "${VALIDATION:-2000}" --pool-batch "${POOL_BATCH:-1024}" --no-save-pools \
    --steps "${STEPS:-1000000}" --batch-size "${BATCH:-512}" --lr-scale "${LR_SCALE:-0.5}" \
    --deadline-seconds "${DEADLINE:-500}" --validate-every "${VALIDATE_EVERY:-1000}" \
    --device "${DEVICE:-cuda}" 2>&1 | tee "$OUT/train.log"
ls -la "$OUT"
