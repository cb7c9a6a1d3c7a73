"""Run the README's shell commands that a fresh machine can run in seconds; name why the others are not run.

Every command in a ```bash block must match a rule below, so a new README command cannot go unchecked.
Cheap commands run with this interpreter (``wavemixer`` -> ``python -m wavemixer.cli``, ``.venv/bin/X`` -> X
from this interpreter's folder) in a temporary folder.

  python scripts/check_readme_commands.py            # run the cheap ones, list the rest
  python scripts/check_readme_commands.py --list     # only classify
  python scripts/check_readme_commands.py --only wavemixer   # run only the cheap ones that start so

A cheap command passes when it exits 0 and says what it did (prints something). tests/test_readme.py runs this.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

# (pattern, kind, why); kind "run" is executed, everything else is reported with its reason. First match wins.
RULES: list[tuple[str, str, str]] = [
    (r"pip install|python3 -m venv", "network", "installs packages from PyPI"),
    (r"--download|make_reference_goldens", "network", "downloads data or the reference package"),
    (r"^torchrun", "gpu", "several GPUs or nodes"),
    (r"-m pytest", "long", "the test suite (minutes)"),
    (r"--data-dir DATA|--resume runs/mnist|^wavemixer (eval|predict|export|runs) runs", "long",
     "trains or needs the MNIST run of the first line (DATA: where MNIST lives)"),
    (r"my_images/|shirt\.png|cat\.png|cifar10_94\.58\.pth", "your-files", "needs your own images or checkpoint"),
    (r"^wavemixer bench", "long", "a benchmark sweep (a minute or more)"),
    (r"tests\.record_goldens", "long", "needs a checkout of the recording version; rewrites the goldens"),
    (r"^wavemixer models( |$)|^\.venv/bin/ruff check|^wavemixer export --model \S+ --pretrained", "run",
     "seconds, offline"),
]  # fmt: skip


def commands(readme: Path = README) -> list[str]:
    """Shell commands of the README's bash blocks: continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(re.sub(r"\s+#.*$", "", line).strip())
    return out


def classify(command: str) -> tuple[str, str]:
    for pattern, kind, why in RULES:
        if re.search(pattern, command):
            return kind, why
    raise ValueError(f"README command {command!r} matches no rule in {__file__}: add one (run it, or say why not)")


def runnable(command: str) -> list[str]:
    """The command as this interpreter runs it."""
    argv = shlex.split(command)
    if argv[0] == "wavemixer":
        return [sys.executable, "-m", "wavemixer.cli", *argv[1:]]
    if argv[0].startswith(".venv/bin/"):
        return [str(Path(sys.executable).parent / argv[0].removeprefix(".venv/bin/")), *argv[1:]]
    return argv


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="only classify, run nothing")
    p.add_argument("--only", metavar="PREFIX", help="run only the cheap commands that start with PREFIX")
    args = p.parse_args()
    failed = 0
    repo = README.parent
    with tempfile.TemporaryDirectory() as tmp:
        for cmd in commands():
            kind, why = classify(cmd)
            if kind != "run" or args.list or not cmd.startswith(args.only or ""):
                print(f"[{kind}] {cmd}  ({why})")
                continue
            cwd = repo if "ruff" in cmd else tmp
            proc = subprocess.run(runnable(cmd), cwd=cwd, capture_output=True, text=True, timeout=300)
            ok = proc.returncode == 0 and bool(proc.stdout.strip())
            failed += not ok
            detail = proc.stderr[-2000:] or "(exit 0 without saying what it did)"
            print(f"[{'ok' if ok else 'FAILED'}] {cmd}" + ("" if ok else f"\n{detail}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
