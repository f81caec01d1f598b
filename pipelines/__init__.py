"""Concilia: reconciles Peru's separate agency feeds of trafficking victims and offenders.

One module per pipeline stage (read, harmonise, link, reconcile, publish), each exposing one
named PTransform; agency knowledge lives in ``schemas/feeds/<agency>/`` as data.
"""

__version__ = "0.1.0"
