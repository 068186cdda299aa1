"""ONNX Runtime backend: export a model to ONNX (`export`, needs torch), decode with numpy over ORT sessions
(`decoding`, `runtime`: no torch, no transformers).

`onnx_model_folder` finds the ONNX graphs for a model: a folder that has them is used as it is; a PyTorch
model folder (the bundled model, a Hub repo) is exported once and the export cached, keyed by its files' hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from .layout import DECODER_FILE, ENCODER_FILE, EXPORT_VERSION


def onnx_cache_dir() -> Path:
    """Where exports of PyTorch models are cached: ``$IM2LATEX_CACHE/onnx``, else ``~/.cache/im2latex_hf/onnx``."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "im2latex_hf"
    return Path(os.environ.get("IM2LATEX_CACHE") or default) / "onnx"


def has_onnx_graphs(folder: str | Path) -> bool:
    return (Path(folder) / ENCODER_FILE).is_file() and (Path(folder) / DECODER_FILE).is_file()


def onnx_model_folder(name_or_path: str | Path) -> Path:
    """A folder with ``encoder.onnx``, ``decoder.onnx``, config, tokenizer and processor for ``name_or_path``.

    A folder that holds the graphs is returned as it is. A PyTorch model folder or Hub repo id is exported
    (`export.export_pretrained`: torch is needed this once) into `onnx_cache_dir`, under the hash of the
    model's files, and later calls reuse that export.
    """
    folder = Path(name_or_path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(name_or_path)))
    if has_onnx_graphs(folder):
        return folder
    if not (folder / "model.safetensors").is_file():
        raise OSError(f"neither ONNX graphs ({ENCODER_FILE}, {DECODER_FILE}) nor model.safetensors in {folder}")
    digest = hashlib.sha256()
    for file in sorted(path for path in folder.iterdir() if path.is_file()):
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    cached = onnx_cache_dir() / f"{digest.hexdigest()[:16]}-v{EXPORT_VERSION}"
    if not has_onnx_graphs(cached):
        from .export import export_pretrained

        cached.parent.mkdir(parents=True, exist_ok=True)
        # Exported next to its place and moved in when complete: a cut-off export leaves nothing half-written.
        with tempfile.TemporaryDirectory(
            dir=cached.parent, prefix=f".{cached.name}-", ignore_cleanup_errors=True
        ) as staging:
            export_pretrained(folder, staging)
            shutil.rmtree(cached, ignore_errors=True)
            Path(staging).rename(cached)
    return cached
