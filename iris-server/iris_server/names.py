"""Names the store accepts: model and alias names, version references, token scopes. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A Kubernetes DNS-1123 label: model names end up in object names, labels and file paths, so nothing else is
# safe.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)
# A model-name glob in a token's scope: DNS-label characters plus the wildcards * and ?.
SCOPE_PATTERN = r"^[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$"
_SCOPE = re.compile(SCOPE_PATTERN)
# A version reference in a URL: a version number, "latest", or an alias name.
VERSION_REF_PATTERN = r"^([1-9][0-9]{0,17}|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$"
LATEST = "latest"


def is_dns_label(name: str) -> bool:
    return bool(_DNS_LABEL.fullmatch(name))


def is_scope(glob: str) -> bool:
    return bool(_SCOPE.fullmatch(glob))


def is_alias(name: str) -> bool:
    """An alias is a DNS label that can never be mistaken for a version number or for "latest"."""
    return is_dns_label(name) and not name.isdigit() and name != LATEST


@dataclass(frozen=True)
class VersionRef:
    """What a URL's version segment names: exactly one of a number, the newest version, or an alias."""

    number: int | None = None
    alias: str | None = None

    @property
    def latest(self) -> bool:
        return self.number is None and self.alias is None

    def __str__(self) -> str:
        return str(self.number) if self.number is not None else self.alias or LATEST


def parse_version_ref(text: str) -> VersionRef:
    """Raises ValueError with a message fit for the caller when `text` is none of the three forms."""
    if text == LATEST:
        return VersionRef()
    if text.isdigit() and text[0] != "0" and len(text) <= 18:
        return VersionRef(number=int(text))
    if is_alias(text):
        return VersionRef(alias=text)
    raise ValueError(f"version must be a number >= 1, 'latest' or an alias name (a DNS label); got {text!r}")
