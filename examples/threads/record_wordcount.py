"""How examples/threads/wordcount.jsonl was made: examples/agent.py, recorded by `lit record`,
against a scripted upstream whose replies read like a real model building a small feature
(reasoning, a failing test, the fix, a commit). Rerun it after a change of the recording format:

    python examples/threads/record_wordcount.py examples/threads/wordcount.jsonl

The agent really runs: it writes the files, runs the tests (which fail, then pass) and commits
under lit's hooks; only the model's side is scripted. The repository is made by lit.demo's
seed_repo, the one `lit demo` starts from, so the recording replays there turn for turn.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lit import demo, store
from lit.scripted import ScriptedUpstream, text_message

HERE = Path(__file__).resolve().parent
AGENT = HERE.parent / "agent.py"
WORKDIR = Path(tempfile.gettempdir()) / "lit-example"  # a neutral path: it shows in the recording

PROMPT = (
    "Add a small wordcount.py CLI that prints the number of lines, words and characters of each "
    "file it is given, like wc, with a total line when there are several files. Add unit tests "
    "(unittest, no extra dependencies), make sure they pass, document it in the README and commit."
)

WORDCOUNT_V1 = '''"""Count the lines, words and characters of files, like wc."""

import argparse
import sys


def count(text):
    """(lines, words, characters) of a text."""
    return text.count("\\n"), len(text.split(" ")), len(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Count lines, words and characters.")
    parser.add_argument("files", nargs="+", help="the files to count")
    args = parser.parse_args(argv)
    totals = [0, 0, 0]
    for name in args.files:
        with open(name, encoding="utf-8") as f:
            counts = count(f.read())
        print(f"{counts[0]:7} {counts[1]:7} {counts[2]:7} {name}")
        totals = [t + c for t, c in zip(totals, counts)]
    if len(args.files) > 1:
        print(f"{totals[0]:7} {totals[1]:7} {totals[2]:7} total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

TESTS = '''import io
import os
import tempfile
import unittest
from contextlib import redirect_stdout

from wordcount import count, main


class CountTest(unittest.TestCase):
    def test_lines_words_and_characters(self):
        self.assertEqual(count("hello world\\n"), (1, 2, 12))

    def test_runs_of_whitespace_separate_words_once(self):
        self.assertEqual(count("one  two\\tthree\\n\\nfour\\n"), (3, 4, 21))

    def test_empty_text(self):
        self.assertEqual(count(""), (0, 0, 0))


class MainTest(unittest.TestCase):
    def test_several_files_end_with_a_total(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name, text in [("a.txt", "one two\\n"), ("b.txt", "three\\nfour five\\n")]:
                paths.append(os.path.join(tmp, name))
                with open(paths[-1], "w", encoding="utf-8") as f:
                    f.write(text)
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(main(paths), 0)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[-1].split(), ["3", "5", "24", "total"])


if __name__ == "__main__":
    unittest.main()
'''

README_ADDITION = '''
## wordcount.py

Counts the lines, words and characters of files, like `wc`:

```
python wordcount.py notes.txt todo.txt
```

Run the tests with `python -m unittest -v`.
'''


def signature(seed: str) -> str:
    """Shaped like the API's thinking signatures (opaque base64), derived from the text so the
    recording is the same on every run."""
    data = b"".join(hashlib.sha256(f"{seed}{i}".encode()).digest() for i in range(9))
    return base64.b64encode(b"\x12\x08" + data).decode()


def thinking(text: str) -> dict:
    return {"type": "thinking", "thinking": text, "signature": signature(text)}


def turn(*blocks: dict, name: str, tool_input: dict, n: int) -> dict:
    call = {"type": "tool_use", "id": f"toolu_01WordCount{n:02d}Ex4mpl3", "name": name, "input": tool_input}
    return {"content": [*blocks, call], "stop_reason": "tool_use"}


def text(t: str) -> dict:
    return {"type": "text", "text": t}


SCRIPT = [
    turn(thinking(
        "The user wants a wc-like CLI in Python with tests, README docs and a commit. First I should see "
        "what the repository already has, so the new file fits in (layout, existing docs, test style)."),
        text("I'll start by looking at what is in the repository."),
        name="run_shell", tool_input={"command": "git status --short --branch && ls && cat README.md"}, n=1),
    turn(thinking(
        "Only a README: no package layout, no test framework configured. The user asked for unittest and "
        "no dependencies, so a single module at the root plus test_wordcount.py is the simplest thing.\n\n"
        "Design: keep the counting in a pure function count(text) -> (lines, words, characters) so it can "
        "be tested without files, and a main(argv) that reads the files, prints one row per file in wc's "
        "column format and a total row when there is more than one file. Lines are newline characters, as "
        "wc counts them."),
        text("The repository only has a README. I'll put the counting in a pure `count()` function and "
             "keep the file handling in `main()`, so both are easy to test."),
        name="write_file", tool_input={"path": "wordcount.py", "content": WORDCOUNT_V1}, n=2),
    turn(thinking(
        "Tests: the basic case, a text with runs of whitespace (tabs, double spaces, an empty line) since "
        "that is where naive splitting goes wrong, the empty text, and main() with two files to check the "
        "total row. a.txt: 1 line, 2 words, 8 chars; b.txt: 2 lines, 3 words, 16 chars; total 3 5 24."),
        name="write_file", tool_input={"path": "test_wordcount.py", "content": TESTS}, n=3),
    turn(name="run_shell", tool_input={"command": "python -m unittest"}, n=4),
    turn(thinking(
        "Three failures, one cause. 'one  two\\tthree\\n\\nfour\\n' gives 3 words instead of 4, the empty "
        "text gives 1 word instead of 0, and the total row says 4 words instead of 5 because 'three\\nfour' "
        "in b.txt counts as one word. text.split(\" \") splits on single spaces only: it yields empty "
        "strings between consecutive spaces and for an empty text, and never splits on tabs or newlines. "
        "str.split() with no argument splits on runs of any whitespace and drops the empty strings, which "
        "is exactly wc's definition of a word."),
        text("Three tests fail, all because `split(\" \")` only splits on single spaces. "
             "`split()` with no argument splits on any run of whitespace, which is what `wc` does."),
        name="edit_file", tool_input={"path": "wordcount.py", "old_string": 'len(text.split(" "))',
                                      "new_string": "len(text.split())"}, n=5),
    turn(name="run_shell", tool_input={"command": "python -m unittest -v"}, n=6),
    turn(thinking("All four pass. A quick run of the CLI itself on real files, to see the output format."),
         text("All tests pass. Let me try the command on a couple of files."),
         name="run_shell", tool_input={"command": "python wordcount.py README.md wordcount.py"}, n=7),
    turn(thinking("The columns line up and the total is right. Now the README: a short section with usage "
                  "and how to run the tests, appended after the existing text."),
         name="edit_file", tool_input={"path": "README.md", "old_string": demo.SEED_README_LAST_LINE,
                                       "new_string": demo.SEED_README_LAST_LINE + README_ADDITION}, n=8),
    turn(thinking("Everything is in place: module, tests passing, README. Commit only these three files with a "
                  "message that says what the tool does."),
         text("Committing the feature."),
         name="run_shell", tool_input={"command": "git add wordcount.py test_wordcount.py README.md && "
                                       "git commit -q -m 'Add wordcount.py, a wc-like line, word and character "
                                       "counter, with tests' && git log --oneline -n 2"}, n=9),
    text_message("Done. `wordcount.py` prints the lines, words and characters of each file (and a total for "
                 "several files); `count()` splits words on any run of whitespace, like `wc`. Four unittest "
                 "tests cover it and pass, the README documents usage, and it is committed."),
]


def main(out: str) -> int:
    if WORKDIR.exists():
        subprocess.run(["rm", "-rf", str(WORKDIR)], check=True)
    repo = WORKDIR / "tools"
    demo.seed_repo(repo)
    env = {**os.environ, "LIT_DB": str(WORKDIR / "lit.db"), "HOME": str(WORKDIR),
           "ANTHROPIC_API_KEY": "sk-ant-api03-" + "eXaMpLe" * 12 + "-AA"}
    with ScriptedUpstream(SCRIPT) as up:
        proc = subprocess.run([sys.executable, "-m", "lit", "record", "--upstream", up.url, "--",
                               sys.executable, str(AGENT), PROMPT], cwd=repo, env=env)
    if proc.returncode != 0:
        return proc.returncode
    db = store.connect(WORKDIR / "lit.db")
    thread = db.execute("SELECT id FROM threads WHERE commit_sha IS NOT NULL").fetchone()[0]
    subprocess.run([sys.executable, "-m", "lit", "export", thread, "-o", out], env=env, check=True)
    scrub(Path(out))
    print(f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} kB)")
    return 0


def scrub(path: Path) -> None:
    """Neutral values for what names this machine outside the conversation (argv, pid)."""
    lines = path.read_text().splitlines()
    out = []
    for line in lines:
        item = json.loads(line)
        if item.get("table") == "sessions":
            item["row"]["argv"] = json.dumps(["python", "examples/agent.py", PROMPT])
            item["row"]["pid"] = None
        out.append(json.dumps(item, ensure_ascii=False))
    path.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(HERE / "wordcount.jsonl")))
