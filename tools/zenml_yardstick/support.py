"""Name lookups for ZenML test files rewritten by run.py (copied into the
yardstick's scratch folder; never imported by artifactfs or its suite).

``resolve(module, name)`` gives ZenML's own object when the yardstick runs
under ZenML (``ZENML_YARDSTICK_SIDE=zenml``) and, here, the object that
``tests/zenml_compat/zenml_shim.py`` maps the name to. A name neither offers
becomes a ``Missing`` that fails the test using it, not the file's import.
ZenML's test-harness helpers (``tests.integration.functional.conftest``'s
steps, ``tests.integration.functional.utils.sample_name``) are our own
re-creations, built on the side's ``step`` and ``pipeline``. Any other
``tests.*`` helper (``tests.unit.test_general``'s ``_test_materializer``) is
taken from that file when it was brought in the same version folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import string
import sys
import types

SIDE = os.environ.get("ZENML_YARDSTICK_SIDE", "here")


class Missing:
    """A ZenML name this side does not offer: using it fails the test."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, attr: str) -> "Missing":
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Missing(f"{self._what}.{attr}")

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"{SIDE} offers no {self._what}")

    def __getitem__(self, key):
        return Missing(f"{self._what}[{key!r}]")

    def __iter__(self):
        raise NotImplementedError(f"{SIDE} offers no {self._what}")

    def __mro_entries__(self, bases):
        return (object,)

    def __repr__(self) -> str:
        return f"<missing {self._what}>"


def _shim():
    mod = sys.modules.get("zenml_shim")
    if mod is None:
        spec = importlib.util.spec_from_file_location("zenml_shim", os.environ["ZENML_YARDSTICK_SHIM"])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["zenml_shim"] = mod
        spec.loader.exec_module(mod)
    return mod


def resolve(module: str, name: str):
    """The object ``from <module> import <name>`` stands for on this side."""
    if module == "tests" or module.startswith("tests."):
        return _helper(module, name)
    if SIDE == "zenml":
        # A name this ZenML lacks (a file version written for another ZenML)
        # fails the tests that use it, not the whole file: same rule as here.
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return Missing(f"{module}.{name} (no such module in this ZenML)")
        try:
            return getattr(mod, name)
        except AttributeError:
            try:
                return importlib.import_module(f"{module}.{name}")
            except ImportError:
                return Missing(f"{module}.{name} (not in this ZenML)")
    try:
        return getattr(_shim(), name)
    except AttributeError:
        return Missing(f"{module}.{name}")


class _ModuleProxy(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return resolve(self.__name__, attr)


def resolve_module(module: str):
    """The object ``import <module>`` binds on this side."""
    if SIDE == "zenml" and not module.startswith("tests"):
        return importlib.import_module(module)
    return _ModuleProxy(module)


# ---------------------------------------------------- ZenML's test helpers
# Module-level, as ZenML loads a step again by its module and name.

_step = resolve("zenml", "step")


@_step
def constant_int_output_test_step() -> int:
    return 7


@_step
def int_plus_one_test_step(input: int) -> int:
    return input + 1


def sample_name(prefix: str = "aria") -> str:
    """A random entity name (ZenML's tests use one per created entity)."""
    return f"{prefix}-{''.join(random.choices(string.ascii_lowercase, k=16))}"


def connected_two_step_pipeline(step_1, step_2):
    """A pipeline named ``connected_two_step_pipeline`` feeding step_1's output to step_2."""
    pipeline = resolve("zenml", "pipeline")

    @pipeline(name="connected_two_step_pipeline")
    def _connected():
        step_2(step_1())

    return _connected


_HELPERS = {
    "constant_int_output_test_step": constant_int_output_test_step,
    "int_plus_one_test_step": int_plus_one_test_step,
    "sample_name": sample_name,
}


def _helper(module: str, name: str):
    if name in _HELPERS:
        return _HELPERS[name]
    brought = _brought_module(module)
    if brought is not None and hasattr(brought, name):
        return getattr(brought, name)
    return Missing(f"{module}.{name} (no re-creation in support.py, nor brought with the files)")


def _brought_module(module: str):
    """The brought test file ``module`` names (``tests.unit.test_general``),
    from the same version folder as the file importing it: run.py copies it as
    ``<stem>__<version>.py`` next to that file, rewritten the same way, so a
    ZenML test helper runs on the side under test (ZenML's or artifactfs's)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    caller = (frame.f_globals.get("__file__") or "") if frame is not None else ""
    stem, sep, version = os.path.splitext(os.path.basename(caller))[0].rpartition("__")
    if not sep:
        return None
    wanted = f"{module.rsplit('.', 1)[-1]}__{version}"
    if not os.path.exists(os.path.join(os.path.dirname(caller), wanted + ".py")):
        return None
    return importlib.import_module(wanted)
