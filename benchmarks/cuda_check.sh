#!/usr/bin/env bash
# CUDA check on a GPU machine (not part of make test): installs the core and the fast-path
# plugins without dependencies (the machine's image has torch, pluggy, imageio, tqdm,
# scikit-image), then trains the voxel demo and a dynamic voxel run on generated scenes on
# CUDA. Wheels the image lacks (tomli_w; imageio_ffmpeg for the mp4) go in .whl/.
# Usage: bash benchmarks/cuda_check.sh OUT_DIR
set -euo pipefail
out=${1:-/tmp/cuda-check}
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps .whl/*.whl; fi
python3 -m pip install -q --no-deps --no-build-isolation -e . -e plugins/voxel -e plugins/dnerf \
  -e plugins/ngp 2>&1 | tail -2
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
atlas data synth /tmp/scene --size 64 --train-views 100
atlas data synth /tmp/moving --kind dnerf --size 32
quick=(--eval-views 8 --set eval.video_frames=0)
atlas run --config configs/demo.toml --data /tmp/scene --out "$out/voxel-cuda" --device cuda \
  --time-budget 20 "${quick[@]}" | grep -E "test PSNR"
atlas run --config configs/demo.toml --data /tmp/scene --out "$out/voxel-cpu" --device cpu \
  --time-budget 20 "${quick[@]}" | grep -E "test PSNR"
atlas run --data /tmp/moving --data-kind dnerf --plugins dnerf,voxel --device cuda \
  --out "$out/dnerf-cuda" --max-steps 300 --set dnerf.maps=1 "${quick[@]}" | grep -E "test PSNR"
atlas render "$out/dnerf-cuda" --over-time --camera 0 --frames 8 --device cuda | tail -1
python3 - "$out" <<'PY'
import json, sys, pathlib
for run in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    m = json.loads((run / "metrics.json").read_text())
    test = m["test"]
    print(run.name, m["device"], "steps", m["steps"], "train s %.1f" % m["train_seconds"],
          "PSNR %.2f" % test["psnr"], "s/view %.3f" % test["seconds_per_view"])
PY
