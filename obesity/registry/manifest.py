"""What a registered version may serve, bound at registration: a manifest of the SHA-256 of every
file the service loads (the skops model, the ONNX twin, the model card), signed with Ed25519.

Tags alone prove nothing: anyone who can write to the registry can set `onnx=verified` beside a
hand-made file. The manifest is written once the files were checked (skops types reviewed, the
twin verified on the test split, the card written) and, with `registry.signing_key`, signed by a
private key that only the registering process holds. The service and `promote` verify it with
`registry.verify_key` (the public key) before loading anything, and refuse with the reason.
Without a verify key the hashes are still compared, but the manifest itself is only as trusted as
the registry's tags: the service says so (`unsigned`) at start and in `GET /model`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obesity.config.schemas import RegistryConfig
from obesity.errors import ConfigError, ModelRefused

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
TAG = "manifest"  # version tag: the manifest's JSON
SIGNATURE_TAG = "manifest_signature"  # base64 Ed25519 signature of the manifest's exact bytes
KEY_TAG = "manifest_key"  # the signing key's id (its public key's SHA-256, 16 hex digits)
MODEL, ONNX, CARD = "model", "onnx", "card"  # the files a manifest may bind


@dataclass(frozen=True)
class Integrity:
    """How far a loaded version's files are vouched for (`GET /model`'s `integrity`)."""

    status: str  # signed | unsigned | unbound
    detail: str
    files: dict[str, dict[str, str]]  # role -> {"path", "sha256"}; empty when unbound


def _private_key(path: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"registry.signing_key={path}: not a readable PEM private key "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"registry.signing_key={path}: an Ed25519 key is expected "
                          "(python -m obesity.registry keygen DIR makes one)")
    return key


def _public_key(path: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"registry.verify_key={path}: not a readable PEM public key "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"registry.verify_key={path}: an Ed25519 public key is expected")
    return key


def key_id(public_key: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(folder: Path) -> tuple[Path, Path]:
    """A new key pair in `folder`: signing.pem (private, mode 0600: for the process that
    registers) and verify.pem (public: for services and promotion)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private, public = folder / "signing.pem", folder / "verify.pem"
    if private.exists() or public.exists():
        raise ConfigError(f"{folder} holds a key already: never overwritten (remove it first)")
    key = Ed25519PrivateKey.generate()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        private.touch(mode=0o600)
        private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        public.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                         PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise ConfigError(f"{folder}: the key pair cannot be written there "
                          f"({exc.strerror or exc})") from None
    return private, public


def encode(name: str, version: str, run_id: str, files: dict[str, dict[str, str]]) -> str:
    """The manifest's one canonical text (what is signed)."""
    body = {"name": name, "version": str(version), "run_id": run_id, "files": files}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def check_signing_key(reg: RegistryConfig) -> None:
    """ConfigError now, before anything is registered, when the signing key cannot sign."""
    if reg.signing_key:
        _private_key(str(reg.signing_key))


def record(client: MlflowClient, reg: RegistryConfig, version: ModelVersion,
           files: dict[str, dict[str, str]]) -> str:
    """Tag `version` with the manifest of `files` (role -> path, sha256), signed when
    `reg.signing_key` is set. Returns the status: signed | unsigned."""
    text = encode(version.name, version.version, version.run_id, files)
    tags = {TAG: text}
    if reg.signing_key:
        key = _private_key(str(reg.signing_key))
        tags[SIGNATURE_TAG] = base64.b64encode(key.sign(text.encode())).decode()
        tags[KEY_TAG] = key_id(key.public_key())
    for name, value in tags.items():
        client.set_model_version_tag(version.name, version.version, name, value)
    return "signed" if reg.signing_key else "unsigned"


def check(version: ModelVersion, reg: RegistryConfig) -> Integrity:
    """The version's manifest, verified as far as the config allows (ModelRefused with the
    reason when it fails: tampered, signed by another key, for another version, missing while a
    verify key is set)."""
    label = f"{version.name} version {version.version}"
    text = version.tags.get(TAG)
    if text is None:
        if reg.verify_key:
            raise ModelRefused(f"{label} has no signed manifest (registered before manifests, "
                               "or not by this framework) and registry.verify_key is set: "
                               "register its run again to bind its files")
        return Integrity("unbound", f"{label} has no manifest: only its skops file's types are "
                                    "checked, its ONNX twin is not trusted", {})
    try:
        body = json.loads(text)
        files = {role: {"path": str(f["path"]), "sha256": str(f["sha256"])}
                 for role, f in body["files"].items()}
        same = (body["name"], str(body["version"]), body["run_id"]) == (
            version.name, str(version.version), version.run_id)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelRefused(f"{label}: its manifest is not one this framework writes") from None
    if not same:
        raise ModelRefused(f"{label}: its manifest is for {body.get('name')} version "
                           f"{body.get('version')} (run {body.get('run_id')})")
    if MODEL not in files:
        raise ModelRefused(f"{label}: its manifest binds no model file")
    if not reg.verify_key:
        return Integrity("unsigned", "the files' hashes are checked against the version's "
                                     "manifest, but nothing proves who wrote it: set "
                                     "registry.verify_key to refuse unsigned models", files)
    public = _public_key(str(reg.verify_key))
    signature = version.tags.get(SIGNATURE_TAG)
    if not signature:
        raise ModelRefused(f"{label}: its manifest is not signed and registry.verify_key is set")
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(base64.b64decode(signature, validate=True), text.encode())
    except (InvalidSignature, ValueError):
        raise ModelRefused(f"{label}: its manifest's signature does not verify with "
                           f"registry.verify_key (key {key_id(public)}): it was changed after "
                           "registration, or signed by another key") from None
    return Integrity("signed", f"manifest signed by key {key_id(public)}", files)


def expect(integrity: Integrity, role: str, path: Path, label: str) -> None:
    """ModelRefused unless the file at `path` is the one the manifest binds to `role` (a no-op
    for an unbound version)."""
    if integrity.status == "unbound":
        return
    bound = integrity.files.get(role)
    if bound is None:
        raise ModelRefused(f"{label}: its manifest binds no {role} file")
    from obesity.model.files import sha256

    found = sha256(path)
    if found != bound["sha256"]:
        raise ModelRefused(f"{label}: its {role} file ({bound['path']}) is not the one checked at "
                           f"registration (SHA-256 {found[:16]}…, manifest {bound['sha256'][:16]}…)")


def bind(client: MlflowClient, reg: RegistryConfig, version: ModelVersion) -> str:
    """Hash the files `version` will be served from (its checked skops file, its verified
    twin, its card) and record the manifest (see `record`). Called at registration, after the
    twin and the card were made and before any alias moves."""
    import tempfile

    from obesity.model import files as model_files
    from obesity.registry import card
    from obesity.registry.twin import ARTIFACT as ONNX_ARTIFACT

    label = f"{version.name} version {version.version}"
    version = client.get_model_version(version.name, version.version)  # its twin and card tags
    files: dict[str, dict[str, str]] = {}
    with model_files.checked_file(version.name, version.version) as skops_path:
        files[MODEL] = {"path": skops_path.name, "sha256": model_files.sha256(skops_path)}
    wanted = {ONNX: ONNX_ARTIFACT if version.tags.get("onnx") == "verified" else None,
              CARD: card.ARTIFACT if version.tags.get(card.TAG, "failed") != "failed" else None}
    with tempfile.TemporaryDirectory(prefix="obesity-manifest-") as tmp:
        for role, path in wanted.items():
            if path is not None:
                local = model_files.run_file(version.run_id, path, Path(tmp, role), label)
                files[role] = {"path": path, "sha256": model_files.sha256(local)}
    status = record(client, reg, version, files)
    log.info("%s: manifest of %s recorded (%s)", label, ", ".join(sorted(files)), status)
    return status


def verify_files(version: ModelVersion, reg: RegistryConfig) -> Integrity:
    """Every file the manifest of `version` binds, downloaded and compared, the skops file's
    types checked too: what `promote` (also --force) asks before moving the champion."""
    import tempfile

    from obesity.model import files as model_files

    label = f"{version.name} version {version.version}"
    integrity = check(version, reg)
    with model_files.checked_file(version.name, version.version) as skops_path:
        expect(integrity, MODEL, skops_path, label)
    with tempfile.TemporaryDirectory(prefix="obesity-manifest-") as tmp:
        for role, bound in integrity.files.items():
            if role != MODEL:
                local = model_files.run_file(version.run_id, bound["path"], Path(tmp, role), label)
                expect(integrity, role, local, label)
    return integrity
