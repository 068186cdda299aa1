"""One source for the model code: the .py files of the bundled model folder are the package's own, byte for byte.

`scripts/release_model.py` writes them with `save_pretrained`, which copies each registered class's module (and
the modules it imports relatively) from the package. Edit the package's file, never a copy, then copy it over
(or release again): this test fails while a copy differs.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoProcessor

import im2latex_hf
from im2latex_hf import Im2LatexConfig, Im2LatexForConditionalGeneration

PACKAGE_DIR = Path(im2latex_hf.__file__).resolve().parent


def python_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.py"))}


def test_the_bundled_model_code_is_the_package_source_byte_for_byte():
    copies = python_files(Path(im2latex_hf.DEFAULT_MODEL))
    assert "modeling_im2latex.py" in copies
    differ = [name for name, code in copies.items() if code != (PACKAGE_DIR / name).read_bytes()]
    assert not differ, f"default_model/ copies that differ from im2latex_hf/: {differ} (copy the package's file over)"


def test_save_pretrained_writes_the_same_code_files_as_the_bundled_model_holds(tmp_path):
    """No copy missing, none left over: what a release writes now is what the bundled folder holds."""
    model = Im2LatexForConditionalGeneration(
        Im2LatexConfig(vocab_size=8, d_model=16, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32)
    )
    model.save_pretrained(tmp_path)
    AutoProcessor.from_pretrained(im2latex_hf.DEFAULT_MODEL).save_pretrained(tmp_path)
    bundled = Path(im2latex_hf.DEFAULT_MODEL)
    assert python_files(tmp_path) == python_files(bundled)

    for config in ("config.json", "processor_config.json"):  # every class the configs name lives in a copy
        data = json.loads((bundled / config).read_text())
        auto_maps = [data.get("auto_map", {}), data.get("image_processor", {}).get("auto_map", {})]
        for reference in (value for auto_map in auto_maps for value in auto_map.values()):
            assert (bundled / f"{reference.split('.')[0]}.py").is_file(), reference
