"""The built site in headless Chromium: loads from file:// and over HTTP without console errors,
sorts, filters, plots one point per model with the frontier marked, and its links lead where they say.

Needs Debian's chromium + chromium-driver (apt-get install -y chromium chromium-driver) and selenium;
the driver path is set explicitly, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        "Chromium not installed (apt-get install -y chromium chromium-driver); the browser checks need it",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402
from test_site import QUOTES, XSS, make_digits_store  # noqa: E402 - tests/ is on sys.path, as for result_fixtures

from harness.site import build_site  # noqa: E402
from harness.sitegen.charts import pareto_frontier  # noqa: E402
from harness.sitegen.slugs import slugify_all  # noqa: E402

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)


def _driver(profile: Path, javascript: bool = True) -> Any:
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-site")
    store = make_digits_store(root / "harness.db")
    build_site(store.path, root / "site")
    store.close()
    return root / "site"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    drv = _driver(profile)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _pages(site: Path) -> list[str]:
    return ["index.html", *(p.relative_to(site).as_posix() for p in sorted(site.glob("*/*.html")))]


def test_every_page_loads_from_file_without_console_errors(driver: Any, site: Path) -> None:
    driver.get_log("browser")  # drop anything logged before
    for rel in _pages(site):
        driver.get((site / rel).as_uri())
        assert driver.find_element(By.TAG_NAME, "h1").text, rel
        assert driver.execute_script("return document.querySelectorAll('th[data-sort] button').length") > 0, (
            rel
        )
        assert _console_errors(driver) == [], rel


def test_every_page_loads_over_http_without_console_errors(driver: Any, site: Path, served: str) -> None:
    driver.get_log("browser")
    for rel in _pages(site):
        driver.get(f"{served}/{rel}")
        assert driver.find_element(By.TAG_NAME, "h1").text, rel
        assert _console_errors(driver) == [], rel
    with urllib.request.urlopen(
        f"{served}/results.csv"
    ) as response:  # browsers download it rather than show it
        assert b"macro_f1" in response.readline()


def _column(table: Any, index: int) -> list[str]:
    return [
        row.find_elements(By.CSS_SELECTOR, "td, th")[index].text
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def test_clicking_a_header_sorts_the_rows(driver: Any, site: Path) -> None:
    driver.get((site / "tasks" / "digits.html").as_uri())
    table = driver.find_element(By.CSS_SELECTOR, "section[data-protocol='full-train'] table.results")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    p50 = next(i for i, h in enumerate(headers) if h.startswith("p50"))
    before = _column(table, p50)
    table.find_elements(By.CSS_SELECTOR, "thead th")[p50].find_element(By.TAG_NAME, "button").click()
    after = _column(table, p50)
    numbers = [float(v) for v in after if v != "—"]
    assert numbers == sorted(numbers) and after != before
    assert after[-1] == "—"  # the failed run has no timing: missing values sort last
    table.find_elements(By.CSS_SELECTOR, "thead th")[p50].find_element(By.TAG_NAME, "button").click()
    again = [float(v) for v in _column(table, p50) if v != "—"]
    assert again == sorted(numbers, reverse=True)
    assert table.find_elements(By.CSS_SELECTOR, "thead th")[p50].get_attribute("aria-sort") == "descending"


def test_filters_hide_rows_and_sections(driver: Any, site: Path) -> None:
    driver.get((site / "index.html").as_uri())
    rows = driver.find_elements(By.CSS_SELECTOR, "table.board tbody tr")
    assert all(r.is_displayed() for r in rows)
    driver.find_element(By.CSS_SELECTOR, "#filters-index input[data-key='name']").send_keys("logreg")
    visible = [r for r in rows if r.is_displayed()]
    assert 0 < len(visible) < len(rows)
    assert all("logreg" in r.find_element(By.CSS_SELECTOR, "th").text for r in visible)
    assert "showing" in driver.find_element(By.CSS_SELECTOR, "#filters-index .filter-count").text
    driver.find_element(By.CSS_SELECTOR, "#filters-index input[data-key='name']").clear()
    Select(
        driver.find_element(By.CSS_SELECTOR, "#filters-index select[data-key='protocol']")
    ).select_by_value("probe-20shot")
    sections = {
        s.get_attribute("data-protocol"): s.is_displayed()
        for s in driver.find_elements(By.CSS_SELECTOR, "section.filter-section")
    }
    assert sections == {"full-train": False, "probe-20shot": True}
    Select(driver.find_element(By.CSS_SELECTOR, "#filters-index select[data-key='size']")).select_by_value(
        "lt10m"
    )
    shown = [
        r
        for r in driver.find_elements(By.CSS_SELECTOR, "section[data-protocol='probe-20shot'] tbody tr")
        if r.is_displayed()
    ]
    assert {r.find_element(By.CSS_SELECTOR, "th a").text for r in shown} == {
        "logreg",
        "naive-bayes",
        "tree-d4",
        XSS,
        QUOTES,
    }


def test_pareto_plot_has_one_point_per_model_and_marks_the_frontier(driver: Any, site: Path) -> None:
    driver.get((site / "tasks" / "digits.html").as_uri())
    section = driver.find_element(By.CSS_SELECTOR, "section[data-protocol='full-train']")
    table = section.find_element(By.CSS_SELECTOR, "table.results")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    acc, p50, hw = (
        next(i for i, h in enumerate(headers) if h.startswith(k)) for k in ("Accuracy", "p50", "Hardware")
    )
    timed = {}
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = row.find_elements(By.CSS_SELECTOR, "td, th")
        if cells[hw].text == "cpu0aaaa":
            timed[cells[1].text] = (float(cells[p50].text), float(cells[acc].text))
    plot = section.find_element(By.CSS_SELECTOR, "svg.pareto-plot[data-hardware='cpu0aaaaaaaa']")
    points = plot.find_elements(By.CSS_SELECTOR, "g.pt")
    names = [p.get_attribute("data-model") for p in points]
    assert sorted(names) == sorted(timed) and len(names) == len(set(names))
    frontier = {p.get_attribute("data-model") for p in plot.find_elements(By.CSS_SELECTOR, "g.pt.frontier")}
    models = list(timed)
    assert frontier == {models[i] for i in pareto_frontier([timed[m] for m in models])}
    assert all(
        p.find_elements(By.TAG_NAME, "path") for p in plot.find_elements(By.CSS_SELECTOR, "g.pt.frontier")
    )
    assert "Pareto frontier" in section.find_element(By.CSS_SELECTOR, "figcaption").text
    assert len(section.find_elements(By.CSS_SELECTOR, "svg.pareto-plot")) == 2  # one per hardware id


def test_links_lead_from_index_to_task_to_model(driver: Any, site: Path, served: str) -> None:
    for start in ((site / "index.html").as_uri(), f"{served}/index.html"):
        driver.get(start)
        driver.find_element(
            By.CSS_SELECTOR, "section[data-protocol='full-train'] thead th.task-col a[href$='digits.html']"
        ).click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "digits"
        driver.find_element(By.LINK_TEXT, "logreg").click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "logreg"
        assert driver.current_url.endswith("/models/logreg.html")
        driver.find_element(By.LINK_TEXT, XSS).click()  # the task named like a script tag, as a link text
        assert driver.find_element(By.TAG_NAME, "h1").text == XSS
        assert driver.current_url.endswith(f"/tasks/{slugify_all(['digits', XSS])[XSS]}.html")
        driver.find_element(By.LINK_TEXT, "Leaderboard").click()
        assert driver.find_element(By.TAG_NAME, "h1").text == "Leaderboard"


def test_pages_read_fine_with_javascript_off(site: Path, tmp_path: Path) -> None:
    drv = _driver(tmp_path / "profile", javascript=False)
    try:
        drv.get((site / "index.html").as_uri())
        assert not drv.find_element(
            By.ID, "filters-index"
        ).is_displayed()  # controls that need JS stay hidden
        rows = drv.find_elements(By.CSS_SELECTOR, "table.board tbody tr")
        assert rows and all(r.is_displayed() for r in rows)
        assert not drv.find_elements(By.CSS_SELECTOR, "th[data-sort] button")
    finally:
        drv.quit()
