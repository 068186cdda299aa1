"""The user-formula benchmark: well-known formulas in the looks users bring, read by a model and scored.

Every formula of ``benchmarks/user_formulas.txt`` (one a line; ``#`` lines are comments) is drawn in each
look of `LOOKS`: TeX renders in several fonts and resolutions and in im2latex-100k's look, a KaTeX render
screenshotted in headless Chromium (KaTeX from gradio's frontend assets, offline), and a phone-style copy
(`phone_copy`). The images are cached under `cache_dir()`, in a folder named by the hash of the formulas
file and the look settings. A model reads them (batched) and each reading is scored by image match (the
reading and the formula rendered alike and compared, as ``im2latex evaluate`` does:
`metrics.pair_matches`; also ignoring blank columns, i.e. spacing) and by canonical exact match
(`normalization.canonicalize_tokens` on both sides).

Another program's readings can be scored beside the model's: ``--list-images FILE`` writes the images to read
(`image_list`), and ``--predictions FILE`` scores the readings it wrote (`apply_predictions`) instead of reading.

    python scripts/benchmark_users.py [--model M] [--backend onnx] [--looks cm-100,katex] [--limit 50] [--every 5]
    python scripts/benchmark_users.py --list-images images.json
    python scripts/benchmark_users.py --predictions predictions.json --every 5
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageFilter, ImageOps
from rapidfuzz.distance import Levenshtein

from ..bundled_model import DEFAULT_MODEL
from ..data.normalization import canonicalize_tokens
from ..inference import BACKENDS, FormulaReader, add_text_scales_argument
from ..latex import tokenize_latex
from ..metrics import pair_matches
from ..rendering import render_formulas
from ..rendering.looks import IM2LATEX_DPI

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

FORMULAS_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "user_formulas.txt"
CACHE_VERSION = 1
"""Part of the cache key: raise it when the way images are made changes."""
WORST = 10
"""Readings listed as the worst."""
SCORES = {"image_match": "image match", "image_match_no_space": "w/o spaces", "exact_match": "exact match"}
"""Each reading's scores (`Sample` fields) and their column names."""
SHAPES = {
    "binomial": r"\\binom|\\choose",
    "cases": r"\\begin\{cases\}",
    "matrix": r"matrix\}|\\begin\{array\}",
    "norm": r"\\\|",
    "limit": r"\\lim",
    "text": r"\\text",
    "sum or product": r"\\sum|\\prod",
    "integral": r"\\i+nt|\\oint",
    "derivative": r"\\partial|\\frac\{d",
    "bold, blackboard or calligraphic": r"\\mathbb|\\mathcal|\\mathbf",
    "fraction": r"\\[dt]?frac",
}
"""Formula shapes (regular expressions on the gold LaTeX) for the by-shape table, in order of precedence."""


@dataclass(frozen=True)
class Look:
    """How a formula is drawn: a TeX render, a KaTeX screenshot, or a TeX render made a phone photo."""

    name: str
    description: str
    kind: Literal["tex", "katex", "phone"] = "tex"
    font: str = "cm"  # a `rendering.FONTS` name (TeX and phone looks)
    dpi: int = 150
    look: str = "plain"  # a `looks.LOOKS` name


LOOKS = (
    Look("cm-100", "Computer Modern, 100 dpi", dpi=100),
    Look("cm-150", "Computer Modern, 150 dpi"),
    Look("cm-300", "Computer Modern, 300 dpi", dpi=300),
    Look("times-150", "Times, 150 dpi", font="times"),
    Look("helvetica-150", "Helvetica, 150 dpi", font="helvetica"),
    Look("im2latex", "im2latex-100k's look", look="im2latex-fast", dpi=IM2LATEX_DPI),
    Look("katex", "KaTeX in headless Chromium, the browser's default size", kind="katex"),
    Look("phone", "phone photo of Computer Modern at 150 dpi: gray, rotated, blurred, JPEG 40", kind="phone"),
)
LOOK_NAMES = tuple(look.name for look in LOOKS)
PHONE_STYLE = {
    "paper": (200, 235), "ink": (15, 60), "rotation": 1.5, "blur": (0.5, 1.0), "noise": 4.0, "quality": 40, "margin": 16,
}  # fmt: skip
"""The phone look: random ranges of paper and ink gray, rotation (degrees either way) and blur radius (pixels);
the noise's sigma (gray levels), the JPEG quality and the paper around the formula (pixels)."""
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=2400,1200",
)  # fmt: skip


class LookUnavailable(RuntimeError):
    """A look cannot be rendered on this machine (no Chromium, no KaTeX)."""


@dataclass
class Sample:
    """One formula in one look: its image, how it was read, and the scores."""

    look: str
    index: int
    gold: str
    image: str | None = None
    error: str | None = None  # why there is no image, or why it could not be read
    prediction: str | None = None
    image_match: bool = False
    image_match_no_space: bool = False  # image match ignoring blank columns (spacing)
    exact_match: bool = False


def read_formulas(path: str | os.PathLike[str] = FORMULAS_FILE) -> list[str]:
    """The formulas of a file: one a line, blank and ``#`` lines skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def cache_dir() -> Path:
    """``$IM2LATEX_CACHE/user-benchmark``, else ``~/.cache/im2latex_hf/user-benchmark``."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "im2latex_hf"
    return Path(os.environ.get("IM2LATEX_CACHE") or default) / "user-benchmark"


def cache_key(path: str | os.PathLike[str]) -> str:
    """The hash of the formulas file and every look's settings."""
    settings = {"version": CACHE_VERSION, "looks": [asdict(look) for look in LOOKS], "phone": PHONE_STYLE}
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def render_look(formulas: list[str], look: Look, folder: Path, workers: int = 2) -> list[Sample]:
    """Each formula drawn in ``look``, its image in ``folder`` (made now unless there already).

    A formula that cannot be drawn gets its error (kept in ``folder`` too). Raises `LookUnavailable`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".jpg" if look.kind == "phone" else ".png"
    samples = [Sample(look.name, index, formula) for index, formula in enumerate(formulas)]
    missing = []
    for sample in samples:
        image, error = folder / f"{sample.index}{suffix}", folder / f"{sample.index}.error.txt"
        if image.is_file():
            sample.image = str(image)
        elif error.is_file():
            sample.error = error.read_text(encoding="utf-8")
        else:
            missing.append(sample)
    if not missing:
        return samples
    if look.kind == "katex":
        drawn = render_katex([sample.gold for sample in missing])
    else:
        results = render_formulas(
            [sample.gold for sample in missing], font=look.font, dpi=look.dpi, look=look.look, workers=workers
        )
        drawn = [(result.image, result.error) for result in results]
    for sample, (image, error) in zip(missing, drawn, strict=True):
        if image is None:
            sample.error = error or "no image"
            (folder / f"{sample.index}.error.txt").write_text(sample.error, encoding="utf-8")
            continue
        path = folder / f"{sample.index}{suffix}"
        partial = path.with_name(f".{path.name}")
        if look.kind == "phone":
            partial.write_bytes(phone_copy(image, seed=sample.index))
        else:
            image.save(partial, format="PNG")
        partial.replace(path)  # a run cut short leaves no half-written image behind
        sample.image = str(path)
    return samples


def phone_copy(image: Image.Image, seed: int) -> bytes:
    """A render as a phone photo of a printout, as JPEG bytes: gray paper and ink, slightly rotated and
    blurred, sensor noise, heavy compression (`PHONE_STYLE`). The same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    paper, ink = int(rng.integers(*PHONE_STYLE["paper"])), int(rng.integers(*PHONE_STYLE["ink"]))
    tones = [round(ink + (paper - ink) * level / 255) for level in range(256)]
    photo = ImageOps.expand(image.convert("L").point(tones), border=PHONE_STYLE["margin"], fill=paper)
    angle = rng.uniform(-PHONE_STYLE["rotation"], PHONE_STYLE["rotation"])
    photo = photo.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(*PHONE_STYLE["blur"])))
    noisy = np.asarray(photo, dtype=np.float32) + rng.normal(0.0, PHONE_STYLE["noise"], (photo.height, photo.width))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=PHONE_STYLE["quality"])
    return buffer.getvalue()


def katex_assets() -> tuple[Path, Path]:
    """KaTeX's script and stylesheet as gradio's frontend ships them; `LookUnavailable` if absent."""
    spec = importlib.util.find_spec("gradio")
    if spec is None or spec.origin is None:
        raise LookUnavailable("gradio (whose frontend ships KaTeX) is not installed: pip install gradio")
    assets = Path(spec.origin).parent / "templates" / "frontend" / "assets"
    scripts, styles = sorted(assets.glob("katex-*.js")), sorted(assets.glob("katex-*.css"))
    if not scripts or not styles:
        raise LookUnavailable(f"no KaTeX script and stylesheet (katex-*.js, katex-*.css) in {assets}")
    return scripts[0], styles[0]


def render_katex(formulas: list[str]) -> list[tuple[Image.Image | None, str | None]]:
    """Each formula typeset by KaTeX (display mode) in headless Chromium, screenshotted and cropped to the
    ink: (image, None), or (None, KaTeX's error). Raises `LookUnavailable` without Chromium or KaTeX."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        raise LookUnavailable("selenium is not installed (pip install selenium)") from None
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        raise LookUnavailable("chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    script, style = katex_assets()
    # gradio's build is an ES module (file:// pages cannot import one) and its stylesheet is scoped to the
    # gradio container's class: the page loads the module as a plain script and wears that class.
    code, exported = re.subn(
        r"export\s*\{\s*([\w$]+)\s+as\s+default\s*\}\s*;?\s*$", r"window.katex=\1;", script.read_text("utf-8")
    )
    if not exported:
        raise LookUnavailable(f"{script} does not export KaTeX as its default")
    scope = re.search(r"\.(gradio-container[\w-]*)\s", style.read_text("utf-8"))
    with tempfile.TemporaryDirectory(prefix="im2latex-katex-") as temp:
        page = Path(temp) / "page.html"
        (Path(temp) / "katex.js").write_text(code, encoding="utf-8")
        page.write_text(
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><link rel='stylesheet' href='{style.as_uri()}'>"
            "<script src='katex.js'></script><style>body{margin:0;background:#fff;color:#000}"
            "#formula{display:inline-block;padding:8px}</style></head>"
            f"<body><div class='{scope[1] if scope else ''}'><div id='formula'></div></div></body></html>",
            encoding="utf-8",
        )
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={Path(temp) / 'profile'}"):
            options.add_argument(flag)
        try:
            driver = webdriver.Chrome(service=webdriver.ChromeService(chromedriver), options=options)
        except WebDriverException as error:
            raise LookUnavailable(f"Chromium did not start: {error.msg}") from None
        try:
            driver.get(page.as_uri())
            return [_katex_screenshot(driver, formula) for formula in formulas]
        finally:
            driver.quit()


def _katex_screenshot(driver: WebDriver, formula: str) -> tuple[Image.Image | None, str | None]:
    """Typeset one formula on the open page and screenshot it, cropped to the ink."""
    error = driver.execute_script(
        "try { katex.render(arguments[0], document.getElementById('formula'),"
        " {displayMode: true, throwOnError: true}); return null } catch (e) { return String(e.message) }",
        formula,
    )
    if error:
        return None, error
    driver.execute_async_script("document.fonts.ready.then(arguments[arguments.length - 1])")
    shot = Image.open(io.BytesIO(driver.find_element("id", "formula").screenshot_as_png)).convert("L")
    box = ImageOps.invert(shot).getbbox()
    return (shot.crop(box), None) if box else (None, "KaTeX drew no ink")


def sample_key(sample: Sample) -> str:
    """A benchmark image's key in an image list and a predictions file: ``look/index``, e.g. ``cm-150/12``."""
    return f"{sample.look}/{sample.index}"


def image_list(samples: list[Sample]) -> list[dict[str, str | int]]:
    """The drawn images, for a program that reads them elsewhere: each one's key, path, look and formula index."""
    return [
        {"key": sample_key(sample), "path": sample.image, "look": sample.look, "index": sample.index}
        for sample in samples
        if sample.image is not None
    ]


def apply_predictions(samples: list[Sample], predictions: dict[str, str | None]) -> int:
    """Set every drawn sample's prediction from readings made elsewhere, keyed by `sample_key` (or by the
    image's path); a null reading counts as unread. Returns how many drawn samples have none in ``predictions``."""
    missing = 0
    for sample in samples:
        if sample.image is None:
            continue
        key = sample_key(sample) if sample_key(sample) in predictions else sample.image
        if key not in predictions:
            missing += 1
        elif predictions[key] is None:
            sample.error = "the reader gave no reading"
        else:
            sample.prediction = predictions[key]
    return missing


def read_samples(
    reader: FormulaReader,
    samples: list[Sample],
    *,
    num_beams: int,
    max_new_tokens: int,
    batch_size: int,
    text_scales: tuple[float | None, ...] = (None,),
    verify: bool = False,
) -> None:
    """Read every sample's image with a `FormulaReader` (in batches), setting its prediction or error."""
    drawn = [sample for sample in samples if sample.image is not None]
    readings = reader.read(
        [sample.image for sample in drawn],
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        text_scales=text_scales,
        verify=verify,
    )
    for sample, reading in zip(drawn, readings, strict=True):
        sample.prediction, sample.error = reading.latex, reading.error


def score_samples(samples: list[Sample], workers: int = 2) -> None:
    """Score every drawn sample: image match (`metrics.pair_matches`) and canonical exact match.

    An image the model could not read counts as an empty prediction: wrong.
    """
    drawn = [sample for sample in samples if sample.image is not None]
    predictions = [sample.prediction or "" for sample in drawn]
    matches = pair_matches(predictions, [sample.gold for sample in drawn], workers=workers)
    for sample, prediction, match in zip(drawn, predictions, matches, strict=True):
        sample.image_match, sample.image_match_no_space = match.match, match.match_no_space
        sample.exact_match = _canonical(prediction) == _canonical(sample.gold)


def _canonical(latex: str) -> list[str]:
    return canonicalize_tokens(tokenize_latex(latex))


def summarize(samples: list[Sample], looks: list[Look]) -> dict[str, dict]:
    """Per look: formulas, images drawn, and per score (`SCORES`) its count and rate over the drawn images."""
    table = {}
    for look in looks:
        of_look = [sample for sample in samples if sample.look == look.name]
        table[look.name] = {"description": look.description, "formulas": len(of_look), **_rates(of_look)}
    return table


def formula_shape(formula: str) -> str:
    """The first of `SHAPES` that a formula shows, else ``"other"``."""
    return next((name for name, pattern in SHAPES.items() if re.search(pattern, formula)), "other")


def summarize_shapes(samples: list[Sample]) -> dict[str, dict]:
    """Per formula shape (`formula_shape`), over all looks: formulas, images drawn, and each score's count and rate."""
    by_shape: dict[str, list[Sample]] = {shape: [] for shape in [*SHAPES, "other"]}
    for sample in samples:
        by_shape[formula_shape(sample.gold)].append(sample)
    return {
        shape: {"formulas": len({sample.index for sample in of_shape}), **_rates(of_shape)}
        for shape, of_shape in by_shape.items()
        if of_shape
    }


def _rates(samples: list[Sample]) -> dict[str, int | float | None]:
    """Images drawn, and per score (`SCORES`) its count and rate over them."""
    drawn = [sample for sample in samples if sample.image is not None]
    row: dict[str, int | float | None] = {"images": len(drawn)}
    for score in SCORES:
        count = sum(getattr(sample, score) for sample in drawn)
        row[f"{score}_count"] = count
        row[score] = round(count / len(drawn), 4) if drawn else None
    return row


def worst(samples: list[Sample], count: int = WORST) -> list[Sample]:
    """The wrong readings farthest from their gold (canonical token edit distance over the longer length)."""

    def distance(sample: Sample) -> float:
        prediction, gold = _canonical(sample.prediction or ""), _canonical(sample.gold)
        return Levenshtein.distance(prediction, gold) / max(len(prediction), len(gold))

    wrong = [s for s in samples if s.image is not None and not s.image_match and not s.exact_match]
    return sorted(wrong, key=distance, reverse=True)[:count]


def markdown_report(report: dict) -> str:
    """The per-look table, the mean of the looks, skipped looks, the by-shape table and the worst readings, in
    markdown."""
    lines = ["| look | images | " + " | ".join(SCORES.values()) + " |", "| --- " * (2 + len(SCORES)) + "|"]
    rows = {f"{name}: {row['description']}": row for name, row in report["looks"].items()}
    for name, row in {**rows, "**mean of the looks**": report["mean"]}.items():
        images = f"{row['images']}" + (f" of {row['formulas']}" if row["images"] < row["formulas"] else "")
        rates = " | ".join(
            "-" if row[score] is None else f"{row[score]:.3f} ({row[score + '_count']})" for score in SCORES
        )
        lines.append(f"| {name} | {images} | {rates} |")
    lines += [f"\nskipped look {name}: {reason}" for name, reason in report["skipped"].items()]
    lines += ["\nBy formula shape, all looks (a formula counts under the first shape it shows):\n"]
    lines += ["| shape | formulas | images | " + " | ".join(SCORES.values()) + " |", "| --- " * (3 + len(SCORES)) + "|"]
    for shape, row in report["shapes"].items():
        rates = " | ".join("-" if row[score] is None else f"{row[score]:.3f}" for score in SCORES)
        lines.append(f"| {shape} | {row['formulas']} | {row['images']} | {rates} |")
    lines += [f"\nThe {len(report['worst'])} worst readings:\n", "| look | gold | prediction |", "| --- | --- | --- |"]
    for sample in report["worst"]:
        shown = sample["prediction"] if sample["prediction"] is not None else f"(unread: {sample['error']})"
        lines.append(f"| {sample['look']} | `{_cell(sample['gold'])}` | `{_cell(shown)}` |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    parser.add_argument("--formulas", default=str(FORMULAS_FILE), help="one formula a line (default: %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder or Hub repo id (default: bundled)")
    parser.add_argument("--backend", default="pytorch", choices=BACKENDS)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (pytorch; default: cuda when available)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam width; 1 (default) is greedy")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="images per generate() call")
    add_text_scales_argument(parser)
    parser.add_argument("--verify", action="store_true", help="let the render verifier choose among the readings")
    parser.add_argument(
        "--looks",
        default=",".join(LOOK_NAMES),
        help=f"comma-separated subset of {', '.join(LOOK_NAMES)} (default: all)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N formulas")
    parser.add_argument("--every", type=int, default=1, help="only every Nth formula (index 0, N, 2N, ...)")
    parser.add_argument("--cache-dir", default=None, help=f"image cache (default: {cache_dir()})")
    parser.add_argument("--render-workers", type=int, default=2, help="TeX processes at once")
    parser.add_argument("--output", default=None, help="write the JSON report (every reading) to this file")
    parser.add_argument(
        "--list-images", metavar="FILE", default=None, help="render, write the images' list (JSON) and stop"
    )
    parser.add_argument(
        "--predictions",
        metavar="FILE",
        default=None,
        help="score these readings (JSON: image key look/index, or path, to LaTeX) instead of reading",
    )


class UsageError(Exception):
    """A bad option or input file: `run` prints it and exits with status 2."""


def run(args: argparse.Namespace) -> int:
    """Render (or reuse), read (or take the readings of ``--predictions``), score and print; or with
    ``--list-images`` render and write the images' list. Returns an exit status."""
    try:
        return _run(args)
    except UsageError as error:
        print(error, file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    unknown = set(args.looks.split(",")) - set(LOOK_NAMES)
    if unknown:
        raise UsageError(f"unknown look(s) {', '.join(sorted(unknown))}; choose from {', '.join(LOOK_NAMES)}")
    if args.every < 1:
        raise UsageError(f"--every must be at least 1, not {args.every}")
    formulas = read_formulas(args.formulas)[: args.limit]
    folder = Path(args.cache_dir or cache_dir()) / cache_key(args.formulas)
    wanted = [look for look in LOOKS if look.name in args.looks.split(",")]
    samples, skipped, render_seconds = _render_looks(args, wanted, formulas, folder)
    looks = [look for look in wanted if look.name in samples]
    every = [sample for look in looks for sample in samples[look.name]]
    if args.list_images:
        images = image_list(every)
        Path(args.list_images).write_text(json.dumps(images, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.list_images}: {len(images)} images in {len(looks)} looks; images in {folder}")
        return 0

    if args.predictions:
        setup, load_seconds, read_seconds = _take_predictions(args.predictions, every), None, {}
    else:
        setup, load_seconds, read_seconds = _read_with_model(args, looks, samples)
    start = time.perf_counter()
    score_samples(every, workers=args.render_workers)
    score_seconds = time.perf_counter() - start

    table = summarize(every, looks)
    read = sum(sample.image is not None for sample in every)
    timing = {
        "render_seconds": round(sum(render_seconds.values()), 2),
        "model_load_seconds": None if load_seconds is None else round(load_seconds, 2),
        "read_seconds": None if load_seconds is None else round(sum(read_seconds.values()), 2),
        "images_per_second": round(read / sum(read_seconds.values()), 2) if read and load_seconds else None,
        "score_seconds": round(score_seconds, 2),
        "per_look": {
            name: {
                "render": round(render_seconds[name], 2),
                "read": round(read_seconds[name], 2) if name in read_seconds else None,
            }
            for name in render_seconds
        },
    }
    report = {
        **setup,
        "formulas_file": str(args.formulas),
        "formulas": len(formulas),
        "every": args.every,
        "cache": str(folder),
        "looks": table,
        "mean": _mean(table),
        "shapes": summarize_shapes(every),
        "skipped": skipped,
        "worst": [asdict(sample) for sample in worst(every)],
        "timing": timing,
        "command": shlex.join(sys.argv),
        "readings": [asdict(sample) for sample in every],
    }
    subset = f" (1 in {args.every}: {len(every) // max(len(looks), 1)})" if args.every > 1 else ""
    print(f"{setup['reader']}: {len(formulas)} formulas{subset} in {len(looks)} looks\n")
    print(markdown_report(report))
    reading = (
        f"reading {read} images in {timing['read_seconds']:.1f} s ({timing['images_per_second']} images/s, "
        f"model load {timing['model_load_seconds']:.1f} s)"
        if load_seconds is not None
        else f"{read} images read elsewhere"
    )
    print(
        f"\nrendering (or cache) {timing['render_seconds']:.1f} s; {reading}; "
        f"scoring {timing['score_seconds']:.1f} s; images in {folder}"
    )
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def _render_looks(
    args: argparse.Namespace, looks: list[Look], formulas: list[str], folder: Path
) -> tuple[dict[str, list[Sample]], dict[str, str], dict[str, float]]:
    """Each look's samples (every ``--every``-th formula), the looks skipped with why, and each look's seconds."""
    samples: dict[str, list[Sample]] = {}
    skipped: dict[str, str] = {}
    render_seconds: dict[str, float] = {}
    for look in looks:
        start = time.perf_counter()
        try:
            drawn = render_look(formulas, look, folder / look.name, workers=args.render_workers)
        except LookUnavailable as error:
            skipped[look.name] = str(error)
            print(f"skipping look {look.name}: {error}", file=sys.stderr)
            continue
        samples[look.name] = [sample for sample in drawn if sample.index % args.every == 0]
        render_seconds[look.name] = time.perf_counter() - start
        print(f"rendered {look.name} (or found it cached) in {render_seconds[look.name]:.1f} s", file=sys.stderr)
    return samples, skipped, render_seconds


def _take_predictions(path: str, samples: list[Sample]) -> dict:
    """Give the samples the readings in the JSON file at ``path``; the report's reader fields."""
    try:
        predictions = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read predictions {path}: {error}") from error
    if not isinstance(predictions, dict):
        raise UsageError(f"{path} is not a JSON object (image key to LaTeX)")
    missing = apply_predictions(samples, predictions)
    if missing:
        raise UsageError(
            f"{missing} of the {sum(s.image is not None for s in samples)} images have no reading in "
            f"{path} (score a subset with --looks, --limit and --every)"
        )
    return {"reader": f"predictions from {path}", "predictions": str(path)}


def _read_with_model(
    args: argparse.Namespace, looks: list[Look], samples: dict[str, list[Sample]]
) -> tuple[dict, float, dict[str, float]]:
    """Read every look's samples with the model; the report's reader fields, load seconds and each look's seconds."""
    start = time.perf_counter()
    try:
        reader = FormulaReader.from_pretrained(args.model, device=args.device, backend=args.backend)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot load model {args.model}: {error}") from error
    load_seconds = time.perf_counter() - start
    read_seconds: dict[str, float] = {}
    for look in looks:
        start = time.perf_counter()
        read_samples(
            reader,
            samples[look.name],
            num_beams=args.num_beams,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            text_scales=args.text_scales,
            verify=args.verify,
        )
        read_seconds[look.name] = time.perf_counter() - start
        print(f"read {look.name} in {read_seconds[look.name]:.1f} s", file=sys.stderr)
    text_scales = ["auto" if scale is None else scale for scale in args.text_scales]
    setup = {
        "reader": f"{args.model} ({args.backend} on {reader.device}, beam {args.num_beams}"
        + (f", text scales {','.join(map(str, text_scales))}" if len(text_scales) > 1 else "")
        + (", verified" if args.verify else "")
        + ")",
        "model": args.model,
        "backend": args.backend,
        "device": str(reader.device),
        "num_beams": args.num_beams,
        "text_scales": text_scales,
        "verify": args.verify,
    }
    return setup, load_seconds, read_seconds


def _mean(table: dict[str, dict]) -> dict[str, float | int | None]:
    """The looks' rates averaged (each look weighs the same), and the counts summed."""
    rows = [row for row in table.values() if row["images"]]
    mean = {key: sum(row[key] for row in rows) for key in ("formulas", "images", *(f"{s}_count" for s in SCORES))}
    for score in SCORES:
        mean[score] = round(sum(row[score] for row in rows) / len(rows), 4) if rows else None
    return mean


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/benchmark_users.py``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
