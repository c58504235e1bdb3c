"""Mutation check of the online algorithm: each mutant below breaks one behaviour of the paper's algorithm; the
default suite must fail on every one. Not part of the suite (it runs the suite once per mutant):

    python tests/mutants.py [--only NAME ...]

For each mutant, the checkout's tracked files are copied to a temporary folder, the one edit is applied there, and the
default suite runs there, stopping at the first failure (the algorithm's own test files first, so that a mutant is
usually killed within a minute). It prints, per mutant, the test that killed it or SURVIVED, and exits 1 if any
survived.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (file, the exact text, its replacement)
MUTANTS = {
    "RALS keeps the bottom-k": (
        "solo_ossl/online/rals.py",
        "    return current.float() - anchor.float()\n",
        "    return anchor.float() - current.float()\n",
    ),
    "no anchor refresh": ("solo_ossl/online/selection.py", "        self.anchor.refresh(method)\n", ""),
    "anchor scored with the current model": (
        "solo_ossl/online/selection.py",
        "anchor = method.global_unit_losses(self.anchor.run(method, v1), self.anchor.run(method, v2))",
        "anchor = method.global_unit_losses(method(v1), method(v2))",
    ),
    "kept units mapped to the wrong rows": (
        "solo_ossl/online/algorithm.py",
        "v1, v2, targets = v1[selected.kept], v2[selected.kept], targets[selected.kept]",
        "n = len(selected.kept)\n            v1, v2, targets = v1[:n], v2[:n], targets[:n]",
    ),
    "reservoir off-by-one (j in [0, i))": (
        "solo_ossl/memory/reservoir.py",
        "* (seen + 1)).long()",
        "* seen).long()",
    ),
    "no division by the world size in the gradient average": (
        "solo_ossl/utils/distributed.py",
        "    flat /= dist.get_world_size()\n",
        "",
    ),
    "the stream batch enters the memory before its N steps": (
        "solo_ossl/online/algorithm.py",
        "    log = run_local_steps(learner, method, optimizer, batch, backward, on_step)\n",
        "    learner.memory.add(batch[1], batch[2])\n"
        "    log = run_local_steps(learner, method, optimizer, batch, backward, on_step)\n",
    ),
    "the schedule's pct_start fixed instead of the configured one": (
        "solo_ossl/online/slclrs.py",
        "pct_start=pct_start_for(online_cfg, steps),",
        "pct_start=0.5,",
    ),
}
# The algorithm's own tests first: most mutants fail there.
FIRST = [
    "tests/test_memory.py",
    "tests/test_slclrs_rals.py",
    "tests/test_online_algorithm.py",
    "tests/test_ddp_equivalence.py",
    "tests/test_extending.py",
    "tests/test_online.py",
]


def copy_tree(to: Path) -> None:
    """The checkout's tracked files (the tests read benchmarks/, bash_files/, zoo/ and docs/ too)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        source, target = ROOT / name, to / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_mutant(name: str, file: str, old: str, new: str) -> tuple[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        path = tree / file
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"error: mutant {name!r}: its text occurs {text.count(old)} times in {file}, not once")
        path.write_text(text.replace(old, new))
        rest = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
        order = FIRST + [t for t in rest if t not in FIRST]
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", *order]
        started = time.perf_counter()
        env = {"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(tree)}
        proc = subprocess.run(command, cwd=tree, capture_output=True, text=True, env={**env, **_keep_env()})
        seconds = time.perf_counter() - started
        failed = re.search(r"^FAILED (\S+)", proc.stdout, re.M) or re.search(r"^ERROR (\S+)", proc.stdout, re.M)
        if proc.returncode == 0:
            return "SURVIVED", seconds
        return (failed.group(1) if failed else f"failed (rc {proc.returncode}): {proc.stdout[-300:]}"), seconds


def _keep_env() -> dict:
    import os

    keep = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "VIRTUAL_ENV", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(MUTANTS), help="run these mutants only")
    args = parser.parse_args()
    names = args.only or list(MUTANTS)
    print("| mutant | killed by | seconds |")
    print("|---|---|---|")
    survived = []
    for name in names:
        killer, seconds = run_mutant(name, *MUTANTS[name])
        print(f"| {name} | {killer} | {seconds:.0f} |", flush=True)
        if killer == "SURVIVED":
            survived.append(name)
    if survived:
        print(f"error: {len(survived)} mutant(s) survived: {', '.join(survived)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
