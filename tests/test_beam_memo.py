"""pipelines.core.beam_memo: Beam's remembered look-ups answer as Beam's own do."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions, TypeOptions

from pipelines.core import beam_memo


class _Stateful(beam.DoFn):
    BAG = beam.transforms.userstate.BagStateSpec("bag", beam.coders.StrUtf8Coder())

    def process(self, element, bag=beam.DoFn.StateParam(BAG), *rest, key=None):
        yield element


def _helper(a, b=2, *args, c=3, **kw):
    return a


def test_arguments_are_beams_and_each_call_gets_its_own_lists():
    dofn, other = _Stateful(), _Stateful()
    for f in (dofn.process, other.process, dofn.setup, _helper, len, str.strip, lambda x, y=1: x):
        assert beam_memo.get_function_args_defaults(f) == beam_memo._signature_args(f)
    args, defaults = beam_memo.get_function_args_defaults(dofn.process)
    args.append("mutated")
    defaults.clear()
    assert beam_memo.get_function_args_defaults(other.process) == (["element", "bag"], [_Stateful.process.__defaults__[0]])
    assert beam.transforms.userstate.is_stateful_dofn(dofn)
    assert not beam.transforms.userstate.is_stateful_dofn(beam.Map(_helper).fn)


def test_views_share_the_options_and_follow_a_replaced_store():
    options = PipelineOptions(["--runner=FnApiRunner", "--experiments=a"])
    view = options.view_as(StandardOptions)
    assert options.view_as(StandardOptions) is view and view.runner == "FnApiRunner"
    view.runner = "DirectRunner"  # written through one view, read through the others
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.view_as(DebugOptions).experiments == ["a"]
    assert options.view_as(TypeOptions).pipeline_type_check is True
    assert PipelineOptions(["--runner=FnApiRunner"]).view_as(StandardOptions).runner == "FnApiRunner"
    options._all_options = dict(options._all_options, runner="Other")
    assert options.view_as(StandardOptions).runner == "Other"
