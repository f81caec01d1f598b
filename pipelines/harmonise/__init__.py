"""Harmonise stage: raw feed tables -> harmonised victim and offender records, or quarantine.

``Harmonise`` (``transform``) is the stage's PTransform; ``engine.harmonise`` interprets a feed
contract with the vectorised normalisers of this package (names, documents, dates, ages, places,
countries, offences, references, lookups). Only ``transform`` imports Apache Beam.
"""
