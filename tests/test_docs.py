"""The README is the product's front door: every command lit has is documented there, every
command's --help carries an example, the README's commands exist, and its command reference is
each command's --help (scripts/readme_commands.py writes it)."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from lit.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def commands() -> dict:
    group = typer.main.get_command(app)
    out = {}
    for name, cmd in group.commands.items():
        if cmd.hidden:
            continue
        if hasattr(cmd, "commands"):  # a group: its subcommands are the commands
            out.update({f"{name} {sub}": c for sub, c in cmd.commands.items() if not c.hidden})
        else:
            out[name] = cmd
    return out


def test_every_command_is_in_the_readme():
    missing = [name for name in commands() if f"lit {name}" not in README]
    assert missing == []


def test_every_command_has_help_with_an_example():
    lacking = [name for name, cmd in commands().items() if "Example" not in (cmd.help or "")]
    assert lacking == []


def test_the_readmes_commands_exist():
    blocks = "\n".join(re.findall(r"^```\n(.*?)^```", README, flags=re.M | re.S))
    mentioned = set(re.findall(r"^(?:\$ )?lit ([a-z][a-z-]+)", blocks, flags=re.M))
    known = {name.split()[0] for name in commands()}
    assert mentioned and mentioned <= known, mentioned - known


def test_ci_runs_exactly_the_readmes_install_and_test_command():
    root = Path(__file__).resolve().parent.parent
    section = README.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    command, = re.findall(r"^```\n(.+)\n```", section, flags=re.M)
    ci = [line for line in (root / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == command == "pip install '.[test]' && scripts/chromium && python -m pytest -q"
    script = root / "scripts" / "chromium"
    assert script.stat().st_mode & 0o111 and "apt-get install -y -qq chromium" in script.read_text()


def test_scripts_chromium_says_when_chromium_cannot_be_installed(tmp_path):
    """Where Chromium is missing and apt-get is not there to install it, the script says the browser
    tests will fail, in one line, and exits 0 so the suite still runs."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    bin_dir = tmp_path / "bin"  # python, git and sh only: no chromium, no apt-get
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this venv's python
    (bin_dir / "python").chmod(0o755)
    for name, target in (("sh", "/bin/sh"), ("git", "/usr/bin/git")):
        (bin_dir / name).symlink_to(target)
    for tool in ("dirname", "id"):
        for folder in ("/usr/bin", "/bin"):
            if Path(folder, tool).exists():
                (bin_dir / tool).symlink_to(Path(folder, tool))
                break
    proc = subprocess.run(["/bin/sh", str(root / "scripts" / "chromium")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": str(bin_dir)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "scripts/chromium: Chromium is missing and could not be installed here (apt-get install chromium as root): "
        "the browser tests will fail"]


def test_the_readmes_command_reference_is_each_commands_help():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "readme_commands.py"
    spec = importlib.util.spec_from_file_location("readme_commands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.START in README and module.END in README
    assert module.updated(README) == README, "the README's command reference has drifted from --help: " \
        "run python scripts/readme_commands.py"
