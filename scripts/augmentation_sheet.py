"""Write a contact sheet of augmentations: each row an original formula image and augmented variants.

python3 scripts/augmentation_sheet.py --data-dir DIR --output sheet.png [--n 8] [--variants 6]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from im2latex_hf.data.im2latex import IMAGE_DIR, SPLIT_FILES
from im2latex_hf.training.augmentation import FormulaAugmenter

GAP = 6  # pixels between images
SEPARATOR = 96  # grey of the gaps, darker than any augmented paper so each image's extent shows


def sample_images(data_dir: Path, n: int, seed: int) -> list[Image.Image]:
    """``n`` random images of the validation split (names from its split file)."""
    lines = (data_dir / SPLIT_FILES["validation"]).read_text().splitlines()
    names = [line.split()[0] for line in random.Random(seed).sample(lines, n)]
    return [Image.open(data_dir / IMAGE_DIR / name).convert("L") for name in names]


def contact_sheet(rows: list[list[Image.Image]], zoom: int) -> Image.Image:
    """Rows of images side by side, top-aligned, scaled by ``zoom`` (nearest neighbour)."""
    heights = [max(image.height for image in row) for row in rows]
    width = max(sum(image.width + GAP for image in row) for row in rows) + GAP
    sheet = Image.new("L", (width, sum(h + GAP for h in heights) + GAP), SEPARATOR)
    y = GAP
    for row, height in zip(rows, heights, strict=True):
        x = GAP
        for image in row:
            sheet.paste(image, (x, y))
            x += image.width + GAP
        y += height + GAP
    return sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.Resampling.NEAREST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, type=Path, help="folder in im2latex-100k's original layout")
    parser.add_argument("--output", required=True, type=Path, help="PNG file to write")
    parser.add_argument("--n", type=int, default=8, help="number of original images (rows)")
    parser.add_argument("--variants", type=int, default=6, help="augmented variants per image")
    parser.add_argument("--seed", type=int, default=0, help="seed for the image choice and the augmenter")
    parser.add_argument("--zoom", type=int, default=1, help="integer magnification of the sheet")
    args = parser.parse_args()

    augmenter = FormulaAugmenter(seed=args.seed)
    rows = [
        [image] + [augmenter(image) for _ in range(args.variants)]
        for image in tqdm(sample_images(args.data_dir, args.n, args.seed), desc="Augmenting", unit="img")
    ]
    contact_sheet(rows, args.zoom).save(args.output)
    print(f"wrote {args.output}: {args.n} originals x {args.variants} variants")


if __name__ == "__main__":
    main()
