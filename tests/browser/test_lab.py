"""The course in a real JupyterLab, in a real headless Chromium.

Starts JupyterLab from this environment on loopback with a random token (passed in the
``JUPYTER_TOKEN`` environment variable, never on the command line) and port, opens
a notebook holding the temperature playground, runs the cell, drags the temperature
slider, and checks that the kernel re-rendered the figure and the summary. This proves
that the installed jupyterlab + ipywidgets actually render the playgrounds. A screenshot
is saved to build/browser/jupyterlab_playground.png.

Needs Debian's ``chromium`` (``make browser`` installs it where apt-get and root allow)
and Playwright for Python (the ``test`` extra). Playwright drives the system Chromium;
it never downloads a browser. Without them the test skips with one line saying why.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import nbformat
import pytest

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
SHOT_DIR = REPO / "build" / "browser"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
BUDGET_S = 240  # hard ceiling (a loaded 2-core CI box); unloaded it takes ~20 s


def find_chromium() -> str | None:
    """``MMCOURSE_CHROMIUM`` (any Chromium/Chrome binary) if set, else Debian's ``chromium`` on PATH."""
    override = os.environ.get("MMCOURSE_CHROMIUM")
    if override:
        return override if os.path.exists(override) else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(root: pathlib.Path) -> str:
    shutil.copy(HERE / "playground_fakes.py", root / "playground_fakes.py")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Playground check\nDrag the temperature slider."),
        nbformat.v4.new_code_cell(
            "import mmcourse.widgets as W, playground_fakes as fakes\n"
            "W.temperature_playground(fakes.similarities(6), temperature=0.07)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "playground.ipynb")
    return "playground.ipynb"


def quiet_lab_settings(settings_dir: pathlib.Path) -> None:
    """No news or update toasts (they would also try the network)."""
    path = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextlib.contextmanager
def lab_server(tmp_path: pathlib.Path):
    """Start JupyterLab on 127.0.0.1 with a random token and port (not waiting for it).

    Yields a LabServer; ``wait_ready()`` blocks until it answers. The caller can start
    the browser in the meantime.
    """
    root = tmp_path / "root"
    root.mkdir()
    notebook = write_notebook(root)
    env = dict(os.environ)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("IPYTHONDIR", "ipython")]:
        env[var] = str(tmp_path / sub)  # fresh state: no restored tabs, no user config
    quiet_lab_settings(tmp_path / "settings")
    env["PATH"] = str(pathlib.Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("MMCOURSE_STATIC_WIDGETS", None)  # the point here is the live widget
    port, token = free_port(), secrets.token_hex(16)
    env["JUPYTER_TOKEN"] = token  # from the environment: a command-line token is readable by every local user
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--port-retries=0", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI run as root
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = LabServer(proc, f"http://127.0.0.1:{port}", token, notebook, log_path)
    try:
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)  # jupyter_server shuts its kernels down, then exits
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class LabServer:
    def __init__(self, proc, base, token, notebook, log_path):
        self.proc, self.base, self.token, self.notebook, self.log_path = proc, base, token, notebook, log_path

    @property
    def notebook_url(self) -> str:
        return f"{self.base}/lab/tree/{self.notebook}?token={self.token}"

    def log_tail(self, n: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def wait_ready(self, timeout: float = 90) -> None:
        cmdline = pathlib.Path(f"/proc/{self.proc.pid}/cmdline")
        if cmdline.exists():  # Linux: what every local user can read with ps
            assert self.token not in cmdline.read_text(errors="replace"), "the token is on the command line"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start (exit code {self.proc.poll()}):\n{self.log_tail()}")
            time.sleep(0.3)

    def wait_kernel_connected(self, timeout: float = 90) -> None:
        """Until the notebook's kernel is idle with a browser connected: only then is a cell run delivered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.base}/api/kernels?token={self.token}", timeout=5) as r:
                kernels = json.load(r)
            if any(k.get("connections", 0) >= 1 and k.get("execution_state") == "idle" for k in kernels):
                return
            time.sleep(0.3)
        pytest.fail(f"the notebook's kernel never became idle and connected:\n{self.log_tail()}")


@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S)
def test_playground_renders_and_reacts_in_jupyterlab_in_chromium(tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("real-browser test: Chromium is not installed (`make browser` installs it as root with "
                    "apt-get; or set MMCOURSE_CHROMIUM to a Chromium/Chrome binary)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("real-browser test: Playwright for Python is not installed (pip install -e '.[test]')")
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # expect() has its own 5 s default; a loaded machine needs more
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SHOT_DIR / "jupyterlab_playground.png"
    started = time.monotonic()
    with lab_server(tmp_path) as lab, sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(  # starts while JupyterLab boots
                str(tmp_path / "chromium-profile"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 1000})
        except Exception as err:  # e.g. Ubuntu's snap stub in a container
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            pytest.skip(f"real-browser test: {chromium} cannot start here ({first})")
        try:
            lab.wait_ready()
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(lab.notebook_url)
            try:
                # the kernel must be connected and idle, or the run request is silently dropped
                lab.wait_kernel_connected()
                expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()
                cell = page.locator(".jp-Notebook .jp-CodeCell").first
                cell.locator(".cm-content").click()
                page.keyboard.press("Control+Enter")  # run in place
                prompt = cell.locator(".jp-InputArea-prompt")
                expect(prompt).to_have_text(re.compile(r"\[[*0-9]+\]"))
                playground = page.locator(".mmcourse-playground")
                expect(playground).to_be_visible()
            except AssertionError:
                page.screenshot(path=str(shot))
                raise AssertionError(f"the playground widget never rendered; see {shot}\n{lab.log_tail()}") from None
            image = playground.locator("img")
            summary = playground.locator(".mmcourse-summary")
            expect(image).to_have_attribute("src", re.compile("^(blob|data):"))
            readout = playground.locator(".widget-readout").first
            src0, text0, read0 = image.get_attribute("src"), summary.inner_text(), readout.inner_text()
            assert "temperature 0.070" in text0, text0

            slider = playground.locator(".widget-slider").first
            track = slider.locator(".noUi-target").bounding_box()
            box = slider.locator(".noUi-handle").bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 0.2 * track["width"], y, steps=8)  # a fifth of the way right, like a person
            page.mouse.up()

            expect(summary).not_to_have_text(text0, timeout=30_000)
            expect(image).not_to_have_attribute("src", src0, timeout=30_000)
            text1, read1 = summary.inner_text(), readout.inner_text()
            t0, t1 = float(read0), float(read1)
            assert t1 > t0, (read0, read1)  # dragged right on a log slider: a higher temperature
            assert f"temperature {t1:.3f}" in text1, text1
            playground.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        finally:
            context.close()
    print(f"real-browser playground check: {time.monotonic() - started:.1f} s, screenshot {shot}")


@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S)
def test_lab_token_comes_from_the_environment_not_the_command_line(tmp_path):
    """No browser needed: the server answers with the token, refuses without it, and no
    local user can read the token from its command line."""
    with lab_server(tmp_path) as lab:
        lab.wait_ready()  # also asserts the token is not in /proc/<pid>/cmdline
        with urllib.request.urlopen(f"{lab.base}/api/kernels?token={lab.token}", timeout=10) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{lab.base}/api/kernels", timeout=10)
        assert refused.value.code == 403
