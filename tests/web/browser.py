"""What the browser tests and the screenshot script share: Chromium, the page's app, inputs.

The browser is Debian's `chromium` (`apt-get install chromium`) driven by Playwright for
Python; Playwright's own browser downloads are never used. The service is the one of
`tests/service` (real redis-server, `mcnet worker` subprocess with the tiny model, uvicorn
in a thread) with the web page mounted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.settings import ApiSettings
from service.app import create_app
from service.web import mount_web
from tests.media_factory import Audio, face_image, talking_face_frames, write_image, write_video

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("MCNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

DESKTOP = {"width": 1100, "height": 900}
PHONE = {"width": 375, "height": 740}

# Records every change of the progress box, so a test sees what a person saw, and the
# names of the form fields each fetch() sends (`__sent`) with where they went and their
# values (`__uploads`: a file as "file:" + its name).
RECORD_PROGRESS = """
window.__progress = [];
window.__sent = [];
window.__uploads = [];
const pageFetch = window.fetch;
window.fetch = (resource, init) => {
  if (init && init.body instanceof FormData) {
    window.__sent.push([...init.body.keys()]);
    window.__uploads.push({url: String(resource), fields: [...init.body.entries()].map(
      ([name, value]) => [name, typeof value === "string" ? value : "file:" + value.name])});
  }
  return pageFetch(resource, init);
};
document.addEventListener("DOMContentLoaded", () => {
  const app = document.getElementById("app");
  const bar = document.getElementById("progress");
  const record = () => window.__progress.push({
    state: app.dataset.state,
    stage: app.dataset.stage || "",
    value: bar.hasAttribute("value") ? bar.value : null,
    percent: document.getElementById("percent").textContent,
    frames: document.getElementById("frames").textContent,
    estimate: document.getElementById("estimate").textContent,
    text: document.getElementById("stage").textContent,
  });
  const watch = { subtree: true, attributes: true, childList: true, characterData: true };
  new MutationObserver(record).observe(document.getElementById("job"), watch);
  new MutationObserver(record).observe(app, { attributes: true });
});
"""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def web_app(settings: ApiSettings) -> FastAPI:
    """The API of `settings` with the web page (mount_web is a no-op if already mounted)."""
    app = create_app(settings)
    mount_web(app)
    return app


def open_page(
    browser: Browser,
    url: str,
    viewport: dict[str, int] = DESKTOP,
    before: Callable[[Page], None] | None = None,
    **context_options: Any,
) -> Page:
    """A fresh context and page at `url`, recording progress changes; `before(page)` runs
    before the page loads (to attach listeners)."""
    context = browser.new_context(viewport=viewport, **context_options)  # type: ignore[arg-type]
    page = context.new_page()
    page.add_init_script(RECORD_PROGRESS)
    if before is not None:
        before(page)
    page.goto(url)
    return page


def face_photo(folder: Path, size: int = 64, name: str = "photo.png") -> Path:
    """A drawn frontal face, `size` x `size`, framed like an aligned crop (crop=none)."""
    image = face_image(size, size, size / 2, size * 0.5, size * 0.42)
    return write_image(folder / name, image)


def talking_video(
    folder: Path, frames: int, size: int = 64, fps: int = 10, name: str = "talk.mp4"
) -> Path:
    """A `frames`-frame MP4 of a drawn talking face, `size` x `size`, with AAC sound."""
    pictures = talking_face_frames(
        frames, size, size, center=(size / 2, size * 0.5), size=size * 0.42, jitter=1.0
    )
    return write_video(folder / name, pictures, fps=fps, audio=Audio())


def text_file(folder: Path) -> Path:
    """Not a picture: what a person might pick by mistake."""
    path = folder / "notes.txt"
    path.write_text("These are my notes, not a photo.\n" * 20)
    return path


def noise_photo(folder: Path, size: int = 96) -> Path:
    """A picture without any face."""
    rng = np.random.default_rng(3)
    return write_image(folder / "noise.png", rng.integers(0, 256, (size, size, 3), np.uint8))
