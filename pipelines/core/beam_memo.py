"""Two look-ups Apache Beam repeats while it builds, translates and runs a graph, remembered.

Beam reads the signature of every method of every DoFn (``inspect.signature``) each time it asks
whether the DoFn keeps state: about 177,000 signatures for one run of this job's ~700 ParDos, a
fifth of a small run's CPU. It also re-parses the pipeline options with argparse at every
``view_as`` (5,000 per run). Both answers depend only on what they are keyed by here (the function
object; the options object, its flags and its option store), so they are computed once. Importing
this module installs both (``pipelines.pipeline`` does); a Beam without these functions is left
alone.
"""

from __future__ import annotations

import types
import weakref

from apache_beam.options import pipeline_options
from apache_beam.transforms import core

_signature_args = getattr(core, "get_function_args_defaults", None)
_view_as = getattr(pipeline_options.PipelineOptions, "view_as", None)
# a bound method's arguments (self left out) depend on its function alone, whatever it is bound to
_args_of_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_args_of_methods: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_function_args_defaults(f):
    """``core.get_function_args_defaults``, once per plain Python function (fresh lists each call)."""
    bound = isinstance(f, types.MethodType)
    function = f.__func__ if bound else f
    if not isinstance(function, types.FunctionType):  # builtins, partials, callables: as Beam does
        return _signature_args(f)
    known = _args_of_methods if bound else _args_of_functions
    if function not in known:
        known[function] = _signature_args(f)
    args, defaults = known[function]
    return list(args), list(defaults)


def view_as(self, cls):
    """``PipelineOptions.view_as``, once per options object and class while its flags and option
    store stay the same (a view only reads and writes that store)."""
    views = _views.setdefault(self, {})
    view = views.get(cls)
    if view is None or view._flags is not self._flags or view._all_options is not self._all_options:
        view = views[cls] = _view_as(self, cls)
    return view


if _signature_args is not None and _view_as is not None:
    core.get_function_args_defaults = get_function_args_defaults
    pipeline_options.PipelineOptions.view_as = view_as
