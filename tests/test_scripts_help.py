"""Every script in scripts/ answers `--help` (exit status 0) on a fresh clone: no data, no runs, no built models."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO_ROOT

SCRIPTS_DIR = REPO_ROOT / "scripts"

# One fresh interpreter runs each script as `python scripts/NAME.py --help` does (run as __main__, the scripts'
# folder first on sys.path), so torch and transformers are imported once, not once a script.
HELP_OF_EACH = """
import contextlib, io, json, runpy, sys, traceback
scripts = json.loads(sys.argv[1])
sys.path.insert(0, scripts[0].rsplit("/", 1)[0])
results = {}
for script in scripts:
    sys.argv = [script, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        status, out = 1, io.StringIO(traceback.format_exc())
    results[script.rsplit("/", 1)[1]] = {"status": status, "output": out.getvalue()[:1500]}
print(json.dumps(results))
"""


def test_every_script_answers_help_from_an_empty_folder(tmp_path):
    """Run from an empty folder, so that nothing a script finds (data/, runs/, configs/) comes from this checkout."""
    scripts = sorted(str(path) for path in SCRIPTS_DIR.glob("*.py"))
    assert len(scripts) > 10
    result = subprocess.run(
        [sys.executable, "-c", HELP_OF_EACH, json.dumps(scripts)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.splitlines()[-1])
    assert sorted(results) == sorted(path.rsplit("/", 1)[1] for path in scripts)
    failed = {name: found for name, found in results.items() if found["status"] != 0 or "usage:" not in found["output"]}
    assert not failed, "\n".join(
        f"{name} (exit status {found['status']}): {found['output']}" for name, found in failed.items()
    )


def test_scripts_evaluate_does_not_hide_the_evaluate_package():
    """`python scripts/evaluate.py` puts scripts/ first on sys.path; the metrics' `import evaluate` must still find
    the Hugging Face package, not this script."""
    script = SCRIPTS_DIR / "evaluate.py"
    code = (
        f"import runpy, sys; sys.path.insert(0, {str(SCRIPTS_DIR)!r}); "
        f"runpy.run_path({str(script)!r}, run_name='not_main'); "
        "import evaluate; assert hasattr(evaluate, 'load'), evaluate.__file__"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_benchmark_training_says_which_command_builds_its_missing_data(tmp_path):
    (tmp_path / "train.yaml").write_text("train_data:\n  - {path: data/im2latex-100k, split: train}\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPTS_DIR / "benchmark_training.py"), "--config", "train.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "data/im2latex-100k (from train.yaml) not found; build it first: python scripts/build_dataset.py" in (
        result.stderr
    )
