"""Render the app's example images: a few well-known formulas in the im2latex style.

    python scripts/make_examples.py [--out examples]

Writes ``<name>.png`` per formula (Computer Modern, 12 pt, 100 dpi: the scale of the im2latex-100k
images the model is trained on, which were rendered at 200 dpi and downsampled by 2) and
``formulas.txt``, one ``<name>.png<TAB><LaTeX source>`` line per image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import ImageOps

from im2latex_hf.rendering import render_formulas

FORMULAS: dict[str, str] = {
    "quadratic_formula": r"x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}",
    "euler_identity": r"e^{i\pi} + 1 = 0",
    "gaussian_integral": r"\int_{-\infty}^{\infty} e^{-x^2} \, dx = \sqrt{\pi}",
    "matrix_2x2": r"A = \left( \begin{array}{cc} a & b \\ c & d \end{array} \right)",
    "basel_sum": r"\sum_{n=1}^{\infty} \frac{1}{n^2} = \frac{\pi^2}{6}",
}
"""Example name -> LaTeX source."""

DPI = 100
MARGIN = 8
"""White pixels around the ink, like the dataset's padded images."""


def make_examples(out_dir: Path) -> list[Path]:
    """Render every formula of ``FORMULAS`` into ``out_dir``; returns the image paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = render_formulas(list(FORMULAS.values()), font="cm", font_size=12, dpi=DPI)
    paths = []
    for name, result in zip(FORMULAS, results):
        if result.image is None:
            raise RuntimeError(f"{name}: TeX failed: {result.error}")
        path = out_dir / f"{name}.png"
        ImageOps.expand(result.image, border=MARGIN, fill=255).save(path, optimize=True)
        paths.append(path)
    lines = [f"{name}.png\t{formula}\n" for name, formula in FORMULAS.items()]
    (out_dir / "formulas.txt").write_text("".join(lines), encoding="utf-8")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples")
    args = parser.parse_args()
    for path in make_examples(args.out):
        print(path)


if __name__ == "__main__":
    main()
