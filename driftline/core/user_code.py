"""A project's own Python code, run from the source a model or a params object carries.

A module is compiled from its text into a module of its own, named by the text's digest, so two
versions of one file (a champion and its challenger) live side by side in one process. Its
classes and functions are pickled by value (cloudpickle), so a fitted model built from them
loads in a process that has never seen the project: a model server started elsewhere, a Dask
worker on another machine.
"""

from __future__ import annotations

import hashlib
import sys
import types


def module(source: str, name: str) -> types.ModuleType:
    """The module `name` compiled from `source` (once per process and text)."""
    import cloudpickle

    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    qualified = f"driftline_user_{digest}.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    made = types.ModuleType(qualified)
    made.__file__ = f"{name.replace('.', '/')}.py (carried by the model)"
    sys.modules[qualified] = made  # dataclasses and pickling look a module up by name
    try:
        exec(compile(source, made.__file__, "exec"), made.__dict__)
    except BaseException:
        del sys.modules[qualified]
        raise
    cloudpickle.register_pickle_by_value(made)
    return made


def function(source: str, name: str, attribute: str):
    return getattr(module(source, name), attribute)
