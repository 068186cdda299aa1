"""Does a verifier see one wrong symbol? Gold LaTeX against the same gold with one realistic symbol changed.

    python scripts/benchmark_local_match.py --data-dir ../shared/data/im2latex-100k [--rows 200] [--seed 0]
        [--workers 2] [--no-old]

Takes ``--rows`` rows at random (``--seed``) from the held-out rows of im2latex-100k's validation list
(its last 1,000 lines; never the test split), and for each row makes one corruption of each kind that
applies to its gold formula, of the kinds the model really makes (see `KINDS`): ``\\bar``↔``\\tilde``,
``\\hat``→``\\dot``, ``\\tau``→``r``, a digit changed, a sign flipped (``+``↔``-``, ``<``↔``>``,
``\\pm``↔``\\mp``, ``\\leq``↔``\\geq``), a letter changed, a prime dropped, a ``\\,`` dropped.
Environment names, array column specs and ``\\mathrm``/``\\text`` arguments are left alone.

Each verifier scores gold and corruptions against the real image: `metrics.verification.verify`, which
uses the local match for images in the im2latex look (`metrics.local_match`: faithful im2latex render,
global then column-wise DTW alignment, worst local discrepancy), and, unless ``--no-old``, the window
comparison (``verify(..., local=False)``: the im2latex-fast render, glyph-sized windows). Printed: per
corruption kind, the share of pairs where gold scores strictly above the corruption (a tie is a loss),
overall, the share of images where gold beats all of its corruptions, gold's mean score, and
verifications per second (renders included, none cached beforehand; and, for the local match, the
comparison alone on renders already made). Corruptions whose faithful render is pixel-identical to
gold's are counted (no verifier can win them) and named.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("bar_tilde", "hat_dot", "tau_r", "digit", "sign", "letter", "drop_prime", "drop_thin_space")
SIGNS = {"+": "-", "-": "+", "<": ">", ">": "<", "\\pm": "\\mp", "\\mp": "\\pm", "\\leq": "\\geq", "\\geq": "\\leq"}
_ARGUMENT_COMMANDS = ("\\label", "\\tag", "\\mathrm", "\\operatorname", "\\text", "\\mbox", "\\end")
HELD_OUT_ROWS = 1000  # as im2latex_hf.data.im2latex.HELD_OUT_ROWS (not imported: --help stays light)


def _protected(tokens: list[str]) -> set[int]:
    """Token positions inside arguments that a misreading would not change: environment names, array
    column specs, ``\\mathrm`` and ``\\text`` words, labels."""
    protected: set[int] = set()
    for i, token in enumerate(tokens):
        if token.startswith("\\begin"):
            groups = 1 if token != "\\begin" else 2  # "\begin{array}" is one token in the normalized data
        elif token in _ARGUMENT_COMMANDS:
            groups = 1
        else:
            continue
        j = i + 1
        for _ in range(groups):
            if j >= len(tokens) or tokens[j] != "{":
                break
            depth = 0
            while j < len(tokens):
                depth += tokens[j] == "{"
                depth -= tokens[j] == "}"
                protected.add(j)
                j += 1
                if depth == 0:
                    break
    return protected


def sites(tokens: list[str], kind: str) -> list[tuple[int, str | None]]:
    """(token position, replacement) for each place a ``kind`` corruption can go; None: draw a replacement,
    "": drop the token."""
    protected = _protected(tokens)
    free = [(i, token) for i, token in enumerate(tokens) if i not in protected]
    if kind == "bar_tilde":
        return [(i, "\\tilde" if t == "\\bar" else "\\bar") for i, t in free if t in ("\\bar", "\\tilde")]
    if kind == "hat_dot":
        return [(i, "\\dot") for i, t in free if t == "\\hat"]
    if kind == "tau_r":
        return [(i, "r") for i, t in free if t == "\\tau"]
    if kind == "digit":
        return [(i, None) for i, t in free if len(t) == 1 and t.isdigit()]
    if kind == "sign":
        return [(i, SIGNS[t]) for i, t in free if t in SIGNS]
    if kind == "letter":
        return [(i, None) for i, t in free if len(t) == 1 and t.isascii() and t.isalpha()]
    if kind == "drop_prime":
        return [(i, "") for i, t in free if t in ("'", "\\prime")]
    if kind == "drop_thin_space":
        return [(i, "") for i, t in free if t == "\\,"]
    raise ValueError(f"unknown corruption kind {kind!r}")


def corrupt(formula: str, kind: str, rng: random.Random) -> str | None:
    """``formula`` (space-separated tokens) with one ``kind`` corruption at a random place; None if none applies."""
    tokens = formula.split()
    found = sites(tokens, kind)
    if not found:
        return None
    i, new = rng.choice(found)
    if new is None:
        old = tokens[i]
        pool = "0123456789" if old.isdigit() else "abcdefghijklmnopqrstuvwxyz"
        pool = pool.upper() if old.isupper() else pool
        new = rng.choice([c for c in pool if c != old])
    tokens[i : i + 1] = [new] if new else []
    return " ".join(tokens)


def held_out_rows(data_dir: Path) -> list[tuple[Path, str]]:
    """(image path, gold formula) of the validation list's last `HELD_OUT_ROWS` usable lines."""
    from im2latex_hf.data.im2latex import FORMULA_FILE, IMAGE_DIR, SPLIT_FILES, read_formulas

    formulas = read_formulas(data_dir / FORMULA_FILE)
    rows = []
    for line in (data_dir / SPLIT_FILES["validation"]).read_text(encoding="utf-8", errors="replace").split("\n"):
        fields = line.split()
        if len(fields) == 2 and fields[1].isdecimal() and int(fields[1]) < len(formulas):
            formula = formulas[int(fields[1])]
            if formula is not None and formula.strip():
                rows.append((data_dir / IMAGE_DIR / fields[0], formula))
    return rows[-HELD_OUT_ROWS:]


def report(name: str, rows: int, gold: list[float], corrupted: list[tuple[int, str, float]], seconds: float) -> None:
    """One verifier's figures: per kind and overall, gold strictly above the corruption."""
    wins: dict[str, list[bool]] = {}
    beaten_all: dict[int, bool] = {}
    for row, kind, value in corrupted:
        win = gold[row] > value
        wins.setdefault(kind, []).append(win)
        beaten_all[row] = beaten_all.get(row, True) and win
    total = [win for kind_wins in wins.values() for win in kind_wins]
    verifications = len(gold) + len(corrupted)
    print(f"\n{name}: {rows} images, {len(corrupted)} corruptions")
    for kind in KINDS:
        if kind in wins:
            print(
                f"  {kind:16s} gold above corruption {sum(wins[kind]):4d}/{len(wins[kind]):4d} = {np.mean(wins[kind]):.1%}"
            )
    print(f"  {'all kinds':16s} gold above corruption {sum(total):4d}/{len(total):4d} = {np.mean(total):.1%}")
    print(f"  images where gold beats all its corruptions: {sum(beaten_all.values())}/{len(beaten_all)}")
    print(f"  gold mean score {statistics.mean(gold):.3f} (median {statistics.median(gold):.3f})")
    print(f"  {verifications} verifications in {seconds:.1f} s: {verifications / seconds:.1f}/s (renders included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="im2latex-100k in its original layout")
    parser.add_argument("--rows", type=int, default=200, help="held-out rows to draw (of the last 1,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the row draw and the corruptions")
    parser.add_argument("--workers", type=int, default=2, help="TeX runs at once")
    parser.add_argument("--no-old", action="store_true", help="skip the window comparison (metrics.verification)")
    args = parser.parse_args()

    from im2latex_hf.metrics import local_match, verification

    rng = random.Random(args.seed)
    candidates = held_out_rows(Path(args.data_dir))
    chosen = sorted(rng.sample(range(len(candidates)), min(args.rows, len(candidates))))
    images, golds, corruptions = [], [], []  # corruptions: (image number, kind, formula)
    for position in chosen:
        path, gold = candidates[position]
        image = np.asarray(Image.open(path).convert("L"))
        if image.min() > 200:
            continue  # the dataset's renderer failed on this row: a blank image
        row = len(images)
        images.append(image)
        golds.append(gold)
        for kind in KINDS:
            changed = corrupt(gold, kind, rng)
            if changed is not None and changed != gold:
                corruptions.append((row, kind, changed))
    lists = [[gold] for gold in golds]
    for row, _, formula in corruptions:
        lists[row].append(formula)
    in_look = sum(verification.is_im2latex_look(image) for image in images)
    print(
        f"{len(images)} held-out images ({len(chosen) - len(images)} blank left out, {in_look} in the im2latex look), "
        f"{len(corruptions)} corruptions, seed {args.seed}"
    )

    start = time.perf_counter()
    scored = verification.verify(images, lists, workers=args.workers)
    seconds = time.perf_counter() - start
    _print_verifier("verify: local match (faithful render, DTW)", scored, corruptions, seconds)
    identical = _identical_renders(golds, corruptions)
    print(f"  corruptions whose faithful render is pixel-identical to gold's: {len(identical)}")
    for _, kind, formula in identical[:5]:
        print(f"    {kind}: {formula[:120]}")
    gold_renders = local_match.faithful_renders(golds)
    failed = sum(render.image is None for render in gold_renders)
    recovered = sum(render.recovered is not None for render in gold_renders)
    print(f"  gold: {failed} score 0 (do not compile), {recovered} counted renders made by TeX's error recovery")

    # The comparison alone, on renders already made (cached), one process.
    pairs = [(local_match.ink(images[row]), render) for row, formulas in enumerate(lists)
             for render in local_match.faithful_renders(formulas)]  # fmt: skip
    start = time.perf_counter()
    for image_ink, render in pairs:
        local_match.match_renders(image_ink, [render])
    compare_seconds = time.perf_counter() - start
    print(f"  comparison alone: {len(pairs) / compare_seconds:.0f} verifications/s in one process")
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_compare_chunk, [pairs[:2]] * args.workers))  # start the workers before timing
        start = time.perf_counter()
        chunks = [pairs[i : i + 32] for i in range(0, len(pairs), 32)]
        list(pool.map(_compare_chunk, chunks))
        compare_seconds = time.perf_counter() - start
    print(f"  comparison alone: {len(pairs) / compare_seconds:.0f} verifications/s in {args.workers} processes")

    if not args.no_old:
        start = time.perf_counter()
        old = verification.verify(images, lists, workers=args.workers, local=False)
        _print_verifier(
            "the window comparison (verify(..., local=False))", old, corruptions, time.perf_counter() - start
        )


def _compare_chunk(pairs) -> list[float]:
    from im2latex_hf.metrics import local_match

    return [result.score for image_ink, render in pairs for result in local_match.match_renders(image_ink, [render])]


def _print_verifier(name, scored, corruptions, seconds) -> None:
    gold = [results[0].score for results in scored]
    position = {}
    corrupted = []
    for row, kind, _ in corruptions:
        position[row] = position.get(row, 0) + 1
        corrupted.append((row, kind, scored[row][position[row]].score))
    report(name, len(scored), gold, corrupted, seconds)


def _identical_renders(golds, corruptions):
    from im2latex_hf.metrics import local_match

    gold_renders = local_match.faithful_renders(golds)
    corrupted_renders = local_match.faithful_renders([formula for _, _, formula in corruptions])
    same = []
    for (row, kind, formula), render in zip(corruptions, corrupted_renders):
        a, b = gold_renders[row].image, render.image
        if a is not None and b is not None and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)):
            same.append((row, kind, formula))
    return same


if __name__ == "__main__":
    main()
