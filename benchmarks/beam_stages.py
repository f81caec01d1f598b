"""Run a ``concilia`` (or Flex Template) command with the in-process runner's stage log on.

FnApiRunner logs each bundle it starts at DEBUG ("Running bundle for stage ..."); this turns that
one logger on, shortened to the stage's first transform names, so that ``tree_probe.py``'s
memory timeline can be read stage by stage. ``python benchmarks/beam_stages.py run --feeds ...``
runs ``concilia run ...``; ``python benchmarks/beam_stages.py flex --feeds ...`` the template.
"""

from __future__ import annotations

import logging
import re
import sys

BUNDLES = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"


class _StageName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Running bundle for stage"):
            return False
        stage = str(record.args[0]) if record.args else "?"
        record.msg, record.args = "beam stage: %s", (stage_label(stage),)
        return True


def stage_label(stage: str) -> str:
    """A fused stage's name, shortened to the distinct transforms it runs (their first three path parts)."""
    names = re.findall(r"ref_AppliedPTransform_([^)+]+?)_\d+\)|\(([A-Za-z][^()+]*?)/", stage)
    parts = []
    for applied, read in names:
        label = "/".join((applied.replace("-", "/") if applied else read).split("/")[:3])
        if label not in parts:
            parts.append(label)
    return " + ".join(parts)[:300] or stage[:300]


def main(argv: list[str]) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_StageName())
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    bundles = logging.getLogger(BUNDLES)
    bundles.setLevel(logging.DEBUG)
    bundles.addHandler(handler)
    bundles.propagate = False
    if argv[:1] == ["flex"]:
        from pipelines.service.flex import template_main

        return template_main(argv[1:]) or 0
    from pipelines.cli import main as concilia

    # the CLI configures the root logger; this logger keeps its own handler and level
    return concilia(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
