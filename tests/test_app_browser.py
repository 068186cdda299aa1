"""The Gradio app in a real browser: headless Chromium driven by Selenium through chromedriver.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium`` Python package;
skipped when any is missing. Set ``IM2LATEX_SCREENSHOT=1`` to also save the page to
docs/app_screenshot.png (the screenshot shown in docs/app.md).
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from im2latex_hf.inference import FormulaReader

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # app.py sits at the repo root, outside the package
app = importlib.import_module("app")

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900",
]  # fmt: skip
EXAMPLE = REPO_ROOT / "examples" / "quadratic_formula.png"
SCREENSHOT = REPO_ROOT / "docs" / "app_screenshot.png"

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not found (apt-get install chromium)"),
    pytest.mark.skipif(CHROMEDRIVER is None, reason="chromedriver not found (apt-get install chromium-driver)"),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The app with the bundled model, served on a free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        demo = app.build_demo(FormulaReader.from_pretrained())
        app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def browser(url: str, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, showing the app."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        driver.get(url)
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "read-button"))
        yield driver
    finally:
        driver.quit()


def text_of(driver: webdriver.Chrome, selector: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, selector).text.strip()


def set_number(driver: webdriver.Chrome, selector: str, value: int) -> None:
    """Type into a slider's number box."""
    box = driver.find_element(By.CSS_SELECTOR, f"{selector} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def test_upload_read_and_see_latex(browser, tmp_path):
    browser.find_element(By.CSS_SELECTOR, "#formula-image input[type=file]").send_keys(str(EXAMPLE))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#formula-image img"))
    set_number(browser, "#num-beams", 1)  # short decoding: the test runs on CPU
    set_number(browser, "#max-new-tokens", 60)
    browser.find_element(By.ID, "read-button").click()

    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: text_of(d, "#latex-output .cm-content"))
    wait.until(lambda d: text_of(d, "#status").startswith("✓"))
    # The preview follows the box: KaTeX's rendering of the LaTeX (or the LaTeX as text when KaTeX cannot
    # parse it, e.g. a cut-off formula), in place of the placeholder.
    wait.until(lambda d: text_of(d, "#latex-preview") and "appears here" not in text_of(d, "#latex-preview"))
    # Next to it, the reading rendered by TeX and its render-match score (unless the reading does not compile).
    if "does not render" not in text_of(browser, "#status"):
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#rendered-reading img"))
        score = browser.find_element(By.CSS_SELECTOR, "#render-match input").get_attribute("value")
        assert 0 <= float(score) <= 1

    assert browser.save_screenshot(str(tmp_path / "app.png"))
    if os.environ.get("IM2LATEX_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))

    # Editing the LaTeX re-renders it in the browser.
    code = browser.find_element(By.CSS_SELECTOR, "#latex-output .cm-content")
    code.click()
    code.send_keys(Keys.CONTROL, "a")
    code.send_keys(r"e^{i\pi} + 1 = 0")
    wait.until(lambda d: "iπ" in text_of(d, "#latex-preview .katex-html").replace("\n", ""))
    assert not browser.find_elements(By.CSS_SELECTOR, "#latex-preview .katex-error")


def test_read_without_image_says_so(browser):
    browser.find_element(By.ID, "read-button").click()
    WebDriverWait(browser, 60).until(lambda d: "No image" in text_of(d, "#status"))
    assert not text_of(browser, "#latex-output .cm-content")
