"""The demo in a real browser (headless Debian chromium driven by Playwright): every tab end to end.

Runs against the ``demo_url`` server of ``conftest.py``; never downloads a browser (it uses
``/usr/bin/chromium`` and skips the module without it or without the ``playwright`` package).
The checks do not depend on the weights (random stand-ins or the trained checkpoints): they look
for *a* label, *an* image, *some* text, never for a particular class or continuation.

Selectors (Gradio 6 DOM):

* ``#<elem_id>`` is the wrapper ``<div>`` (``<button>`` for buttons) of the component created with
  that ``elem_id``; an image output shows an ``<img>`` inside it once it has a value, a textbox
  has a ``<textarea>``, a dataframe a ``<table>``.
* tabs are ``role="tab"`` buttons named by their label.
* an image input has a hidden ``input[type=file]`` inside its wrapper (``set_input_files``).
* ``gr.Examples`` samples are ``<img>`` thumbnails whose ``src`` ends with the file name.
* a ``gr.Label`` with a value shows its top class in ``[data-testid="label-output-value"]``.
* ``gr.Error`` shows a toast, ``[data-testid="toast-body"]``.

Full-page screenshots go to ``$GROOTVL_SCREENSHOTS`` (default: the test's ``tmp_path``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ASSETS = Path(__file__).resolve().parents[2] / "assets"
TIMEOUT_MS = 60_000  # per wait: the CI machine is a busy 2-core CPU

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("the playwright package is not installed (pip install playwright)", allow_module_level=True)
if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the environment
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, demo_url):
    """A fresh page (own context: own Gradio session) on the demo, loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    p = context.new_page()
    p.goto(demo_url)
    p.get_by_role("tab", name="Classify").wait_for()
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("GROOTVL_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()
    expect(page.get_by_role("tab", name=label, exact=True)).to_have_attribute("aria-selected", "true")


def pick_example(page, file_name: str) -> None:
    """Click the visible ``gr.Examples`` thumbnail of ``file_name`` (fills the tab's image input)."""
    page.locator(f'img[src$="/{file_name}"]').locator("visible=true").first.click()


def no_traceback(page) -> None:
    assert "Traceback" not in page.inner_text("body")


def test_classify_tab_with_tree_and_affinity_click(page, shots):
    open_tab(page, "Classify")
    pick_example(page, "test0000-ankle-boot.png")
    expect(page.locator("#classify-input img")).to_be_visible()  # the example is in the input
    page.click("#classify-run")
    # a Label with a value shows its top class in an <h2 data-testid="label-output-value">
    expect(page.locator('#classify-labels [data-testid="label-output-value"]')).to_have_text(re.compile(r"\S"))
    tree = page.locator("#classify-tree img")
    affinity = page.locator("#classify-affinity img")
    expect(tree).to_be_visible()
    expect(affinity).to_be_visible()
    before = affinity.get_attribute("src")
    # the default affinity is from the centre pixel: click near the top-left corner instead
    tree.click(position={"x": 4, "y": 4})
    expect(affinity).not_to_have_attribute("src", before)
    # the scans side by side follow the clicked pixel
    expect(page.locator("#classify-scan-tree img")).to_be_visible()
    expect(page.locator("#classify-scan-raster img")).to_be_visible()
    expect(page.locator("#classify-scan-reading")).to_contain_text("From pixel (0, 0)")
    # the export: a PNG and a JSON file to download
    page.click("#classify-export")
    expect(page.locator('#classify-export-png a[href$="/classify-stage1-block1.png"]').first).to_be_attached()
    expect(page.locator('#classify-export-json a[href$="/classify-stage1-block1.json"]').first).to_be_attached()
    no_traceback(page)
    page.screenshot(path=str(shots / "classify.png"), full_page=True)
    page.locator("#classify-export-row").screenshot(path=str(shots / "export.png"))


def test_segment_tab(page, shots):
    open_tab(page, "Segment")
    pick_example(page, "scene0.png")
    expect(page.locator("#segment-input img")).to_be_visible()
    page.locator("#segment-flip input[type=checkbox]").check()
    page.click("#segment-run")
    expect(page.locator("#segment-mask img")).to_be_visible()
    expect(page.locator("#segment-legend .legend-swatch").first).to_be_attached()
    assert "legend-swatch" in page.inner_html("#segment-legend")
    expect(page.locator("#segment-tree img")).to_be_visible()
    expect(page.locator("body")).to_contain_text("two forward passes")  # the flip option was used
    expect(page.locator("#segment-scan-raster img")).to_be_visible()
    expect(page.locator("#segment-scan-reading")).to_contain_text("From pixel (12, 12)")
    no_traceback(page)
    page.screenshot(path=str(shots / "segment.png"), full_page=True)
    page.locator("#segment-scans").screenshot(path=str(shots / "scans.png"))


def test_receptive_field_tab(page, shots):
    open_tab(page, "Receptive field")
    page.click("#erf-run")
    expect(page.locator("#erf-gallery img").first).to_be_visible()
    expect(page.locator("#erf-info")).to_contain_text("averaged over")
    assert page.locator("#erf-gallery img").count() >= 4  # one picture per stage
    no_traceback(page)
    page.screenshot(path=str(shots / "erf.png"), full_page=True)
    # the bundled segmenter's backbone: the same view
    page.locator("#erf-model input").click()
    page.get_by_role("option", name=re.compile("grootv-nano-scenes")).click()
    page.click("#erf-run")
    expect(page.locator("#erf-info")).to_contain_text("grootv-nano-scenes")
    no_traceback(page)


def test_generate_tab(page, shots):
    open_tab(page, "Generate")
    page.fill("#generate-prompt textarea", "The meaning of life")
    page.click("#generate-run")
    expect(page.locator("#generate-stats")).to_contain_text("tokens/s")
    expect(page.locator("#generate-tree img")).to_be_visible()
    expect(page.locator("#generate-output textarea")).not_to_have_value("")
    # the last update's stats say "tokens/s (decoding)": the stream is over (whole text in the screenshot)
    expect(page.locator("#generate-stats")).to_contain_text("(decoding)")
    no_traceback(page)
    page.screenshot(path=str(shots / "generate.png"), full_page=True)


def test_tree_on_pixels_tab(page, shots):
    open_tab(page, "Tree on pixels")
    page.set_input_files("#pixels-input input[type=file]", str(ASSETS / "photos" / "chelsea.jpg"))
    expect(page.locator("#pixels-input img")).to_be_visible()  # uploaded
    page.click("#pixels-run")
    expect(page.locator("#pixels-tree img")).to_be_visible()
    no_traceback(page)
    page.screenshot(path=str(shots / "pixels.png"), full_page=True)


def test_zoo_tab(page, shots):
    open_tab(page, "Zoo")
    expect(page.locator("#zoo-table")).to_contain_text("grootv-nano-fmnist")
    page.screenshot(path=str(shots / "zoo.png"), full_page=True)


def test_bad_input_shows_a_message_not_a_traceback(page):
    open_tab(page, "Generate")
    expect(page.locator("#generate-prompt textarea")).to_have_value("")
    page.click("#generate-run")
    toast = page.locator('[data-testid="toast-body"]')
    expect(toast.first).to_contain_text("empty")
    no_traceback(page)
