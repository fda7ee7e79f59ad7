#!/usr/bin/env bash
# Install the built wheel in a fresh virtualenv, as a user would, and smoke-test it from outside the checkout:
#   .ci/wheel_smoke.sh DIST_DIR
# torch goes in first, pinned (never plain torch/torchvision: an unpinned resolve pulls a multi-GB CUDA build); the
# rest is the wheel's own dependencies at the tested versions (constraints.txt), without any extra.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dist="$(cd "${1:-dist}" && pwd)"
wheel="$(ls "$dist"/semcore_hf-*.whl | head -n 1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install --quiet torch==2.13.0
"$pip" install --quiet -c "$repo/constraints.txt" "$wheel"
cd "$work"  # nothing of the checkout on the path: everything comes from the installed wheel
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
"$work/venv/bin/semcore-hf" --help >/dev/null
for command in build-sids prepare-model train push-to-hub retrieve evaluate env demo; do
  "$work/venv/bin/semcore-hf" "$command" --help >/dev/null
done
"$work/venv/bin/semcore-hf" env
"$work/venv/bin/python" "$repo/scripts/wheel_smoke.py"
echo "wheel smoke test passed: $(basename "$wheel")"
