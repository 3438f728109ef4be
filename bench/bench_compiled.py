"""Would a compiled request path meet issue 13's overhead targets? The middleware's hot
modules compiled with mypyc, against the same source run by CPython, in bench_overhead.py's
production shape.

A scratch copy of the tree gets C extensions for the modules every consented or first-visit
page runs through: the middleware, the reading of consent, the send wrappers, capture's
pipeline, buffer and worker-side building, and the helpers they call. CPython imports an
extension before the ``.py`` beside it, so the copy's server runs them compiled. Both trees
are then measured in interleaved rounds (this VM drifts by several percent from minute to
minute) and the medians printed side by side.

This is a trial, not a build the project ships: the compiled copy fails 13 of the capture
and consent tests (those that monkeypatch module attributes, and those that pass a
``bytearray`` where a type says ``bytes``: mypyc checks annotations at run time). It needs
gcc, the Python headers and mypyc (installed with mypy by ``make install-test``), and wrk.

    python bench/bench_compiled.py [--rounds 4] [--duration 5] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The tree's top-level packages the overhead bench runs (the collector for streaming).
PACKAGES = ("consent_mw", "collector", "consent_mw_cli", "dashboards", "clinic", "bench")
#: What a settled, discarding or first-visit page runs through, on the event loop or on
#: capture's worker. ``state.py`` stays interpreted: mypyc cannot compile a dataclass whose
#: field types are imported only under TYPE_CHECKING.
COMPILED = (
    "consent/middleware.py", "consent/reading.py", "consent/_send.py", "consent/_inject.py",
    "consent/decision.py", "consent/cookies.py", "capture/pipeline.py", "capture/buffer.py",
    "capture/hits.py", "capture/events.py", "capture/fields.py", "capture/batching.py",
    "capture/counters.py", "bounded.py", "scrub.py", "clientip.py", "ids.py", "wire.py",
)
VARIANTS = ("consented, no capture", "consented, discarding", "new visitor")
#: mypyc writes the C struct field of an attribute ``_thread`` as ``__thread``, which GCC
#: reads as its thread-local keyword; the copy names those attributes otherwise.
THREAD_ATTR = re.compile(r"self\._thread\b")


def mypy_ini() -> str:
    """The project's mypy settings (pyproject's ``[tool.mypy]``) as a mypy.ini."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[mypy]", f"strict = {conf.get('strict', False)}",
             f"python_version = {conf['python_version']}"]
    for override in conf.get("overrides", []):
        modules = override["module"]
        lines.append(f"[mypy-{','.join([modules] if isinstance(modules, str) else modules)}]")
        lines += [f"{k} = {v}" for k, v in override.items() if k != "module"]
    return "\n".join(lines) + "\n"


def compiled_copy(dest: Path) -> None:
    """Copy the tree's packages to ``dest`` and compile :data:`COMPILED` there in place."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for module in ("capture/buffer.py", "capture/sender.py"):
        path = dest / "consent_mw" / module
        path.write_text(THREAD_ATTR.sub("self._worker_thread", path.read_text()))
    # No pyproject.toml in the copy: mypyc's generated setup.py would read it with the
    # venv's setuptools, which may predate the SPDX license field.
    (dest / "mypy.ini").write_text(mypy_ini())
    mypyc = Path(sys.executable).with_name("mypyc")
    built = subprocess.run(
        [str(mypyc), "--config-file", "mypy.ini", *(f"consent_mw/{m}" for m in COMPILED)],
        cwd=dest, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        tail = (built.stdout + built.stderr).strip().splitlines()[-5:]
        raise SystemExit("mypyc failed:\n" + "\n".join(tail))
    # What the copy's server will import: each compiled module as its extension.
    check = "; ".join(f"import consent_mw.{m[:-3].replace('/', '.')} as m{i}; "
                      f"assert m{i}.__file__.endswith('.so'), m{i}.__file__"
                      for i, m in enumerate(COMPILED))
    subprocess.run([sys.executable, "-c", check], cwd=dest, check=True,
                   env={**os.environ, "PYTHONPATH": str(dest)})


def one_round(tree: Path, duration: int, only: list[str]) -> dict[str, dict[str, float]]:
    """One round of bench_overhead.py run from ``tree``: each variant's figures."""
    run = subprocess.run(
        [sys.executable, "bench/bench_overhead.py", "--rounds", "1", "--duration",
         str(duration), "--only", *only],
        cwd=tree, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"bench_overhead.py failed in {tree}:\n" + "\n".join(tail))
    report = json.loads(next(line for line in reversed(run.stdout.splitlines())
                             if line.startswith("{")))
    results: dict[str, dict[str, float]] = report["results"]
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=list(VARIANTS),
                    help="bench_overhead.py variants to compare (bare always runs)")
    args = ap.parse_args()
    missing = [tool for tool in ("gcc", "wrk") if not shutil.which(tool)]
    if not Path(sys.executable).with_name("mypyc").exists():
        missing.append("mypyc (make install-test)")
    if not Path(sysconfig.get_paths()["include"], "Python.h").exists():
        missing.append("Python.h (python3-dev)")
    if missing:
        raise SystemExit(f"bench_compiled.py needs {', '.join(missing)}")

    with tempfile.TemporaryDirectory(prefix="consent-mw-compiled-") as tmp:
        compiled = Path(tmp)
        compiled_copy(compiled)
        trees = {"source": ROOT, "compiled": compiled}
        runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                runs[name].append(one_round(tree, args.duration, args.only))

    print(f"median of {args.rounds} interleaved rounds of {args.duration} s; x bare and "
          "p99 - bare against the same tree's bare in the same round; CPU in µs a request")
    print(f"{'variant':<24} {'tree':<9} {'x bare':>7} {'p99 - bare':>10} {'loop':>6} "
          f"{'threads':>7}   x bare per round")
    for variant in ["bare", *args.only]:
        for name, rounds in runs.items():
            ratios = [r[variant]["rps"] / r["bare"]["rps"] for r in rounds]
            p99 = [r[variant]["p99_ms"] - r["bare"]["p99_ms"] for r in rounds]
            loop = [r[variant].get("loop_us", 0.0) for r in rounds]
            threads = [r[variant].get("threads_us", 0.0) for r in rounds]
            print(f"{variant:<24} {name:<9} {statistics.median(ratios):>7.2f} "
                  f"{statistics.median(p99):>+10.2f} {statistics.median(loop):>6.1f} "
                  f"{statistics.median(threads):>7.1f}   "
                  + ", ".join(f"{x:.2f}" for x in ratios))
    print(json.dumps({"bench": "compiled", "rounds": runs}))


if __name__ == "__main__":
    main()
