"""The README is the product's front door: every command lit has is documented there, every
command's --help carries an example, and the README's commands exist."""

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
