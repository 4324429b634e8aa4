"""Save PNG screenshots of a built leaderboard site: the index, one task page and one model page.

    python scripts/screenshots.py --site site/ --out docs/screenshots [--width 1280] [--mobile]

Uses Debian's headless Chromium and /usr/bin/chromedriver through selenium (no driver download).
The task and model shown are the first ones the index links to (the leader of the first table).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def make_driver(user_data_dir: str, width: int, height: int) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def full_page_png(driver: Any, path: Path, width: int, max_height: int) -> None:
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    driver.set_window_size(width, min(int(height) + 40, max_height))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))


def take(
    site: Path, out: Path, width: int = 1280, max_height: int = 3000, suffix: str = "", task: str | None = None
) -> list[Path]:
    index = (site / "index.html").resolve()
    if not index.is_file():
        raise SystemExit(
            f"{index} does not exist; build the site first: harness site --db results/harness.db --out {site}"
        )
    if not CHROMEDRIVER.exists():
        raise SystemExit(
            "chromedriver not found; install it with: apt-get install -y chromium chromium-driver"
        )
    from selenium.webdriver.common.by import By

    saved = []
    with tempfile.TemporaryDirectory(prefix="harness-shots-") as profile:
        driver = make_driver(profile, width, 900)
        try:
            driver.get(index.as_uri())
            task_href = driver.find_element(By.CSS_SELECTOR, "table.board thead th.task-col a").get_attribute(
                "href"
            )
            if task is not None:  # a named task (e.g. the one with a learning curve), from the task list
                task_href = driver.find_element(By.LINK_TEXT, task).get_attribute("href")
            model_href = driver.find_element(By.CSS_SELECTOR, "table.board tbody th a").get_attribute("href")
            for name, url in (("index", index.as_uri()), ("task", task_href), ("model", model_href)):
                driver.get(url)
                target = out / f"{name}{suffix}.png"
                full_page_png(driver, target, width, max_height)
                saved.append(target)
        finally:
            driver.quit()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("site"), help="built site folder (has index.html)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    parser.add_argument("--max-height", type=int, default=3000, help="crop long pages to this height")
    parser.add_argument("--mobile", action="store_true", help="also save 390px-wide (phone) screenshots")
    parser.add_argument("--task", help="task page to shoot (default: the first task of the first table)")
    parser.add_argument("--suffix", default="", help="added to the file names, e.g. -1000-models")
    args = parser.parse_args(argv)
    paths = take(args.site, args.out, args.width, args.max_height, args.suffix, args.task)
    if args.mobile:
        paths += take(args.site, args.out, 390, args.max_height, suffix=f"{args.suffix}-mobile", task=args.task)
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
