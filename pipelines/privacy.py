"""Data protection: zones, the pseudonymisation key, and keyed pseudonyms.

Three zones (``pipelines.core.zones`` labels every output folder with exactly one):

* ``restricted``: names, document numbers, birth dates. Only inside the linkage stage and under
  ``restricted/``.
* ``pseudonymised``: harmonised records, persons, quarantine (no values) and the manifest. Person
  ids are keyed pseudonyms: HMAC-SHA256 with a secret key, stable across runs with the same key,
  useless to anyone without it.
* ``public``: aggregate tables only, small cells suppressed (``pipelines.public``).

The key comes from ``CONCILIA_PSEUDONYM_KEY``, a key file, or Google Secret Manager
(``CONCILIA_PSEUDONYM_KEY_SECRET``, gcp extra). Without one a run refuses to start unless the
operator asks for the demo key, which is public and marks every output it touches as demo.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import unicodedata
from dataclasses import dataclass, field

import pyarrow as pa

from pipelines.core.vector import as_string, map_unique
from pipelines.core.zones import ZONE_NAMES

log = logging.getLogger(__name__)

ENV_KEY = "CONCILIA_PSEUDONYM_KEY"
ENV_KEY_FILE = "CONCILIA_PSEUDONYM_KEY_FILE"
ENV_KEY_SECRET = "CONCILIA_PSEUDONYM_KEY_SECRET"  # projects/P/secrets/S[/versions/V]
MIN_KEY_BYTES = 32
# Public on purpose: anyone can recompute demo pseudonyms, so demo outputs are marked as such.
DEMO_KEY = b"concilia-demo-key: public, not secret, never for real data"
PSEUDONYM_HEX = 32  # 128 bits of the HMAC: collisions are negligible at national scale


class KeyUnavailable(ValueError):
    """No usable pseudonymisation key. The message names where a key may come from, never a key."""


@dataclass
class PseudonymKey:
    """The secret and where it came from. ``repr`` and pickles never carry a Secret Manager secret."""

    source: str  # env | file | secret_manager | demo | given
    secret: bytes | None = field(default=None, repr=False)
    secret_name: str | None = None  # Secret Manager resource, fetched again on each worker

    @property
    def demo(self) -> bool:
        return self.source == "demo"

    def material(self) -> bytes:
        if self.secret is None and self.secret_name:
            self.secret = _fetch_secret(self.secret_name)
        if self.secret is None:
            raise KeyUnavailable("the pseudonymisation key has no material")
        return self.secret

    @property
    def fingerprint(self) -> str:
        """Names the key in manifests (two runs with the same fingerprint used the same key)."""
        return hmac.new(self.material(), b"concilia key fingerprint", hashlib.sha256).hexdigest()[:12]

    def describe(self) -> dict:
        return {"source": self.source, "demo": self.demo, "fingerprint": self.fingerprint}

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.secret_name:  # workers fetch it themselves; the job graph never holds it
            state["secret"] = None
        return state


def demo_key() -> PseudonymKey:
    return PseudonymKey(source="demo", secret=DEMO_KEY)


def _check(secret: bytes, where: str) -> bytes:
    secret = secret.strip()
    if len(secret) < MIN_KEY_BYTES:
        raise KeyUnavailable(f"the pseudonymisation key from {where} is shorter than {MIN_KEY_BYTES} bytes")
    if secret == DEMO_KEY:
        raise KeyUnavailable(f"the key from {where} is the public demo key; use --demo-key to run in demo mode")
    return secret


def _fetch_secret(name: str) -> bytes:
    try:
        from google.cloud import secretmanager  # optional: the gcp extra
    except ImportError:
        raise KeyUnavailable(
            f"{ENV_KEY_SECRET} is set but google-cloud-secret-manager is not installed (install the gcp extra)"
        ) from None
    if "/versions/" not in name:
        name = f"{name.rstrip('/')}/versions/latest"
    try:
        response = secretmanager.SecretManagerServiceClient().access_secret_version(name=name)
    except Exception as exc:  # the client raises many google.api_core types
        raise KeyUnavailable(f"cannot read the key from Secret Manager ({exc.__class__.__name__})") from None
    return _check(response.payload.data, "Secret Manager")


def resolve_key(key_file: str | None = None, demo: bool = False, secret_name: str | None = None,
                environ: dict | None = None) -> PseudonymKey:
    """The run's key: demo (explicit), a key file, Secret Manager, or the environment, in that order."""
    env = os.environ if environ is None else environ
    if demo:
        log.info("DEMO MODE: pseudonyms use the public demo key; outputs are marked as demo")
        return demo_key()
    key_file = key_file or env.get(ENV_KEY_FILE)
    if key_file:
        try:
            with open(key_file, "rb") as fh:
                return PseudonymKey(source="file", secret=_check(fh.read(), "the key file"))
        except OSError as exc:
            raise KeyUnavailable(f"cannot read the key file ({exc.__class__.__name__})") from None
    secret_name = secret_name or env.get(ENV_KEY_SECRET)
    if secret_name:
        key = PseudonymKey(source="secret_manager", secret_name=secret_name)
        key.material()
        return key
    if env.get(ENV_KEY):
        return PseudonymKey(source="env", secret=_check(env[ENV_KEY].encode("utf-8"), ENV_KEY))
    raise KeyUnavailable(
        f"no pseudonymisation key: set {ENV_KEY}, pass --key-file, set {ENV_KEY_SECRET} (Secret Manager), "
        "or run the public demo with --demo-key"
    )


def as_key_bytes(key: bytes | PseudonymKey) -> bytes:
    return key.material() if isinstance(key, PseudonymKey) else bytes(key)


def normalise_identifier(value: str) -> str | None:
    """NFKC, trimmed, inner whitespace collapsed, upper case: the same id written twice hashes once."""
    text = " ".join(unicodedata.normalize("NFKC", value).split()).upper()
    return text or None


def pseudonymise(values: pa.Array | pa.ChunkedArray, key: bytes | PseudonymKey, namespace: str) -> pa.Array:
    """Keyed pseudonyms: hex HMAC-SHA256(key, namespace | normalised identifier), per distinct value.

    ``namespace`` separates uses ("person:victim", "document"...): the same identifier gives
    unrelated pseudonyms in different namespaces. Nulls and blank identifiers stay null.
    """
    # the keyed state after the namespace, copied per value: HMAC's key set-up paid once, not per value
    keyed = hmac.new(as_key_bytes(key), namespace.encode("utf-8") + b"\x1f", hashlib.sha256)

    def one(value: str) -> str | None:
        ident = normalise_identifier(value)
        if ident is None:
            return None
        mac = keyed.copy()
        mac.update(ident.encode("utf-8"))
        return mac.hexdigest()[:PSEUDONYM_HEX]

    return map_unique(as_string(values), one, pa.string())


def mark_schema(schema: pa.Schema, zone: str, key: PseudonymKey | None) -> pa.Schema:
    """Parquet schema metadata saying the zone and the key (demo or fingerprint) of the file."""
    if zone not in ZONE_NAMES:
        raise ValueError(f"unknown zone {zone!r}")
    extra = {"concilia.zone": zone}
    if key is not None:
        extra["concilia.pseudonym_key"] = "demo" if key.demo else key.fingerprint
        extra["concilia.demo"] = "true" if key.demo else "false"
    return schema.with_metadata({**(schema.metadata or {}), **{k.encode(): v.encode() for k, v in extra.items()}})
