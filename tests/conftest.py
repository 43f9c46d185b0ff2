"""Shared fixtures: the real JWST example files live in ../shared/real beside the checkout."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REAL_DIR = Path(os.environ.get("JWST_EMBED_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "real"))

REAL_SPECTRA = {
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits": 2.6732,
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00188208_clear-prism_v1.0_x1d.fits": 2.6925,
    "ceers-1345_933.spec.fits": 4.2341,
    "canucs-1208_458.spec.fits": 3.65,
    "199773_prism_clear_v5.0_1D.fits": 2.8204,
    "023286_prism_clear_v5.1_1D.fits": 1.7805,
}
JADES_HLSP = [name for name in REAL_SPECTRA if name.startswith("hlsp_jades")]


# Tests marked ``slow`` are skipped unless ``--slow`` is given (pytest-skip-slow, part of
# pytest-astropy); GPU tests skip themselves when CUDA is absent.


@pytest.fixture(scope="session")
def real_dir():
    if not REAL_DIR.is_dir():
        pytest.skip(f"real JWST examples not found at {REAL_DIR} (set JWST_EMBED_REAL_DATA)")
    return REAL_DIR


@pytest.fixture(scope="session")
def benchmark_script():
    """``load(name)``: import ``benchmarks/<name>.py`` (with ``benchmarks/`` on the path for its helpers)."""
    folder = Path(__file__).resolve().parents[1] / "benchmarks"

    def load(name: str):
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(folder))
        return module

    return load
