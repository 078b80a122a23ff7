"""edge-deeplab: DeepLab semantic segmentation for phones, Coral/EdgeTPU boards and laptops.

``edge_deeplab.load(model)`` returns a segmenter (see :mod:`edge_deeplab.api`); ``edge_deeplab.evaluate``
scores a model on a dataset folder; what they raise for bad input derives from ``edge_deeplab.EdgeDeeplabError``.
All are imported on first use, so ``import edge_deeplab`` stays cheap.
"""
from pathlib import Path as _Path

__version__ = "0.1.0"

# In the source tree, edge_deeplab.converters/.runtimes/.calibration live beside this folder (setup.cfg
# maps them in). Python run from the repo root imports this folder rather than the installed package,
# so look for them there too; an installed package holds them inside and skips this.
_SOURCE_ROOT = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "runtimes").is_dir() and (_SOURCE_ROOT / "runtimes" / "base.py").is_file():
    __path__.append(str(_SOURCE_ROOT))

_LAZY = {"load": "api", "ImageSegmenter": "api", "AspectMatchedSegmenter": "api", "Result": "api", "Smoothing": "temporal",
         "evaluate": "evaluation", **dict.fromkeys(("EdgeDeeplabError", "BadImageError", "BadModelError",
                                                    "DatasetError", "MissingExtraError"), "errors")}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"edge_deeplab.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edge_deeplab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
