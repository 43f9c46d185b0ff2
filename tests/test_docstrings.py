"""Every public name has a numpydoc docstring (the API pages are generated from them)."""

import importlib
import inspect

import pytest

MODULES = [
    "jwst_embed",
    "jwst_embed.bands",
    "jwst_embed.io",
    "jwst_embed.preprocessing",
    "jwst_embed.simulation",
    "jwst_embed.models",
    "jwst_embed.training",
    "jwst_embed.training.recipes",
    "jwst_embed.weights",
    "jwst_embed.devices",
    "jwst_embed.embedder",
    "jwst_embed.baselines",
    "jwst_embed.predictions",
    "jwst_embed.prediction_tables",
    "jwst_embed.inference",
    "jwst_embed.similarity",
    "jwst_embed.simulation.export",
    "jwst_embed.cli",
    "jwst_embed.demo",
    "jwst_embed.tuning",
    "jwst_embed.tuning.labels",
    "jwst_embed.tuning.heads",
    "jwst_embed.evaluation",
    "jwst_embed.metrics",
    "jwst_embed.survey_file",
]


def _public_callables():
    seen = set()
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and id(obj) not in seen:
                seen.add(id(obj))
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize("qualname, obj", list(_public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_has_numpydoc_docstring(qualname, obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc.split()) >= 3, f"{qualname} has no docstring"
    if inspect.isfunction(obj):
        parameters = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
        if parameters:
            assert "Parameters\n----------" in doc, f"{qualname} does not document its parameters"
