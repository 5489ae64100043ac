"""Which configured feed a connection, and a message on it, comes from: the sending organisation is the feed's,
so getting this wrong files a hospital's messages under another (a wrong-source record). Fail closed.

A feed's connection conditions are its allowed addresses (IPs or CIDR networks, one a line) and its TLS client
certificate's SHA-256 fingerprint; when both are set both must hold. A feed with neither is recognised by its MSH-8
shared secret alone, so it is a candidate from any address, and a message names it only when its MSH-8 carries
that secret (a feed named by its address or certificate has its secret checked by `feeds.receive`, which keeps and
refuses a message without it); a feed with no condition at all (no address, certificate or secret) matches nothing.

Several feeds may fit one connection (one integration engine sending a trust's ADT and its laboratory's ORU, or a
regional engine forwarding for several trusts from one address): the message's MSH-3/MSH-4 decide among feeds that
name them, then an active feed over an inactive one (which receive() refuses, AR, keeping the message), then one
accepting the message's type, then the more specific connection conditions. Still several of different
organisations → None (ambiguous: refused, never guessed); of one organisation → the oldest feed.
"""

import ipaddress
import logging

import hl7

from . import segments
from .models import Feed
from .receive import secret_matches

logger = logging.getLogger(__name__)


def fingerprint(value: str | None) -> str:
    """A SHA-256 fingerprint as compared: lower-case hex, without the colons or spaces tools print it with."""
    return "".join(ch for ch in (value or "").lower() if ch in "0123456789abcdef")


def networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A feed's allowed addresses, one IP or CIDR network a line (blank lines and `#` comments ignored).
    Raises ValueError naming the line that is neither (admin's form shows it)."""
    found = []
    for line in (text or "").splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            found.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"Not an IP address or CIDR network: {entry!r}") from None
    return found


def _address(peer_address: str):
    """The peer's IP (an IPv4-mapped IPv6 address, as a dual-stack listener sees IPv4 peers, as IPv4), or None."""
    try:
        ip = ipaddress.ip_address((peer_address or "").split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if ip.version == 6 else ip


def _allows(feed: Feed, ip) -> bool:
    try:
        allowed = networks(feed.allowed_addresses)
    except ValueError as exc:  # kept out by admin's form; a bad line never opens the feed to anyone
        logger.warning("feed %s: allowed addresses unreadable (%s): no address matches it", feed.pk, exc)
        return False
    return ip is not None and any(ip.version == net.version and ip in net for net in allowed)


def conditions(feed: Feed) -> int:
    """How many connection conditions a feed sets (address, certificate): the more, the more specific."""
    return bool(feed.allowed_addresses.strip()) + bool(fingerprint(feed.client_certificate_sha256))


def fits(feed: Feed, peer_address: str, client_certificate_sha256: str | None = None) -> bool:
    """Whether a connection from this address, with this client certificate (if any), may be this feed's."""
    wanted = fingerprint(feed.client_certificate_sha256)
    if wanted and wanted != fingerprint(client_certificate_sha256):
        return False
    if feed.allowed_addresses.strip() and not _allows(feed, _address(peer_address)):
        return False
    return bool(conditions(feed) or feed.shared_secret_hash)


def header(message) -> dict[str, str]:
    """MSH-3, MSH-4 (first components), MSH-8 (security) and MSH-9 (type^event) of a raw message (only its MSH is
    parsed) or a parsed one; {} when there is no readable MSH (receive() answers that message)."""
    try:
        if not isinstance(message, hl7.Message):
            text = segments.normalise(message)
            message = hl7.parse(text.split("\r", 1)[0]) if text.startswith("MSH") else None
        if message is None or not segments.segment(message, "MSH"):
            return {}
        return {
            "application": segments.text(message, "MSH.3.1"),
            "facility": segments.text(message, "MSH.4.1"),
            "type": segments.message_type(message),
            "security": segments.text(message, "MSH.8"),
        }
    except Exception:  # an unreadable MSH identifies nothing; receive() answers the message
        return {}


def _names(expected: str, sent: str) -> int | None:
    """1 when the feed names this value, 0 when it names none (any), None when it names another."""
    if not expected.strip():
        return 0
    return 1 if expected.strip().casefold() == sent.strip().casefold() else None


def accepts(feed: Feed, message_type: str) -> bool:
    return message_type.upper() in {t.strip().upper() for t in feed.message_types.split(",") if t.strip()}


def feed_for(peer_address: str, client_certificate_sha256: str | None = None, message=None) -> Feed | None:
    """The feed this connection (and, when given, this message: raw or parsed) comes from, or None (unknown or
    ambiguous: answered AR by the listener, nothing stored, since no organisation can be named)."""
    msh = header(message) if message is not None else {}
    ranked = []
    for feed in Feed.objects.select_related("organisation").order_by("pk"):
        if not fits(feed, peer_address, client_certificate_sha256):
            continue
        if message is not None and not conditions(feed) and not secret_matches(feed, msh.get("security", "")):
            continue  # a feed known by its secret alone: the message must carry it
        application = _names(feed.sending_application, msh.get("application", "")) if msh else 0
        facility = _names(feed.sending_facility, msh.get("facility", "")) if msh else 0
        if application is None or facility is None:
            continue
        accepted = accepts(feed, msh["type"]) if msh.get("type") else False
        ranked.append(((application + facility, feed.active, accepted, conditions(feed)), feed))
    if not ranked:
        return None
    best = max(key for key, _ in ranked)
    chosen = [feed for key, feed in ranked if key == best]
    if len({feed.organisation_id for feed in chosen}) > 1:
        logger.warning(
            "connection from %s fits feeds %s of different organisations: refused as ambiguous",
            peer_address,
            ", ".join(str(feed.pk) for feed in chosen),
        )
        return None
    return chosen[0]
