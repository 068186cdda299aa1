#!/usr/bin/env bash
# Pack the Python packages that a GPU machine of the `device` tool lacks, or has in older versions, for
# scripts/train_on_device.sh: this machine's versions of transformers, huggingface_hub, accelerate, datasets, timm
# and their missing dependencies. The pure-Python ones go into one tar, transformers without the ~560 model
# folders this package does not use (4 MB where the wheels are 20 MB); the two built per Python version stay wheels.
#   bash scripts/pack_device_packages.sh [.devpkgs]      (a git-ignored folder that the device call carries)
set -euo pipefail
dest=${1:-.devpkgs}
pure="transformers huggingface_hub accelerate datasets timm dill fsspec httpx2 httpcore2 truststore"
built="rapidfuzz multiprocess"
pinned() { for name in "$@"; do python -c "import importlib.metadata as m, sys; print(f'{sys.argv[1]}=={m.version(sys.argv[1])}')" "$name"; done; }
download() {  # the machine's Python is 3.12 on x86-64
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$@"
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
download "$work/wheels" $(pinned $pure)
python -m pip install -q --no-deps --no-compile --target "$work/site" "$work"/wheels/*.whl
find "$work/site/transformers/models" -mindepth 1 -maxdepth 1 -type d ! -name auto ! -name encoder_decoder \
  -exec rm -rf {} +
rm -rf "$work/site/bin"
rm -rf "$dest" && mkdir -p "$dest"
tar -cJf "$dest/site.tar.xz" -C "$work/site" .
download "$dest" $(pinned $built)
du -sh "$dest"
