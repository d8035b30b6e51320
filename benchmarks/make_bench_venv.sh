#!/usr/bin/env bash
# Create (or update) the separate virtual environment in which benchmarks run napari-calcium side
# by side with peer libraries. Never install peers into the dev environment: their pins must not
# leak into it.
#
#   benchmarks/make_bench_venv.sh                        # venv at ~/.venvs/napari-calcium-bench
#   BENCH_VENV=/path/to/venv benchmarks/make_bench_venv.sh
#   "$BENCH_VENV/bin/python" benchmarks/run.py --only io
#
# Idempotent: an existing venv is reused, pip skips what is already installed, and running it again
# only picks up changes to pyproject.toml.
#
# Why CalSciPy is not simply in the `bench` extra: calscipy 0.8.3 declares PPVD (not on PyPI:
# "No matching distribution found for PPVD"), slmsuite, PyQt6, ipykernel, seaborn,
# scikit-learn, opencv-python and pillow<=9.4.0 as hard requirements, so `pip install calscipy`
# fails to resolve. Its Bruker reader needs far less. The `bench` extra in pyproject.toml lists what
# `import CalSciPy.bruker` imports at run time (importlib-metadata, pandas, tqdm, imageio + pillow,
# opencv-python-headless for cv2, joblib) plus json-tricks and memoization for its other modules;
# calscipy itself is then added with --no-deps. numpy stays at 2.x (numpy 2 works for the reader).
# opencv-python-headless provides the same `cv2` module as opencv-python, without libGL.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_VENV="${BENCH_VENV:-$HOME/.venvs/napari-calcium-bench}"
PYTHON="${PYTHON:-python3}"
CALSCIPY_VERSION="0.8.3"

if [[ ! -x "$BENCH_VENV/bin/python" ]]; then
    echo "creating $BENCH_VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$BENCH_VENV"
fi
PIP=("$BENCH_VENV/bin/python" -m pip)

"${PIP[@]}" install --quiet --upgrade pip
# napari-calcium (editable, from this checkout) and the peers' run-time dependencies
"${PIP[@]}" install --quiet --editable "$REPO[bench]"
# CalSciPy without its unresolvable declared requirements
"${PIP[@]}" install --quiet --no-deps "calscipy==$CALSCIPY_VERSION"

# check that the peers import; fail loudly otherwise
"$BENCH_VENV/bin/python" - <<'PY'
import importlib.metadata as md

import calab  # noqa: F401  (spike-inference peers)
import CalSciPy.bruker  # noqa: F401  (imports cv2, pandas, imageio, joblib, tqdm at import time)
import napari_calcium
import oasis.functions  # noqa: F401

print(
    "bench venv ready:",
    f"napari-calcium {napari_calcium.__version__},",
    f"CalSciPy {md.version('calscipy')},",
    f"oasis-deconv {md.version('oasis-deconv')}, calab {md.version('calab')},",
    f"numpy {md.version('numpy')},",
    f"opencv {md.version('opencv-python-headless')}",
)
PY
echo "run: $BENCH_VENV/bin/python $REPO/benchmarks/run.py --only io"
