"""The built site in headless Chromium: loads from file:// and over HTTP without console errors,
sorts, filters, plots one point per model with the frontier marked, and its links lead where they say.

Needs Debian's chromium + chromium-driver (apt-get install -y chromium chromium-driver) and selenium;
the driver path is set explicitly, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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

from harness.sitegen import build_site  # noqa: E402
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
    """The site as `harness serve` serves it: a real subprocess, stopped with Ctrl-C (SIGINT)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--site", str(site), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = ""
    for line in proc.stdout:
        if "Serving" in line:
            break
    url = next((w for w in line.split() if w.startswith("http://127.0.0.1:")), None)
    assert url, f"harness serve printed no URL: {line!r}"
    yield url.rstrip("/")
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and "Stopped." in rest


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
    # the plot shows the task's main metric (Macro-F1 for the default metric set); cells are "value [CI]"
    acc, p50, hw = (
        next(i for i, h in enumerate(headers) if h.startswith(k)) for k in ("Macro-F1", "p50", "Hardware")
    )
    timed = {}
    for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        cells = row.find_elements(By.CSS_SELECTOR, "td, th")
        if cells[hw].text == "cpu0aaaa":
            timed[cells[1].text] = (float(cells[p50].text), float(cells[acc].text.split()[0]))
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


# ---- the pick form agrees with `harness pick --json` ---------------------------------------------------


@pytest.fixture(scope="module")
def pick_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real sklearn models on real digits (result_fixtures), fixed latencies on two hardware ids and
    two protocols, so constraints, hardware and protocol all change the answer."""
    from result_fixtures import HW_B, fixed_timing, make_record, train, write_store, zoo_model
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("pick-site")
    latency = {"svm-rbf": 2.0, "knn-3": 1.2, "logreg": 0.15, "pca16-logreg": 0.2, "gaussian-nb": 0.1, "tree-depth4": 0.05}
    records = []
    for name, p50 in latency.items():
        model = zoo_model(name)
        records.append(make_record(model, timing=fixed_timing(p50, params=model.params)))
    for name, per_class, p50 in (("logreg-20shot", 20, 0.12), ("logreg-5shot", 5, 0.11)):
        model = train(name, LogisticRegression(max_iter=2000), per_class=per_class)
        records.append(make_record(model, protocol="few-shot", timing=fixed_timing(p50, hardware=HW_B, params=model.params)))
    db = write_store(root / "pick.db", records)
    build_site(db, root / "site")
    return db, root / "site"


PICK_CASES = [
    {},
    {"latency": "0.16"},
    {"latency": "1.5", "at": "p95"},
    {"params": "0.001"},
    {"memory": "1.1"},
    {"protocol": "few-shot", "hw": "hw-b-9876543210"},
    {"hw": "hw-b-9876543210"},
    {"hw": "hw-b-9876543210", "latency": "0.115"},
    {"latency": "0.01"},  # nothing fits
]


def _cli_pick(db: Path, case: dict[str, str]) -> dict[str, Any]:
    import json

    import typer
    from result_fixtures import HW_A, TASK
    from typer.testing import CliRunner

    import harness.pick
    from harness.cli import user_errors
    from harness.commands.pick_cmd import pick_command

    args = ["pick", "--task", TASK, "--db", str(db), "--json", "--metric", "macro_f1", "--hardware", case.get("hw", HW_A)]
    flags = {"latency": "--max-latency-ms", "at": "--at", "protocol": "--protocol"}
    for key, flag in flags.items():
        if key in case:
            args += [flag, case[key]]
    if "params" in case:
        args += ["--max-params", f"{float(case['params']) * 1e6:.0f}"]
    if "memory" in case:
        args += ["--max-memory", f"{case['memory']}MB"]
    app = typer.Typer()
    app.command("pick")(user_errors(pick_command))
    app.command("noop")(lambda: None)
    current = harness.pick.current_hardware
    harness.pick.current_hardware = lambda: "this-machine"  # type: ignore[assignment]
    try:
        result = CliRunner().invoke(app, args)
    finally:
        harness.pick.current_hardware = current  # type: ignore[assignment]
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def _form_pick(driver: Any, case: dict[str, str]) -> tuple[str, list[str]]:
    import json

    form = driver.find_element(By.ID, "pick-form")
    for key in ("latency", "params", "memory"):
        field = form.find_element(By.CSS_SELECTOR, f"[data-pick='{key}']")
        field.clear()
        if key in case:
            field.send_keys(case[key])
    Select(form.find_element(By.CSS_SELECTOR, "[data-pick='at']")).select_by_value(case.get("at", "p50"))
    Select(form.find_element(By.CSS_SELECTOR, "[data-pick='protocol']")).select_by_value(case.get("protocol", ""))
    hw = case.get("hw", "hw-a-0123456789")
    form.find_element(By.CSS_SELECTOR, f"[data-pick='hw'] option[data-hw='{hw}']").click()
    out = form.find_element(By.CSS_SELECTOR, ".pick-result")
    return out.get_attribute("data-choice") or "", json.loads(out.get_attribute("data-group") or "[]")


@pytest.mark.parametrize("case", PICK_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "none")
def test_pick_form_agrees_with_harness_pick(driver: Any, pick_site: tuple[Path, Path], case: dict[str, str]) -> None:
    from result_fixtures import TASK

    db, site = pick_site
    expected = _cli_pick(db, case)
    driver.get((site / "tasks" / f"{slugify_all([TASK])[TASK]}.html").as_uri())
    choice, group = _form_pick(driver, case)
    want = expected["recommendation"]["name"] if expected["recommendation"] else ""
    assert choice == want, (case, expected["explanation"])
    assert sorted(group) == sorted(expected["tie_group"])
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.pick-choice")
    if want:
        # the recommended row is highlighted; ineligible rows are hidden
        assert len(rows) == 1 and rows[0].is_displayed()
        assert rows[0].find_element(By.CSS_SELECTOR, "th a").text == expected["recommendation"]["model"]
        eligible = {c["name"] for c in expected["candidates"] if c["eligible"]}
        shown = {
            f"{r.find_element(By.CSS_SELECTOR, 'th a').text} [{r.find_element(By.XPATH, './ancestor::section').get_attribute('data-protocol')}]"
            for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-cand]")
            if r.is_displayed()
        }
        assert shown == eligible
    else:
        assert not rows and "No candidate" in driver.find_element(By.CSS_SELECTOR, ".pick-result").text


# ---- long tables: pages of rows loaded from the page's data file ---------------------------------------


def _bench_module() -> Any:
    """scripts/bench_site.py (its store generator), imported from its path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_site", Path(__file__).parents[1] / "scripts" / "bench_site.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture(scope="module")
def long_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated store (scripts/bench_site.py's generator) with more models than a page shows."""
    from harness.store import Store

    bench = _bench_module()

    root = tmp_path_factory.mktemp("long-site")
    store = Store(root / "bench.db")
    gen = bench.Generator(130, 2, 1, 60)
    bench.insert(store, gen, range(130), with_metadata=True)
    store.close()
    build_site(root / "bench.db", root / "site")
    return root / "site"


def _wait(driver: Any, condition: Any) -> None:
    """Rows from a data file arrive asynchronously (a script element loads it)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda _: condition())


def _shown_rows(table: Any) -> list[Any]:
    return [r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]


def test_long_tables_page_through_every_row(driver: Any, long_site: Path) -> None:
    driver.get((long_site / "tasks" / "task-00.html").as_uri())
    table = driver.find_element(By.CSS_SELECTOR, "table.results")
    total = int(table.get_attribute("data-total"))
    assert total > 100
    pager = driver.find_element(By.CSS_SELECTOR, "nav.pager")
    assert pager.find_element(By.TAG_NAME, "output").text == f"Rows 1–50 of {total}"
    first = [r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)]
    assert len(first) == 50
    buttons = pager.find_elements(By.TAG_NAME, "button")
    buttons[1].click()  # Next: loads the data file
    _wait(driver, lambda: pager.find_element(By.TAG_NAME, "output").text == f"Rows 51–100 of {total}")
    second = [r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)]
    assert len(second) == 50 and not set(first) & set(second)
    buttons[1].click()
    last = [r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)]
    assert len(last) == total - 100 and pager.find_element(By.TAG_NAME, "output").text == f"Rows 101–{total} of {total}"
    assert len(set(first) | set(second) | set(last)) == total  # every row, once
    assert buttons[1].get_attribute("disabled") is not None
    buttons[0].click()
    assert [r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)] == second
    assert _console_errors(driver) == []


def test_sorting_and_filtering_a_long_table_cover_every_row(driver: Any, long_site: Path) -> None:
    driver.get((long_site / "tasks" / "task-00.html").as_uri())
    table = driver.find_element(By.CSS_SELECTOR, "table.results")
    total = int(table.get_attribute("data-total"))
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    params = next(i for i, h in enumerate(headers) if h.startswith("Params"))
    table.find_elements(By.CSS_SELECTOR, "thead th")[params].find_element(By.TAG_NAME, "button").click()
    _wait(driver, lambda: table.get_attribute("data-loaded") == "true")  # sorting loads every row
    _wait(driver, lambda: table.find_elements(By.CSS_SELECTOR, "thead th[aria-sort]"))
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == total
    values = driver.execute_script(
        "return Array.from(arguments[0].tBodies[0].rows).map(r => r.cells[arguments[1]].getAttribute('data-v'))",
        table,
        params,
    )
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers)
    assert len(_shown_rows(table)) == 50  # still one page at a time
    driver.find_element(By.CSS_SELECTOR, "#filters-task input[data-key='name']").send_keys("model-012")
    _wait(driver, lambda: len(_shown_rows(table)) < 50)
    shown = _shown_rows(table)
    names = {r.find_element(By.CSS_SELECTOR, "th a").text for r in shown}
    assert names == {f"model-012{i}" for i in range(10)}  # found beyond the first page too


def test_long_tables_show_their_top_rows_with_javascript_off(long_site: Path, tmp_path: Path) -> None:
    drv = _driver(tmp_path / "profile", javascript=False)
    try:
        drv.get((long_site / "tasks" / "task-00.html").as_uri())
        table = drv.find_element(By.CSS_SELECTOR, "table.results")
        assert len(_shown_rows(table)) == 50
        assert "The first 50 of" in drv.find_element(By.CSS_SELECTOR, ".more-rows").text
        assert not drv.find_elements(By.CSS_SELECTOR, "nav.pager")
        drv.get((long_site / "index.html").as_uri())
        assert drv.find_elements(By.CSS_SELECTOR, "table.board tbody tr")
    finally:
        drv.quit()


# ---- names that are markup: shown as text wherever the page's script puts them -------------------------------

# Each would set window.__pwned if a browser ran it. innerHTML does not run <script>, but does run an <img>'s
# onerror and an <svg>'s onload: the rows a data file brings are inserted that way.
PAYLOADS = (
    '<img src=x onerror="window.__pwned=1">',
    '"><svg onload="window.__pwned=2">',
    "'><img src=y onerror=window.__pwned=3>",
    "</script><script>window.__pwned=4</script>",
    "<iframe srcdoc=\"<script>parent.__pwned=5</script>\">",
)


@pytest.fixture(scope="module")
def markup_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The long site's store with every sixth model (and a task) named with markup: some of them rank past the
    rows a page prints, so they arrive from the data file."""
    from harness.store import Store

    bench = _bench_module()

    root = tmp_path_factory.mktemp("markup-site")
    store = Store(root / "bench.db")
    gen = bench.Generator(130, 2, 1, 60)
    for n, i in enumerate(range(0, 130, 6)):
        gen.models[i] = f"{PAYLOADS[n % len(PAYLOADS)]} {i}"
    gen.tasks[1] = PAYLOADS[0]
    bench.insert(store, gen, range(130), with_metadata=True)
    store.close()
    build_site(root / "bench.db", root / "site")
    return root / "site", [m for m in gen.models if not m.startswith("model-")]


def _not_run(driver: Any) -> None:
    assert driver.execute_script("return window.__pwned === undefined") is True
    assert driver.find_elements(By.CSS_SELECTOR, "tbody img, tbody svg[onload], tbody iframe, nav img") == []
    assert _console_errors(driver) == []


def test_names_with_markup_stay_text_through_paging_sorting_filtering_and_picking(
    driver: Any, markup_site: tuple[Path, list[str]]
) -> None:
    site, names = markup_site
    page = next(p for p in (site / "tasks").glob("*.html") if p.name != "task-00.html")
    driver.get(page.as_uri())
    table = driver.find_element(By.CSS_SELECTOR, "table.results")
    total = int(table.get_attribute("data-total"))
    shown_first = {r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)}
    next_button = driver.find_element(By.CSS_SELECTOR, "nav.pager").find_elements(By.TAG_NAME, "button")[1]
    seen = set(shown_first)
    for _ in range(2):  # the next pages come from the data file
        next_button.click()
        _wait(driver, lambda: table.get_attribute("data-loaded") == "true")
        seen |= {r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)}
        _not_run(driver)
    assert len(seen) == total
    assert set(names) <= seen and set(names) - shown_first  # every name as its text, some from the data file
    sort = table.find_elements(By.CSS_SELECTOR, "thead th")[0].find_element(By.TAG_NAME, "button")
    driver.execute_script("arguments[0].click()", sort)  # scrolled past the header: a click, not a user's
    _wait(driver, lambda: table.find_elements(By.CSS_SELECTOR, "thead th[aria-sort]"))
    _not_run(driver)
    driver.find_element(By.CSS_SELECTOR, "#filters-task input[data-key='name']").send_keys("onerror")
    _wait(driver, lambda: 0 < len(_shown_rows(table)) < 50)
    assert {r.find_element(By.CSS_SELECTOR, "th a").text for r in _shown_rows(table)} <= set(names)
    _not_run(driver)
    form = driver.find_element(By.ID, "pick-form")
    for latency in ("1000", "5"):
        field = form.find_element(By.CSS_SELECTOR, "[data-pick='latency']")
        field.clear()
        field.send_keys(latency)
        _not_run(driver)
    assert form.find_element(By.CSS_SELECTOR, ".pick-result").text
    for path in ("index.html", *(p.relative_to(site).as_posix() for p in sorted(site.glob("*/*.html")))):
        if "model-" in path and "0006" not in path:
            continue  # the pages of the plainly named models add nothing here
        driver.get((site / path).as_uri())
        _not_run(driver)
