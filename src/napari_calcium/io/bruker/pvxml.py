"""Low-level PrairieView XML reading: root sniffing, tolerant streaming parse, numbers.

PrairieView writes character references XML 1.0 forbids (``&#x1;``) and its main XML can be tens of
megabytes: files are parsed incrementally with those references blanked, and every failure becomes
our :class:`~napari_calcium.errors.MetadataError` naming the file.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ...errors import MetadataError

__all__ = ["ENV_ROOTS", "iterparse", "num", "sniff_root"]

ENV_ROOTS = ("Environment", "PVConfig")  # .env (PV 5), Config.cfg (PV 4)


def num(text: str | None, kind: type = float) -> Any:
    try:
        value = kind(text) if text is not None else None
    except (TypeError, ValueError):
        return None
    if kind is int and value is not None and not -(2**63) <= value < 2**63:
        return None  # garbage like "18446744073709551616": no int64 frame table holds it
    return value


def sniff_root(path: Path) -> str | None:
    """Root element name of an XML file from its first bytes (None if not XML / unreadable)."""
    try:
        if not path.is_file():  # a FIFO (or device) named .xml/.env would block open()
            return None
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    head = re.sub(rb"<\?.*?\?>|<!--.*?-->", b"", head.removeprefix(b"\xef\xbb\xbf"), flags=re.S)
    if head.lstrip().startswith(b"<!"):
        return "!DOCTYPE"  # DOCTYPE/ENTITY: PrairieView never writes them
    match = re.match(rb"<([A-Za-z_][\w.\-]*)", head.lstrip())
    return match.group(1).decode("ascii") if match else None


# character references XML 1.0 forbids; PrairieView writes &#x1; as a list separator
_BAD_REF = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[1-2]|1[4-9]|2[0-9]|3[01]));"
)


def _chunks(fh, size: int = 1 << 20):
    """The file in blocks, forbidden character references replaced by a space."""
    carry = b""
    while block := fh.read(size):
        data = carry + block
        cut = data.rfind(b"&")
        carry, data = (data[cut:], data[:cut]) if len(data) - cut < 16 else (b"", data)
        yield _BAD_REF.sub(b" ", data)
    yield _BAD_REF.sub(b" ", carry)


def iterparse(path: Path, roots: tuple[str, ...], what: str):
    """Start/end events of an XML file, with our errors for a wrong root or broken XML."""
    if sniff_root(path) == "!DOCTYPE":
        raise MetadataError(path, f"not a PrairieView {what}: it declares a DOCTYPE/entities")
    parser = ET.XMLPullParser(events=("start", "end"))
    root_seen = False
    try:
        with open(path, "rb") as fh:
            for chunk in itertools.chain(_chunks(fh), [None]):
                if chunk is None:
                    parser.close()
                else:
                    parser.feed(chunk)
                for event, elem in parser.read_events():
                    if not root_seen and elem.tag not in roots:
                        raise MetadataError(
                            path,
                            f"not a PrairieView {what}: root element is <{elem.tag}>, "
                            f"expected <{'> or <'.join(roots)}>",
                        )
                    root_seen = True
                    yield event, elem
    except MetadataError:
        raise
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding
        raise MetadataError(
            path, f"the {what} is malformed or cut short ({exc}); re-copy it from the rig"
        ) from None
    except OSError as exc:
        raise MetadataError(path, f"cannot read the {what} ({exc.strerror or exc})") from None
