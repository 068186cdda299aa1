"""Render a training corpus: formulas from several sources, each rendered in several random looks.

Two recipes:

* ``im2latex`` (the release corpus): im2latex-100k's own formulas (train, and validate except its
  held-out last ``HELD_OUT_ROWS`` rows) and new formulas generated from them, mostly in the im2latex
  look (Computer Modern 12 pt, calibrated as in ``looks``), a minority in other fonts, sizes, stroke
  weights and the plain antialiased look;
* ``mixed``: im2latex train, school-math, textbook and generated formulas in plain looks of random
  fonts, sizes and resolutions.

Formula sources, in order of precedence when deduplicating:

* ``im2latex-train``: the formulas of im2latex-100k's train split (already normalized);
* ``im2latex-validate`` (``im2latex`` recipe): the validate formulas outside the held-out rows;
* ``school-math`` (``mixed`` recipe): ``formulas/school-math.lst`` in im2latex's token style (``normalize_latex``);
* ``textbook`` (``mixed`` recipe): ``textbook`` formulas from ``generate_textbook_formulas`` (binomials,
  matrices, cases, limits...), normalized alike;
* ``generated``: new formulas from ``generate_formulas``, seeded with the formulas kept from the above.

A formula is dropped (and counted per source and reason) if it cannot be normalized, is empty, has
more than ``MAX_TOKENS`` tokens, is held out (test, the held-out validate rows, and in the ``mixed``
recipe all of validate), is one of the ``benchmark_formulas`` (the users' benchmark: a corpus must not
teach the formulas it scores), or repeats an earlier one; these compare
``normalize_latex(formula, canonical=True)`` keys.

Each kept formula gets ``looks_per_formula`` looks drawn from a seeded RNG. The looks are shuffled, and
every ``RENDER_GROUP_SIZE`` consecutive looks share one draw, so a group is one TeX run (``iter_render``
renders a whole batch with one set of options); a formula's looks still land in independent groups.
The plan (formulas and looks) is a pure function of the inputs and the options; it is saved as
``plan.json`` in the output folder, so a resumed build renders exactly the plan it started with.

The output folder::

    plan.json                       the plan and the options it was made with
    formulas.txt                    every corpus formula (the labels), one a line, for tokenizer training
    shard-00000.parquet, ...        rows: image (PNG bytes, datasets' Image layout), formula, source,
                                    font, font_size, dpi, display, look, stroke; render failures in the
                                    file's metadata
    manifest.json                   composition: formulas and images per source, font, size...; drops

Shards are written to a temporary file and renamed, so a shard file is always complete; a rerun of the
same build skips the shards that exist. Failed renders are counted and logged, never fatal.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage
from tqdm.auto import tqdm

from ..latex import join_tokens, tokenize_latex
from ..rendering import render_formulas
from ..rendering.looks import IM2LATEX_DPI, IM2LATEX_STROKE, im2latex_look
from .formula_generation import generate_formulas
from .im2latex import FORMULA_FILE, HELD_OUT_ROWS, SPLIT_FILES, split_formulas
from .normalization import normalize_latex
from .textbook_generation import generate_textbook_formulas

logger = logging.getLogger(__name__)

IM2LATEX_DIR = "im2latex-100k"
SCHOOL_MATH_FILE = "formulas/school-math.lst"
SOURCES = ("im2latex-train", "im2latex-validate", "school-math", "textbook", "generated")
RECIPES = ("mixed", "im2latex")

MAX_TOKENS = 150
LOOK_FONTS = {"cm": 0.4, "lmodern": 0.15, "times": 0.15, "palatino": 0.15, "helvetica": 0.15}
"""Font -> probability: Computer Modern, im2latex-100k's own font, gets the largest share."""
LOOK_FONT_SIZES = (10, 11, 12)
LOOK_DPI_RANGE = (80, 200)
"""im2latex-100k's processed images are about 100 dpi; users' images reach the model at up to twice that text
height (the image processor rescales only beyond its ``scale_tolerance``, 2), so the plain looks span it."""
DISPLAY_PROBABILITY = 0.75
"""im2latex-100k was rendered in display style; some inline looks add variety."""
IM2LATEX_LOOK_SHARE = 0.75
"""``im2latex`` recipe: share of render groups in the calibrated im2latex look (cm 12 pt, display)."""
IM2LATEX_DPI_JITTER = 3
"""``im2latex`` recipe: the calibrated looks' dpi varies this much either way (about ±2% in size)."""
OTHER_LOOK_DPI_RANGE = (150, 190)
OTHER_LOOK_STROKES = (-1, 0, 1, 2)
"""``im2latex`` recipe, minority looks: other fonts and sizes in the im2latex look, thin to bold strokes."""
PLAIN_LOOK_SHARE = 0.2
"""``im2latex`` recipe: share of the minority looks in the plain antialiased look (``mixed`` recipe's looks)."""
RENDER_GROUP_SIZE = 64

DEFAULT_GENERATED = 55_000
DEFAULT_LOOKS_PER_FORMULA = 2
DEFAULT_SHARD_SIZE = 10_000
"""Images per shard: about 0.6 KB per PNG measured, so about 6 MB a shard (limit: 50 MB)."""

PLAN_FILE = "plan.json"
MANIFEST_FILE = "manifest.json"
FORMULAS_FILE = "formulas.txt"
SHARD_PATTERN = "shard-{:05d}.parquet"

# Reasons a formula is dropped from the plan.
UNNORMALIZABLE = "unnormalizable"
EMPTY = "empty"
TOO_LONG = "too_long"
HELD_OUT = "in_validate_or_test"
IN_BENCHMARK = "in_benchmark"
DUPLICATE = "duplicate"

FEATURES = Features(
    {
        "image": Image(),
        "formula": Value("string"),
        "source": Value("string"),
        "font": Value("string"),
        "font_size": Value("int32"),
        "dpi": Value("int32"),
        "display": Value("bool"),
        "look": Value("string"),
        "stroke": Value("int32"),
    }
)
_STATS_KEY = b"im2latex_corpus"  # shard file metadata: {"looks": planned, "failed": n, "errors": {kind: n}}
_PLAN_VERSION = 3
_LOGGED_ERRORS = 3  # render failures logged per shard


@dataclass(frozen=True)
class Look:
    """How one image of formula ``formula`` (an index into ``CorpusPlan.formulas``) is rendered."""

    formula: int
    font: str
    font_size: int
    dpi: int
    display: bool
    look: str = "plain"  # one of looks.LOOKS
    stroke: int = 0  # stroke widening of the im2latex look (looks.im2latex_look)

    @property
    def options(self) -> tuple[str, int, int, bool, str, int]:
        return self.font, self.font_size, self.dpi, self.display, self.look, self.stroke


def _draw_font(rng: random.Random) -> str:
    return rng.choices(list(LOOK_FONTS), weights=list(LOOK_FONTS.values()))[0]


def _draw_plain_look(rng: random.Random) -> tuple[str, int, int, bool, str, int]:
    """The ``mixed`` recipe's looks: a random font, size, resolution and style, antialiased."""
    return (
        _draw_font(rng),
        rng.choice(LOOK_FONT_SIZES),
        rng.randint(*LOOK_DPI_RANGE),
        rng.random() < DISPLAY_PROBABILITY,
        "plain",
        0,
    )


def _draw_im2latex_recipe_look(rng: random.Random) -> tuple[str, int, int, bool, str, int]:
    """The ``im2latex`` recipe's looks: mostly the calibrated im2latex look, else other fonts and strokes."""
    if rng.random() < IM2LATEX_LOOK_SHARE:
        dpi = rng.randint(IM2LATEX_DPI - IM2LATEX_DPI_JITTER, IM2LATEX_DPI + IM2LATEX_DPI_JITTER)
        return "cm", 12, dpi, True, "im2latex", IM2LATEX_STROKE
    if rng.random() < PLAIN_LOOK_SHARE:
        return _draw_plain_look(rng)
    font, display = _draw_font(rng), rng.random() < DISPLAY_PROBABILITY
    dpi, stroke = rng.randint(*OTHER_LOOK_DPI_RANGE), rng.choice(OTHER_LOOK_STROKES)
    return font, rng.choice(LOOK_FONT_SIZES), dpi, display, "im2latex", stroke


@dataclass
class CorpusPlan:
    """What to render: formulas with their sources, the looks in shard order, and what was dropped."""

    config: dict[str, Any]
    formulas: list[str]
    sources: list[str]
    looks: list[Look]
    drops: dict[str, dict[str, int]]  # source -> reason -> formulas dropped

    def save(self, path: Path) -> None:
        data = {
            "config": self.config,
            "drops": self.drops,
            "formulas": [[formula, source] for formula, source in zip(self.formulas, self.sources, strict=True)],
            "looks": [list(asdict(look).values()) for look in self.looks],
        }
        _write_atomic(path, json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def load(cls, path: Path) -> CorpusPlan:
        data = json.loads(path.read_text(encoding="utf-8"))
        formulas, sources = zip(*data["formulas"], strict=True) if data["formulas"] else ((), ())
        looks = [Look(*fields) for fields in data["looks"]]
        return cls(data["config"], list(formulas), list(sources), looks, data["drops"])


def plan_config(
    data_dir: str | os.PathLike[str],
    *,
    generated: int = DEFAULT_GENERATED,
    textbook: int = 0,
    textbook_shapes: Sequence[str] | None = None,
    looks_per_formula: int = DEFAULT_LOOKS_PER_FORMULA,
    school_math_limit: int | None = None,
    seed: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    recipe: str = "mixed",
    benchmark_formulas: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything a plan and its shard layout depend on (input files by size, the benchmark formulas by
    digest), to check a resume against."""
    data_dir = Path(data_dir)
    inputs = [f"{IM2LATEX_DIR}/{FORMULA_FILE}", *(f"{IM2LATEX_DIR}/{name}" for name in SPLIT_FILES.values())]
    config = {
        "version": _PLAN_VERSION,
        "inputs": {name: (data_dir / name).stat().st_size for name in [*inputs, SCHOOL_MATH_FILE]},
        "generated": generated,
        "textbook": textbook,
        "looks_per_formula": looks_per_formula,
        "school_math_limit": school_math_limit,
        "seed": seed,
        "shard_size": shard_size,
        "recipe": recipe,
        "benchmark_formulas": _digest(benchmark_formulas),
    }
    if textbook_shapes is not None:  # only when given: plans made before the option still resume
        config["textbook_shapes"] = list(textbook_shapes)
    return config


def plan_corpus(
    data_dir: str | os.PathLike[str],
    *,
    generated: int = DEFAULT_GENERATED,
    textbook: int = 0,
    textbook_shapes: Sequence[str] | None = None,
    looks_per_formula: int = DEFAULT_LOOKS_PER_FORMULA,
    school_math_limit: int | None = None,
    seed: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    recipe: str = "mixed",
    benchmark_formulas: Sequence[str] = (),
) -> CorpusPlan:
    """Select, filter and deduplicate the formulas under ``data_dir`` and draw their looks (see the module doc).

    ``data_dir`` holds ``im2latex-100k/`` (original layout) and ``formulas/school-math.lst``;
    ``generated`` formulas are asked of the generator, ``textbook`` of the textbook grammar (``mixed``
    recipe only; ``textbook_shapes``: only those of its shapes), ``school_math_limit`` caps the school-math lines read (None: all; ``mixed`` recipe
    only), ``recipe`` is one of ``RECIPES``, and no formula equal to one of ``benchmark_formulas`` (in any
    LaTeX spelling) is kept. Deterministic for given inputs and options.
    """
    if looks_per_formula < 1 or generated < 0 or textbook < 0 or shard_size < 1:
        raise ValueError("looks_per_formula and shard_size must be positive, generated and textbook not negative")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if textbook and recipe != "mixed":
        raise ValueError("textbook formulas belong to the mixed recipe")
    config = plan_config(
        data_dir, generated=generated, textbook=textbook, textbook_shapes=textbook_shapes,
        looks_per_formula=looks_per_formula,
        school_math_limit=school_math_limit, seed=seed, shard_size=shard_size, recipe=recipe,
        benchmark_formulas=benchmark_formulas,
    )  # fmt: skip
    data_dir = Path(data_dir)
    im2latex = data_dir / IM2LATEX_DIR
    validation = split_formulas(im2latex, "validation")
    trainable_validation = validation[:-HELD_OUT_ROWS] if recipe == "im2latex" else []
    held_out = {_key(f) for f in [*split_formulas(im2latex, "test"), *validation[len(trainable_validation) :]]}
    selector = _Selector(held_out, {_key(f) for f in benchmark_formulas})

    for formula in split_formulas(im2latex, "train"):
        selector.add("im2latex-train", formula.strip())
    for formula in trainable_validation:
        selector.add("im2latex-validate", formula.strip())
    if recipe == "mixed":
        lines = (data_dir / SCHOOL_MATH_FILE).read_text(encoding="utf-8").split("\n")
        for line in lines[:school_math_limit] if school_math_limit is not None else lines:
            if line.strip():  # the file's final newline and blank lines are not formulas
                try:
                    selector.add("school-math", normalize_latex(line))
                except ValueError:
                    selector.drop("school-math", UNNORMALIZABLE)
        for formula in generate_textbook_formulas(textbook, seed=seed, shapes=textbook_shapes):
            selector.add("textbook", normalize_latex(formula))
    if generated:
        for formula in generate_formulas(list(selector.formulas), generated, seed=seed):
            selector.add("generated", formula)

    rng = random.Random(seed)
    order = [index for index in range(len(selector.formulas)) for _ in range(looks_per_formula)]
    rng.shuffle(order)
    draw = _draw_im2latex_recipe_look if recipe == "im2latex" else _draw_plain_look
    looks = []
    for start in range(0, len(order), RENDER_GROUP_SIZE):
        options = draw(rng)
        looks += [Look(index, *options) for index in order[start : start + RENDER_GROUP_SIZE]]
    drops = {source: dict(sorted(reasons.items())) for source, reasons in selector.drops.items()}
    return CorpusPlan(config, selector.formulas, selector.sources, looks, drops)


def build_corpus(
    data_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    generated: int = DEFAULT_GENERATED,
    textbook: int = 0,
    textbook_shapes: Sequence[str] | None = None,
    looks_per_formula: int = DEFAULT_LOOKS_PER_FORMULA,
    school_math_limit: int | None = None,
    seed: int = 0,
    shard_size: int = DEFAULT_SHARD_SIZE,
    recipe: str = "mixed",
    benchmark_formulas: Sequence[str] = (),
    workers: int = 1,
    max_shards: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Plan (or reload the plan of an earlier run) and render the shards not yet written; returns the manifest.

    ``workers`` TeX runs render at once; ``max_shards`` stops after rendering that many new shards
    (None: all). ``ValueError`` if ``output_dir`` holds a plan made with other inputs or options.
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    options = {
        "generated": generated, "textbook": textbook, "textbook_shapes": textbook_shapes,
        "looks_per_formula": looks_per_formula,
        "school_math_limit": school_math_limit, "seed": seed, "shard_size": shard_size, "recipe": recipe,
        "benchmark_formulas": benchmark_formulas,
    }  # fmt: skip
    plan_path = output / PLAN_FILE
    if plan_path.exists():
        plan = CorpusPlan.load(plan_path)
        if plan.config != plan_config(data_dir, **options):
            raise ValueError(
                f"{output} holds a corpus planned with other inputs or options ({plan.config}); "
                "rerun with those or use another output folder"
            )
        logger.info("resuming the plan in %s: %d formulas, %d images", plan_path, len(plan.formulas), len(plan.looks))
    else:
        logger.info("planning the corpus from %s", data_dir)
        start = time.perf_counter()
        plan = plan_corpus(data_dir, **options)
        _write_atomic(output / FORMULAS_FILE, "".join(f"{formula}\n" for formula in plan.formulas).encode())
        plan.save(plan_path)
        logger.info(
            "planned %d formulas (%s), %d images in %.1f s; dropped %s",
            len(plan.formulas), dict(Counter(plan.sources)), len(plan.looks), time.perf_counter() - start, plan.drops,
        )  # fmt: skip

    shards = [plan.looks[start : start + shard_size] for start in range(0, len(plan.looks), shard_size)]
    stats = _Stats()
    todo = []
    for number in range(len(shards)):
        if (output / SHARD_PATTERN.format(number)).exists():
            stats.add_shard(output / SHARD_PATTERN.format(number))
        else:
            todo.append(number)
    if todo:
        logger.info("%d of %d shards done; rendering %d", len(shards) - len(todo), len(shards), len(todo))
    bar = tqdm(
        total=len(plan.looks), initial=len(plan.looks) - sum(len(shards[n]) for n in todo), unit="img",
        desc="Rendering corpus", disable=not progress, mininterval=1 if sys.stderr.isatty() else 60,
    )  # fmt: skip
    with bar:
        for done, number in enumerate(todo[:max_shards] if max_shards is not None else todo, start=1):
            start = time.perf_counter()
            path = output / SHARD_PATTERN.format(number)
            failed, errors = _render_shard(plan, shards[number], path, workers, bar)
            seconds = time.perf_counter() - start
            stats.add_shard(path)
            logger.info(
                "%s (%d of %d this run, %d in all): %d images, %d failed, %.1f MB, %.0f s, %.1f images/s",
                path.name, done, len(todo), len(shards), len(shards[number]) - failed, failed,
                path.stat().st_size / 1e6, seconds, len(shards[number]) / seconds,
            )  # fmt: skip
            if errors:
                logger.warning("%s: render failures, e.g. %s", path.name, "; ".join(errors))
            _write_manifest(output, stats.manifest(plan, len(shards)))
    manifest = stats.manifest(plan, len(shards))
    _write_manifest(output, manifest)
    return manifest


def load_corpus(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """The finished shards of a corpus folder as one ``Dataset`` (``image`` decodes to PIL images)."""
    files = sorted(str(shard) for shard in Path(path).glob("shard-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no corpus shards in {path}")
    return Dataset.from_parquet(files, features=FEATURES, cache_dir=str(cache_dir) if cache_dir else None)


class _Selector:
    """Keeps formulas that pass the filters, in order, and counts the others per source and reason."""

    def __init__(self, held_out: set[str], benchmark: set[str]) -> None:
        self.held_out = held_out
        self.benchmark = benchmark
        self.seen: set[str] = set()
        self.formulas: list[str] = []
        self.sources: list[str] = []
        self.drops: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def drop(self, source: str, reason: str) -> None:
        self.drops[source][reason] += 1

    def add(self, source: str, formula: str) -> None:
        if not formula.strip():
            return self.drop(source, EMPTY)
        if len(tokenize_latex(formula)) > MAX_TOKENS:
            return self.drop(source, TOO_LONG)
        key = _key(formula)
        if key in self.held_out:
            return self.drop(source, HELD_OUT)
        if key in self.benchmark:
            return self.drop(source, IN_BENCHMARK)
        if key in self.seen:
            return self.drop(source, DUPLICATE)
        self.seen.add(key)
        self.formulas.append(formula)
        self.sources.append(source)


class _Stats:
    """Images per source, font, size, style and dpi, and render failures, over the finished shards."""

    def __init__(self) -> None:
        self.columns: dict[str, Counter[Any]] = {
            name: Counter() for name in ("source", "font", "font_size", "display", "dpi", "look", "stroke")
        }
        self.shards = self.failed = 0
        self.errors: Counter[str] = Counter()

    def add_shard(self, path: Path) -> None:
        table = pq.read_table(path, columns=list(self.columns))
        for name, counter in self.columns.items():
            counter.update(table.column(name).to_pylist())
        shard = json.loads(table.schema.metadata[_STATS_KEY])
        self.shards += 1
        self.failed += shard["failed"]
        self.errors.update(shard["errors"])

    def manifest(self, plan: CorpusPlan, shards: int) -> dict[str, Any]:
        dpi = self.columns["dpi"]
        images = sum(dpi.values())
        return {
            "complete": self.shards == shards,
            "config": plan.config,
            "shards": {"planned": shards, "finished": self.shards},
            "formulas": {**Counter(plan.sources), "total": len(plan.formulas)},
            "dropped_formulas": plan.drops,
            "images": {
                "planned": len(plan.looks),
                "rendered": images,
                "failed": self.failed,
                "by_source": dict(self.columns["source"]),
                "by_font": dict(self.columns["font"]),
                "by_font_size": {str(size): n for size, n in sorted(self.columns["font_size"].items())},
                "by_style": {"display" if display else "inline": n for display, n in self.columns["display"].items()},
                "by_look": dict(self.columns["look"]),
                "by_stroke": {str(stroke): n for stroke, n in sorted(self.columns["stroke"].items())},
                "dpi": {"min": min(dpi), "max": max(dpi), "mean": sum(k * n for k, n in dpi.items()) / images}
                if images
                else {},
            },
            "render_errors": dict(self.errors.most_common(20)),
        }


def _key(formula: str) -> str:
    """The comparison key: the canonical normalized form, or the token string if it cannot be normalized."""
    try:
        return normalize_latex(formula, canonical=True)
    except ValueError:
        return join_tokens(tokenize_latex(formula))


def _digest(formulas: Sequence[str]) -> str | None:
    """A short fingerprint of a set of formulas (None for none), as their comparison keys."""
    if not formulas:
        return None
    keys = "\n".join(sorted({_key(formula) for formula in formulas}))
    return hashlib.sha256(keys.encode()).hexdigest()[:16]


def _render_shard(plan: CorpusPlan, looks: list[Look], path: Path, workers: int, bar: tqdm) -> tuple[int, list[str]]:
    """Render a shard's looks, one TeX run per group of equal options, and write it: (failures, a few errors)."""
    groups: dict[tuple[str, int, int, bool, str, int], list[Look]] = defaultdict(list)
    for look in looks:
        groups[look.options].append(look)
    rows: list[dict[str, Any]] = []
    errors: Counter[str] = Counter()
    examples: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for group, pngs in zip(groups.values(), pool.map(lambda g: _render_group(plan, g), groups.values())):
            for look, (png, error) in zip(group, pngs, strict=True):
                formula = plan.formulas[look.formula]
                if png is None:
                    errors[error.split(" (at:")[0]] += 1
                    if len(examples) < _LOGGED_ERRORS:
                        examples.append(f"{formula[:100]!r}: {error}")
                    continue
                rows.append(
                    {"image": {"bytes": png, "path": None}, "formula": formula, "source": plan.sources[look.formula],
                     "font": look.font, "font_size": look.font_size, "dpi": look.dpi, "display": look.display,
                     "look": look.look, "stroke": look.stroke}
                )  # fmt: skip
            bar.update(len(group))
    failed = sum(errors.values())
    stats = {"looks": len(looks), "failed": failed, "errors": dict(errors)}
    schema = FEATURES.arrow_schema
    schema = schema.with_metadata({**schema.metadata, _STATS_KEY: json.dumps(stats).encode()})
    temp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), temp, row_group_size=1000)
    os.replace(temp, path)
    return failed, examples


def _render_group(plan: CorpusPlan, looks: list[Look]) -> list[tuple[bytes | None, str | None]]:
    """Render looks that share options in one TeX run: (PNG bytes, None) or (None, error) per look."""
    font, font_size, dpi, display, style, stroke = looks[0].options
    results = render_formulas(
        [plan.formulas[look.formula] for look in looks],
        font=font, font_size=font_size, dpi=dpi, display=display, batch_size=len(looks),
    )  # fmt: skip
    outcomes: list[tuple[bytes | None, str | None]] = []
    for result in results:
        if result.image is None:
            outcomes.append((None, result.error))
        else:
            image = im2latex_look(result.image, stroke) if style == "im2latex" else result.image
            outcomes.append((_png(image), None))
    return outcomes


def _png(image: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    _write_atomic(output / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file by renaming a finished temporary one, so it is never seen half written."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
