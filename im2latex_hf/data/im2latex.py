"""Build a Hugging Face ``DatasetDict`` from im2latex-100k's original file layout.

The layout (Deng et al. 2016)::

    formula_images_processed/<name>.png
    im2latex_formulas.norm.lst            one formula a line, 0-based line numbers
    im2latex_{train,validate,test}_filter.lst   lines "<image file name> <formula line number>"

Rows that cannot be used (missing or unreadable image, malformed line, formula index out of range,
empty formula) are skipped, counted per split and reason in a ``BuildReport`` and logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, Image, Value
from PIL import Image as PILImage
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

IMAGE_DIR = "formula_images_processed"
FORMULA_FILE = "im2latex_formulas.norm.lst"
SPLIT_FILES = {
    "train": "im2latex_train_filter.lst",
    "validation": "im2latex_validate_filter.lst",
    "test": "im2latex_test_filter.lst",
}
HELD_OUT_ROWS = 1000
"""The last validation rows, held out for choosing checkpoints: never trained on, never rendered for training."""
FEATURES = Features({"image": Image(), "formula": Value("string"), "image_name": Value("string")})

# Reasons a line of a split file is skipped.
MALFORMED_LINE = "malformed_line"
INDEX_OUT_OF_RANGE = "index_out_of_range"
UNDECODABLE_FORMULA = "undecodable_formula"
EMPTY_FORMULA = "empty_formula"
MISSING_IMAGE = "missing_image"
UNREADABLE_IMAGE = "unreadable_image"

_MAX_EXAMPLES = 3  # examples kept per split and reason
_BUILD_VERSION = "1"  # part of the cache fingerprint: bump when the row format changes


@dataclass
class SplitReport:
    """What happened to one split file."""

    split_file: str
    found: bool = True
    lines: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        """Count one skipped line and keep it as an example if there are few so far."""
        self.skipped[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < _MAX_EXAMPLES:
            kept.append(example)


@dataclass
class BuildReport:
    """Per-split counts of kept and skipped rows."""

    data_dir: str
    splits: dict[str, SplitReport] = field(default_factory=dict)

    @property
    def total_skipped(self) -> int:
        return sum(sum(s.skipped.values()) for s in self.splits.values())

    def __str__(self) -> str:
        lines = [f"im2latex-100k build report for {self.data_dir}"]
        for name, split in self.splits.items():
            if not split.found:
                lines.append(f"  {name}: split file {split.split_file} not found")
                continue
            lines.append(f"  {name} ({split.split_file}): {split.lines} lines, {split.rows} rows kept")
            for reason, count in sorted(split.skipped.items()):
                examples = "; ".join(split.examples.get(reason, []))
                lines.append(f"    skipped {count} {reason}, e.g. {examples}")
        return "\n".join(lines)


def build_im2latex_dataset(
    data_dir: str | Path,
    *,
    num_proc: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[DatasetDict, BuildReport]:
    """Read im2latex-100k's original layout into a ``DatasetDict`` (train/validation/test).

    Columns: ``image`` (PNG bytes embedded), ``formula`` and ``image_name``. Every image is decoded
    once to check it is readable. A split whose file is missing or has no usable row is reported
    and left out; ``ValueError`` if no split is left. The Arrow files are cached under
    ``cache_dir`` (the ``datasets`` default if None), keyed by the kept rows and the image files'
    sizes and modification times.
    """
    data_dir = Path(data_dir)
    formula_path = data_dir / FORMULA_FILE
    if not formula_path.is_file():
        raise FileNotFoundError(f"formula file not found: {formula_path}")
    formulas = read_formulas(formula_path)
    report = BuildReport(data_dir=str(data_dir))
    splits = {}
    for split, file_name in SPLIT_FILES.items():
        split_path = data_dir / file_name
        if not split_path.is_file():
            report.splits[split] = SplitReport(split_file=file_name, found=False)
            logger.warning("%s: split file %s not found; split left out", split, split_path)
            continue
        rows, split_report = _check_split(split_path, formulas, data_dir / IMAGE_DIR, num_proc, progress)
        report.splits[split] = split_report
        _log_skips(split, split_report)
        if not rows:  # datasets can neither generate nor reload an empty split
            logger.warning("%s: no usable rows in %s; split left out", split, split_path)
            continue
        splits[split] = Dataset.from_generator(
            _generate_rows,
            features=FEATURES,
            gen_kwargs={"rows": [(name, formula) for name, formula, _ in rows], "image_dir": str(data_dir / IMAGE_DIR)},
            cache_dir=str(cache_dir) if cache_dir is not None else None,
            num_proc=num_proc if num_proc and num_proc > 1 and len(rows) > 1 else None,
            split=split,
            fingerprint=_fingerprint(split, rows),
        )
    if not splits:
        raise ValueError(f"no usable rows in {data_dir}\n{report}")
    return DatasetDict(splits), report


def held_out_split(dataset: DatasetDict, rows: int = HELD_OUT_ROWS) -> DatasetDict:
    """The last ``rows`` validation rows as a ``DatasetDict`` of one ``validation`` split: the held-out set
    (``data/validation-holdout``) that chooses checkpoints and releases. Training reads the rest
    (``end: -1000`` in the configs)."""
    validation = dataset["validation"]
    if not 0 < rows <= len(validation):
        raise ValueError(f"cannot hold out {rows} of {len(validation)} validation rows")
    return DatasetDict({"validation": validation.select(range(len(validation) - rows, len(validation)))})


def read_formulas(path: Path) -> list[str | None]:
    """Formula lines without their newline; None for a line that is not valid UTF-8.

    Lines are split on ``\\n`` only: ``str.splitlines`` would also split on characters such as
    ``\\x0c`` or ``\\r`` inside a formula and shift every later line number.
    """
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    formulas: list[str | None] = []
    for line in lines:
        try:
            formulas.append(line.removesuffix(b"\r").decode("utf-8"))
        except UnicodeDecodeError:
            formulas.append(None)
    return formulas


def split_formulas(data_dir: str | Path, split: str) -> list[str]:
    """The formulas a split file points to (``split``: train, validation or test), without its images;
    lines that ``build_im2latex_dataset`` would skip for their text are left out."""
    data_dir = Path(data_dir)
    formulas = read_formulas(data_dir / FORMULA_FILE)
    out = []
    for line in (data_dir / SPLIT_FILES[split]).read_text(encoding="utf-8", errors="replace").split("\n"):
        fields = line.split()
        if len(fields) == 2 and fields[1].isdecimal() and int(fields[1]) < len(formulas):
            formula = formulas[int(fields[1])]
            if formula is not None and formula.strip():
                out.append(formula)
    return out


def _check_split(
    split_path: Path,
    formulas: list[str | None],
    image_dir: Path,
    num_proc: int | None,
    progress: bool,
) -> tuple[list[tuple[str, str, tuple[int, int]]], SplitReport]:
    """Kept rows ``(image name, formula, (file size, mtime_ns))`` and the report for one split file."""
    report = SplitReport(split_file=split_path.name)
    candidates: list[tuple[int, str, str, str]] = []  # line number, line, image name, formula
    with split_path.open(encoding="utf-8", errors="replace", newline="\n") as f:
        for line_number, line in enumerate(f, start=1):
            report.lines += 1
            line = line.rstrip("\r\n")
            example = f"line {line_number}: {line!r}"
            try:
                name, index_text = line.split()
                index = int(index_text)
            except ValueError:  # not two fields, or not a number
                report.skip(MALFORMED_LINE, example)
                continue
            if not 0 <= index < len(formulas):
                report.skip(INDEX_OUT_OF_RANGE, f"{example} ({len(formulas)} formulas)")
                continue
            formula = formulas[index]
            if formula is None:
                report.skip(UNDECODABLE_FORMULA, example)
            elif not formula.strip():
                report.skip(EMPTY_FORMULA, example)
            else:
                candidates.append((line_number, line, name, formula))

    paths = [str(image_dir / name) for _, _, name, _ in candidates]
    checks = _check_images(paths, num_proc, desc=f"Checking {split_path.name}", progress=progress)
    rows = []
    for (line_number, line, name, formula), (reason, stat) in zip(candidates, checks, strict=True):
        if reason is None:
            rows.append((name, formula, stat))
        else:
            report.skip(reason, f"line {line_number}: {line!r}")
    report.rows = len(rows)
    return rows, report


def _check_images(
    paths: list[str], num_proc: int | None, desc: str, progress: bool
) -> list[tuple[str | None, tuple[int, int]]]:
    """``_check_image`` on every path, in ``num_proc`` worker processes if more than one."""
    bar = partial(tqdm, total=len(paths), desc=desc, unit="img", disable=not progress)
    if not num_proc or num_proc <= 1:
        return list(bar(map(_check_image, paths)))
    with Pool(num_proc) as pool:
        return list(bar(pool.imap(_check_image, paths, chunksize=256)))


def _check_image(path: str) -> tuple[str | None, tuple[int, int]]:
    """``(reason or None, (size, mtime_ns))``: decodes the image fully to catch truncated files."""
    try:
        stat = os.stat(path)
    except OSError:
        return MISSING_IMAGE, (0, 0)
    try:
        with PILImage.open(path) as image:
            image.load()
            if image.width == 0 or image.height == 0:
                return UNREADABLE_IMAGE, (0, 0)
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        return UNREADABLE_IMAGE, (0, 0)
    return None, (stat.st_size, stat.st_mtime_ns)


def _generate_rows(rows: list[tuple[str, str]], image_dir: str) -> Iterator[dict]:
    """Yield dataset rows with the image file's bytes embedded."""
    for name, formula in rows:
        with open(os.path.join(image_dir, name), "rb") as f:
            yield {"image": {"bytes": f.read(), "path": name}, "formula": formula, "image_name": name}


def _fingerprint(split: str, rows: list[tuple[str, str, tuple[int, int]]]) -> str:
    """Cache key of a split: changes when a kept row, its formula or its image file changes."""
    digest = hashlib.sha256(f"{_BUILD_VERSION}\0{split}".encode())
    for name, formula, (size, mtime_ns) in rows:
        digest.update(f"\0{name}\0{formula}\0{size}\0{mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _log_skips(split: str, report: SplitReport) -> None:
    for reason, count in sorted(report.skipped.items()):
        logger.warning(
            "%s: skipped %d line(s) of %s (%s), e.g. %s",
            split,
            count,
            report.split_file,
            reason,
            "; ".join(report.examples[reason]),
        )
