"""Render LaTeX formulas to images with a real TeX engine (``latex`` + ``dvipng``, or ``pdflatex`` + Ghostscript).

Many formulas go into one LaTeX document, each in its own ``preview`` environment
(``\\usepackage[active]{preview}``), so one ``latex`` run and one ``dvipng`` call render a whole
batch, one page per formula. Every formula is framed by ``\\message`` markers that carry
the preview package's page counter; parsing them from TeX's terminal output tells which page
belongs to which formula and which formula raised which error. A failed formula gets TeX's
error message and its neighbours keep their images. The markers also carry TeX's group and
conditional nesting: a formula whose error left them as it found them, on one page of its own,
disturbed nothing, and the formulas after it stand; after any other error they are rendered again.

The ``im2latex`` look is im2latex-100k's own recipe (see `faithful`): the same batches and markers,
but ``pdflatex`` and one Ghostscript call per batch instead of ``latex`` and ``dvipng``, and TeX's
error recovery is part of the look (the dataset's images were made with it): a formula that raises
a TeX error is rendered again alone, as the dataset rendered each formula, and keeps the page TeX
recovered to (its first error in ``RenderResult.recovered``). It fails only when TeX makes no page,
more than one, no ink, or stops.

Formulas are untrusted input, so TeX runs locked down: no shell escape, kpathsea's paranoid
``openin_any``/``openout_any`` (no reading or writing outside the run's fresh temp folder, no
absolute or parent paths), no font generation, no Ghostscript in ``dvipng`` (and ``-dSAFER`` for the
``im2latex`` look's own Ghostscript), memory and file size limits, and a wall-clock limit per run that
kills the whole process group. A formula that hangs TeX is found from the markers (or by bisection)
and fails alone. On top of that, formulas naming file, shell or catcode primitives are rejected up
front (see ``FORBIDDEN_COMMANDS``).
Formulas of one call share a TeX run, so a formula that deliberately redefines things globally
(``\\gdef``) can spoil its batch's other images; it cannot escape the temp folder.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from PIL import Image, ImageOps

from . import faithful
from .looks import FAITHFUL_LOOK, FAST_LOOK, LOOKS, im2latex_look

FONTS: dict[str, str] = {
    "cm": "",
    "lmodern": "\\usepackage{lmodern}\n\\usepackage[T1]{fontenc}",
    "times": "\\usepackage{mathptmx}",
    "palatino": "\\usepackage{mathpazo}",
    "helvetica": "\\usepackage{helvet}\n\\renewcommand{\\familydefault}{\\sfdefault}\n\\usepackage{sfmath}",
}
"""Font name -> preamble lines selecting the text and math fonts."""

FONT_SIZES = (8, 9, 10, 11, 12, 14, 17, 20)
"""Point sizes supported: ``article``'s 10-12 and ``extarticle``'s others."""

DEFAULT_TIMEOUT = 10.0
DEFAULT_BATCH_SIZE = 128

FORBIDDEN_COMMANDS = tuple(
    """write immediate openout openin read readline input include InputIfFileExists
    special csname catcode scantokens endinput""".split()
)
"""Control sequences rejected before TeX sees the formula (defence in depth; TeX's own
restrictions are the real guard). ``^^`` escapes are rejected too, since they can spell any name, and
so are pdfTeX's own primitives (``\\pdfliteral``, ``\\pdffiledump``, ...) and ``\\begin{input}``-style
environments named after a rejected command (``\\begin`` calls ``\\csname``)."""

_FORBIDDEN_NAMES = "|".join(FORBIDDEN_COMMANDS)
_FORBIDDEN_RE = re.compile(
    rf"\\(?:{_FORBIDDEN_NAMES})(?![a-zA-Z])|\^\^|\\pdf[a-zA-Z]"
    rf"|\\(?:begin|end)\s*\{{\s*(?:pdf[a-zA-Z]*|{_FORBIDDEN_NAMES})\s*\}}"
)

_PACKAGES = r"\usepackage{amsmath,amssymb,amsfonts}"
_MARKERS = r"""\makeatletter
% Markers around each formula: its position in the batch, the page counter and TeX's group and conditional
% nesting (see _parse_spans).
\newcommand\imstate{\the\pr@snippet\space\the\currentgrouplevel\space\the\currentiflevel}
\newcommand\imbegin[1]{\message{<<im2latex:begin #1 \imstate>>}}
\newcommand\imend[1]{\message{<<im2latex:end #1 \imstate>>}}
\makeatother
"""
# No "tightpage": dvipng would clip ink outside the formula's box (\smash, trailing negative space);
# "dvipng -T tight" finds the ink instead.
_SETUP = (
    "\\usepackage[active]{preview}\n"
    + _MARKERS
    + r"""\makeatletter
% im2latex-100k writes lengths with spaces between tokens ("\hspace { 1 c m }"): drop them.
\let\im@hspace\hspace
\let\im@vspace\vspace
\renewcommand\hspace{\@ifstar{\im@unspaced{\im@hspace*}}{\im@unspaced\im@hspace}}
\renewcommand\vspace{\@ifstar{\im@unspaced{\im@vspace*}}{\im@unspaced\im@vspace}}
\newcommand\im@unspaced[2]{\edef\im@length{\zap@space#2 \@empty}#1{\im@length}}
\makeatother
\begin{document}
"""
)
# The formula sits on lines of its own, so a "%" in it comments out nothing of the frame.
_FORMULA = (
    "\\imbegin{{{position}}}\\begin{{preview}}\\hbox{{${style}\n{formula}\n$}}\\end{{preview}}\\imend{{{position}}}\n"
)

_EVENT_RE = re.compile(
    r"<<im2latex:(?P<kind>begin|end) (?P<position>\d+) (?P<page>\d+) (?P<nesting>\d+ \d+)>>"
    r"|^! (?P<error>.*)$"
    r"|^l\.\d+ (?P<context>.*)$",
    re.MULTILINE,
)

_TEX_ENV = {
    "shell_escape": "f",
    "openin_any": "p",
    "openout_any": "p",
    "MKTEXPK": "0",
    "MKTEXTFM": "0",
    "MKTEXMF": "0",
    "max_print_line": "100000",  # one message a line: no wrapped markers
    "error_line": "254",
    "half_error_line": "200",
}
_MEMORY_LIMIT = 512 << 20  # bytes of address space per TeX or dvipng process
_FILE_SIZE_LIMIT = 256 << 20  # bytes per file written


@dataclass
class RenderResult:
    """One formula's outcome: a grayscale image cropped to the ink, or TeX's error.

    ``recovered``: in the ``im2latex`` look, TeX's first error when the image is the page TeX's error
    recovery made (as im2latex-100k's own images were made); None otherwise.
    """

    index: int
    formula: str
    image: Image.Image | None
    error: str | None
    recovered: str | None = None


@dataclass
class RenderSummary:
    """What ``render_file`` did."""

    total: int
    rendered: int
    output_dir: Path
    seconds: float

    @property
    def failed(self) -> int:
        return self.total - self.rendered

    def __str__(self) -> str:
        return (
            f"rendered {self.rendered} of {self.total} formulas "
            f"({self.failed} failed, see {self.output_dir / 'failures.tsv'}) in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Options:
    font: str
    font_size: int
    dpi: int
    display: bool
    timeout: float
    look: str = "plain"

    def preamble(self) -> str:
        document_class = "article" if self.font_size in (10, 11, 12) else "extarticle"
        return "\n".join(
            (f"\\documentclass[{self.font_size}pt]{{{document_class}}}", _PACKAGES, FONTS[self.font], _SETUP)
        )

    def document(self, formulas: Sequence[str]) -> str:
        """The LaTeX document of a batch: one page a formula, each between markers."""
        if self.look == FAITHFUL_LOOK:
            return faithful.document(formulas, _MARKERS + "\\begin{document}\n", FONTS[self.font])
        style = "\\displaystyle" if self.display else "\\textstyle"
        body = "".join(_FORMULA.format(position=p, style=style, formula=f) for p, f in enumerate(formulas))
        return self.preamble() + body + "\\end{document}\n"


@dataclass(frozen=True)
class _Engine:
    """How a look's batch becomes pages: its TeX program, then its rasterizer (pages 1..N → ``page<N>.png``)."""

    tex: str
    rasterize: Callable[[Path, int, _Options], str | None]  # returns an error message, or None
    recovers: bool = False  # TeX's error recovery is part of the look (see the module's docstring)


@dataclass
class _Span:
    """What TeX's output says about one formula of a batch."""

    first_page: int | None = None
    end_page: int | None = None
    error: str | None = None
    begin_nesting: str | None = None  # TeX's group and conditional nesting at the begin marker
    end_nesting: str | None = None  # ... and at the end marker

    @property
    def one_page(self) -> bool:
        """Finished on exactly one page (errors or not)."""
        return self.first_page is not None and self.end_page is not None and self.end_page - self.first_page == 1

    @property
    def contained(self) -> bool:
        """Finished on exactly one page, leaving TeX's nesting as it found it: whatever error it raised, the
        formulas after it start where they would have without it."""
        return self.one_page and self.end_nesting == self.begin_nesting


@dataclass
class _Run:
    """The outcome of one subprocess: ``returncode`` is None when it was killed on timeout."""

    returncode: int | None
    output: str


def render_formulas(
    formulas: Sequence[str],
    *,
    font: str = "cm",
    font_size: int = 12,
    dpi: int = 200,
    display: bool = True,
    look: str = "plain",
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[RenderResult]:
    """Render formulas to images; result ``i`` is formula ``i``'s (see ``iter_render``)."""
    return list(
        iter_render(
            formulas,
            font=font,
            font_size=font_size,
            dpi=dpi,
            display=display,
            look=look,
            timeout=timeout,
            workers=workers,
            batch_size=batch_size,
        )
    )


def iter_render(
    formulas: Iterable[str],
    *,
    font: str = "cm",
    font_size: int = 12,
    dpi: int = 200,
    display: bool = True,
    look: str = "plain",
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[RenderResult]:
    """Render formulas batch by batch, yielding results in input order as batches finish.

    ``font`` is a key of ``FONTS``, ``font_size`` one of ``FONT_SIZES`` (points), ``dpi`` the image
    resolution, ``display`` chooses ``\\displaystyle`` over ``\\textstyle``, ``look`` is one of
    ``looks.LOOKS``: ``"im2latex"`` is im2latex-100k's own recipe (pdflatex + Ghostscript, see
    `faithful`), which fixes font size, resolution and style (``font_size``, ``dpi`` and ``display`` do
    not apply; ``font`` does); ``"im2latex-fast"`` its dvipng approximation, with ``dpi`` the
    resolution before the ×2 downsampling, calibrated as ``looks.IM2LATEX_DPI``. ``timeout`` limits
    each TeX, dvipng or Ghostscript run in seconds; ``workers`` batches of ``batch_size`` formulas
    render at once, each in its own processes. The input is read lazily.
    """
    if font not in FONTS:
        raise ValueError(f"unknown font {font!r}; choose one of {', '.join(FONTS)}")
    if font_size not in FONT_SIZES:
        raise ValueError(f"unsupported font size {font_size}; choose one of {FONT_SIZES}")
    if look not in LOOKS:
        raise ValueError(f"unknown look {look!r}; choose one of {', '.join(LOOKS)}")
    if dpi <= 0 or timeout <= 0 or workers < 1 or batch_size < 1:
        raise ValueError("dpi, timeout, workers and batch_size must be positive")
    return _stream(enumerate(formulas), _Options(font, font_size, dpi, display, timeout, look), workers, batch_size)


def _stream(
    numbered: Iterator[tuple[int, str]], options: _Options, workers: int, batch_size: int
) -> Iterator[RenderResult]:
    """Render batches on ``workers`` threads (each waiting on its TeX processes), yielding in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: deque[Future[list[RenderResult]]] = deque()
        while batch := list(islice(numbered, batch_size)):
            in_flight.append(pool.submit(_render_batch, batch, options))
            if len(in_flight) > 2 * workers:  # bounded read-ahead keeps memory flat on big corpora
                yield from in_flight.popleft().result()
        while in_flight:
            yield from in_flight.popleft().result()


def render_file(
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    font: str = "cm",
    font_size: int = 12,
    dpi: int = 200,
    display: bool = True,
    look: str = "plain",
    workers: int = 1,
) -> RenderSummary:
    """Render a file of one formula a line into ``output_dir``.

    Writes ``<0-based line number>.png`` for each rendered line and ``failures.tsv``
    (line number, tab, error) for the others; empty lines are failures too.
    """
    start = time.perf_counter()
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    total = rendered = 0
    with (
        open(input_path, encoding="utf-8", errors="replace") as lines,
        open(output / "failures.tsv", "w", encoding="utf-8") as failures,
    ):
        formulas = (line.rstrip("\n") for line in lines)
        for result in iter_render(
            formulas, font=font, font_size=font_size, dpi=dpi, display=display, look=look, workers=workers
        ):
            total += 1
            if result.image is None:
                failures.write(f"{result.index}\t{result.error}\n")
            else:
                result.image.save(output / f"{result.index}.png")
                rendered += 1
    return RenderSummary(total, rendered, output, time.perf_counter() - start)


def _reject_reason(formula: str) -> str | None:
    """Why a formula is not worth a TeX run (empty, or naming a forbidden command)."""
    if not formula.strip():
        return "empty formula"
    if match := _FORBIDDEN_RE.search(formula):
        return f"forbidden command {match.group()} (file, shell and catcode primitives are not allowed)"
    return None


def _render_batch(batch: list[tuple[int, str]], options: _Options) -> list[RenderResult]:
    """Render (index, formula) pairs; every pair gets a result, in the batch's order."""
    results = []
    to_render = []
    for index, formula in batch:
        if reason := _reject_reason(formula):
            results.append(RenderResult(index, formula, None, reason))
        else:
            to_render.append((index, formula))
    if to_render:
        results += _render_isolated(to_render, options)
    return sorted(results, key=lambda result: result.index)


def _render_isolated(batch: list[tuple[int, str]], options: _Options) -> list[RenderResult]:
    """Render a batch until every formula is decided, bisecting a part when a run decides nothing."""
    results: list[RenderResult] = []
    parts = [batch]
    while parts:
        part = parts.pop()
        with tempfile.TemporaryDirectory(prefix="im2latex-render-") as folder:
            decided, undecided, alone = _render_once(part, Path(folder), options)
        results += decided
        parts += [[pair] for pair in alone]
        if not decided and not alone:  # nothing learnt (a run is never undecided about a single formula): bisect
            middle = len(undecided) // 2
            parts += [undecided[:middle], undecided[middle:]]
        elif undecided:
            parts.append(undecided)
    return results


def _render_once(
    batch: list[tuple[int, str]], folder: Path, options: _Options
) -> tuple[list[RenderResult], list[tuple[int, str]], list[tuple[int, str]]]:
    """One TeX + rasterizer run over a batch: (decided results, formulas to render again, ones to render alone).

    The formulas before the first one that was not contained (see `_Span.contained`) stand: each keeps its
    page, or fails with TeX's first error if it raised one, except in a look whose TeX recovery is part of it
    (``im2latex``), where it keeps the page TeX recovered to. The first one not contained keeps its page if
    it made one without error; else it fails with TeX's first error (or why it did not make one page), and
    so does the formula TeX hung on if the run timed out. The formulas after it are rendered again, since
    TeX's state may have spoilt their pages. In the ``im2latex`` look a failing first one is rendered again
    alone instead (unless TeX hung on it), and alone it keeps the page TeX made if that is one page. Decides
    at least one formula, or sets one aside to render alone, unless the run timed out after its last
    formula or the rasterizer failed.
    """
    engine = _ENGINES.get(options.look, _DVIPNG)
    (folder / "doc.tex").write_text(options.document([formula for _, formula in batch]), encoding="utf-8")
    latex = _run_tex([engine.tex, "-no-shell-escape", "-interaction=nonstopmode", "doc.tex"], folder, options.timeout)
    killed = latex.returncode is None
    spans = _parse_spans(latex.output, len(batch))
    if engine.recovers and len(batch) == 1 and not killed and spans[0].one_page:
        standing, first_bad = 1, None  # alone, the page TeX recovered to is the look's image
    else:
        standing = next((p for p, span in enumerate(spans) if not span.contained), len(batch))
        first_bad = standing if standing < len(batch) else None
        if first_bad is not None and spans[first_bad].one_page and spans[first_bad].error is None:
            standing, first_bad = standing + 1, None  # no error, nesting changed: its page stands, the next ones not
    failed = {first_bad} if first_bad is not None else set()
    if not engine.recovers:  # contained errors fail alone
        failed.update(p for p in range(standing) if spans[p].error is not None)
    hung: list[int] = []
    if killed:
        hung = [p for p, span in enumerate(spans) if span.first_page is not None and span.end_page is None]
        failed.update(hung[-1:] or ([0] if len(batch) == 1 else []))
        if not failed:
            return [], batch, []
    alone = []
    if engine.recovers and len(batch) > 1 and first_bad in failed and first_bad not in hung[-1:]:
        failed.discard(first_bad)  # render it again alone: its page is what TeX recovers to there
        alone = [batch[first_bad]]
    drawn = 0 if killed else standing  # pages 1..drawn are the first formulas'; a killed run leaves none usable
    if all(p in failed for p in range(drawn)):
        drawn = 0  # no page worth rasterizing
    decided = [
        RenderResult(*batch[p], None, _failure_reason(spans[p], killed, options.timeout)) for p in sorted(failed)
    ]
    set_aside = failed | ({first_bad} if alone else set())
    undecided = [pair for p, pair in enumerate(batch[drawn:], start=drawn) if p not in set_aside]
    # Pages are numbered from 1 in formula order, as long as nothing went wrong.
    raster_error = engine.rasterize(folder, drawn, options)
    if raster_error is None:
        for p in range(drawn):
            if p not in failed:
                image, error = _load_cropped(folder / f"page{p + 1}.png", options.look)
                recovered = spans[p].error if engine.recovers and image is not None else None
                decided.append(RenderResult(*batch[p], image, error, recovered))
    elif len(batch) == 1:
        decided.append(RenderResult(*batch[0], None, raster_error))
    else:  # render again: bisection isolates the page that the rasterizer cannot render
        undecided += [pair for p, pair in enumerate(batch[:drawn]) if p not in failed]
    return decided, undecided, alone


def _parse_spans(output: str, count: int) -> list[_Span]:
    """Read the markers and errors of TeX's terminal output into one span per formula."""
    spans = [_Span() for _ in range(count)]
    current: _Span | None = None
    awaiting_context = False
    for event in _EVENT_RE.finditer(output):
        if event["kind"] and int(event["position"]) >= count:
            continue  # not our marker: a formula's own text quoted in an error context
        if event["kind"] == "begin":
            current = spans[int(event["position"])]
            current.first_page, current.begin_nesting = int(event["page"]), event["nesting"]
        elif event["kind"] == "end":
            span = spans[int(event["position"])]
            span.end_page, span.end_nesting = int(event["page"]), event["nesting"]
        elif event["error"] is not None:
            if current is None:
                raise RuntimeError(f"LaTeX failed before the first formula (check the preamble): {output[-2000:]}")
            if current.error is None:
                current.error = f"! {event['error'].strip()}"
                awaiting_context = True
        elif awaiting_context:  # TeX shows where it stopped reading: "l.12 \foo"
            current.error += f" (at: {event['context'].strip()[-60:]})"
            awaiting_context = False
    return spans


def _failure_reason(span: _Span, killed: bool, timeout: float) -> str:
    """Why a formula failed: TeX's first error, else why it did not make exactly one page."""
    if span.error is not None:
        return span.error
    if killed and span.end_page is None:
        return f"LaTeX timed out after {timeout:g} s"
    if span.first_page is None or span.end_page is None:
        return "LaTeX stopped before the formula's end"
    return f"the formula made {span.end_page - span.first_page} pages instead of 1"


def _dvipng(folder: Path, pages: int, options: _Options) -> str | None:
    """Render the first ``pages`` DVI pages to ``page<N>.png``; returns an error message if dvipng failed."""
    if not pages:
        return None
    command = ["dvipng", *"-q --nogs -T tight -z 1 -o page%d.png".split(), "-D", str(options.dpi), "-l", str(pages)]
    run = _run_tex([*command, "doc.dvi"], folder, options.timeout)
    if run.returncode is None:
        return f"dvipng timed out after {options.timeout:g} s"
    if run.returncode != 0 or not all((folder / f"page{page}.png").is_file() for page in range(1, pages + 1)):
        detail = " ".join(line for line in run.output.splitlines() if not line.startswith("This is dvipng"))
        return f"dvipng failed (exit status {run.returncode}): {detail[-300:]}"
    return None


def _ghostscript(folder: Path, pages: int, options: _Options) -> str | None:
    """Rasterize the first ``pages`` PDF pages as the ``im2latex`` look does; returns an error message if it failed."""
    if not pages:
        return None
    run = _run_tex(faithful.ghostscript_command(pages), folder, options.timeout)
    if run.returncode is None:
        return f"Ghostscript timed out after {options.timeout:g} s"
    made = [(folder / f"page{page}.png").is_file() for page in range(1, pages + 2)]
    # A page Ghostscript cannot draw is left out, and the later pages' numbers shift: any error fails the run.
    if run.returncode != 0 or "Error" in run.output or not all(made[:-1]) or made[-1]:
        return f"Ghostscript failed (exit status {run.returncode}): {' '.join(run.output.split())[-300:]}"
    return None


_DVIPNG = _Engine("latex", _dvipng)
_ENGINES = {FAITHFUL_LOOK: _Engine("pdflatex", _ghostscript, recovers=True)}
"""Looks not named here are drawn by ``latex`` + ``dvipng``."""


def _load_cropped(path: Path, look: str) -> tuple[Image.Image | None, str | None]:
    """Load a page as 8-bit grayscale cropped to its ink, in ``look``: (image, None) or (None, error)."""
    try:
        with Image.open(path) as page:
            image = page.convert("L")
    except (OSError, Image.DecompressionBombError) as error:
        return None, f"unreadable image: {error}"
    bbox = ImageOps.invert(image).getbbox()
    if bbox is None:
        return None, "the formula rendered no ink"
    image = image.crop(bbox)
    if look == FAITHFUL_LOOK:
        return im2latex_look(image, stroke=0), None  # every pixel not white is ink: no widening
    return (im2latex_look(image) if look == FAST_LOOK else image), None


def _run_tex(command: list[str], folder: Path, timeout: float) -> _Run:
    """Run a TeX program locked into ``folder``; kill its whole process group after ``timeout`` s."""
    env = {**os.environ, **_TEX_ENV, "TEXMFOUTPUT": str(folder)}
    with open(folder / "output.txt", "w+b") as output:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for limit, value in ((resource.RLIMIT_AS, _MEMORY_LIMIT), (resource.RLIMIT_FSIZE, _FILE_SIZE_LIMIT)):
            try:
                resource.prlimit(process.pid, limit, (value, value))
            except ProcessLookupError:  # already finished
                pass
        try:
            returncode: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # the group ended meanwhile
                pass
            process.wait()
            returncode = None
        output.seek(0)
        return _Run(returncode, output.read().decode("utf-8", errors="replace"))
