"""Screenshots of the web page in each state, for the README: `python -m tests.web.screenshots`.

Starts what the browser tests start (a redis-server, one `mcnet worker` with the tiny model
and untrained demo weights, the API with the page), drives Debian's Chromium through a job
and writes PNGs into docs/screenshots/ (or --out): empty form, files chosen, in progress,
finished, an error, and the finished page at phone width. The animated face comes from
untrained weights, so the result looks like noise; the side-by-side layout shows the inputs.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import start_redis
from tests.service.conftest import Stack
from tests.service.helpers import ApiServer
from tests.web.browser import (
    DESKTOP,
    PHONE,
    browser_missing,
    chromium,
    face_photo,
    open_page,
    talking_video,
    text_file,
    web_app,
)

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger("screenshots")


def _state(page: Any, *states: str, timeout: float = 120_000) -> None:
    names = ", ".join(f"'{s}'" for s in states)
    page.wait_for_function(
        f"() => [{names}].includes(document.getElementById('app').dataset.state)",
        timeout=timeout,
    )


def _shot(page: Any, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(400)  # the progress bar's width transition
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    logger.info("wrote %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _choose(page: Any, photo: Path, video: Path) -> None:
    page.set_input_files("#source", str(photo))
    page.set_input_files("#driving", str(video))
    page.wait_for_function("() => document.getElementById('source-preview').naturalWidth > 0")
    page.wait_for_function(
        "() => document.getElementById('driving-preview').readyState >= 2 || "
        "document.getElementById('driving-preview').hidden"
    )


def take(site: str, media: Path, out: Path) -> None:
    """Drive the page at `site` through each state, writing screenshots into `out`."""
    photo = face_photo(media, size=192, name="portrait.png")
    video = talking_video(media, frames=48, size=128, fps=12, name="talking.mp4")
    with chromium() as browser:
        page = open_page(browser, site, DESKTOP)
        _shot(page, out, "1-empty")

        _choose(page, photo, video)
        page.check("input[name=crop][value=none]")
        page.check("input[name=layout][value=side_by_side]")
        _shot(page, out, "2-files-chosen")

        page.click("#submit")
        page.wait_for_function(
            "() => document.getElementById('app').dataset.stage === 'animating' && "
            "document.getElementById('progress').value >= 25",
            timeout=120_000,
        )
        _shot(page, out, "3-in-progress")

        _state(page, "finished", "error")
        page.wait_for_function(
            "() => document.getElementById('result-video').readyState >= 2", timeout=20_000
        )
        page.evaluate(
            """async () => {
            const v = document.getElementById('result-video');
            const seeked = new Promise((r) => v.addEventListener('seeked', r, {once: true}));
            v.currentTime = v.duration / 2;
            await seeked;
        }"""
        )
        _shot(page, out, "4-finished")
        page.context.close()

        phone = open_page(browser, site, PHONE, device_scale_factor=2, is_mobile=True)
        _choose(phone, photo, video)
        _shot(phone, out, "6-phone-files-chosen")
        phone.context.close()

        page = open_page(browser, site, DESKTOP)
        _choose_text = text_file(media)
        page.set_input_files("#source", str(_choose_text))
        page.set_input_files("#driving", str(video))
        page.click("#submit")
        _state(page, "error", timeout=30_000)
        _shot(page, out, "5-error")
        page.context.close()


def main(argv: list[str] | None = None) -> int:
    """Start the service, take the screenshots, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    missing = browser_missing()
    if missing:
        logger.error("%s", missing)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mcnet-screens-") as folder:
        tmp = Path(folder)
        redis = start_redis(tmp / "redis")
        stack = Stack(redis, tmp)
        try:
            stack.start_worker()
            with ApiServer(web_app(stack.settings())) as server:
                take(server.url + "/", tmp, args.out)
        finally:
            stack.close()
            redis.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
