"""Which feed a connection (and a message on it) comes from: its address, its TLS client certificate, then the
message's MSH-3/MSH-4 and type; never a guess between two organisations (a message filed under the wrong
organisation is a wrong-source record)."""

import hashlib

import pytest

from feeds import identify
from feeds.models import Feed
from feeds.receive import hash_secret
from tests import factories

pytestmark = pytest.mark.django_db

CERT = hashlib.sha256(b"a client certificate").hexdigest()
ADT = "MSH|^~\\&|EPIC|UCLH|CARERECORD|LCR|20240301101500||ADT^A01^ADT_A01|1001|P|2.4\rEVN|A01|20240301101500\r"
ORU = "MSH|^~\\&|WINPATH|UCLH LAB|CARERECORD|LCR|20240301101500||ORU^R01|2001|P|2.4\rPID|||123\r"


def feed(organisation=None, **fields) -> Feed:
    fields.setdefault("name", "a feed")
    return Feed.objects.create(organisation=organisation or factories.OrganisationFactory(), **fields)


def test_an_address_on_the_list_names_its_feed():
    expected = feed(allowed_addresses="10.1.2.3\n")
    assert identify.feed_for("10.1.2.3") == expected
    assert identify.feed_for("10.1.2.4") is None


def test_networks_comments_and_ipv4_mapped_peers():
    expected = feed(allowed_addresses="# UCLH integration engines\n10.20.0.0/16  # Rhapsody\n\n2001:db8::/32\n")
    assert identify.feed_for("10.20.99.1") == expected
    assert identify.feed_for("::ffff:10.20.99.1") == expected  # a dual-stack listener's view of an IPv4 peer
    assert identify.feed_for("2001:db8::7") == expected
    assert identify.feed_for("10.21.0.1") is None
    assert identify.feed_for("") is None
    assert identify.feed_for("not an address") is None


def test_an_unreadable_address_list_opens_the_feed_to_no_one():
    feed(allowed_addresses="10.0.0.1\nten dot zero\n")
    assert identify.feed_for("10.0.0.1") is None
    with pytest.raises(ValueError, match="ten dot zero"):
        identify.networks("10.0.0.1\nten dot zero")


def test_a_feed_with_no_condition_matches_nothing():
    feed()
    assert identify.feed_for("127.0.0.1") is None


@pytest.mark.hazard("H-17")
def test_a_secret_only_feed_is_named_by_a_message_carrying_its_secret():
    expected = feed(shared_secret_hash=hash_secret("s3cret-from-ig"))
    assert identify.feed_for("192.0.2.1") == expected  # the connection alone: it may be
    assert identify.feed_for("192.0.2.1", message=ADT.replace("||ADT^A01", "|s3cret-from-ig|ADT^A01")) == expected
    assert identify.feed_for("192.0.2.1", message=ADT.replace("||ADT^A01", "|guess|ADT^A01")) is None
    assert identify.feed_for("192.0.2.1", message=ADT) is None


def test_a_feed_named_by_its_address_is_named_whatever_msh8_says():
    """receive() then keeps the message and refuses it (AR), which IG can see."""
    expected = feed(allowed_addresses="10.0.0.5", shared_secret_hash=hash_secret("s3cret-from-ig"))
    assert identify.feed_for("10.0.0.5", message=ADT) == expected


def test_the_certificate_must_be_the_one_configured():
    expected = feed(client_certificate_sha256=CERT.upper())
    assert identify.feed_for("192.0.2.1", CERT) == expected
    assert identify.feed_for("192.0.2.1", ":".join(CERT[i : i + 2] for i in range(0, 64, 2))) == expected
    assert identify.feed_for("192.0.2.1", hashlib.sha256(b"another").hexdigest()) is None
    assert identify.feed_for("192.0.2.1") is None  # no TLS, no certificate


def test_address_and_certificate_both_hold_when_both_are_set():
    expected = feed(allowed_addresses="10.0.0.0/8", client_certificate_sha256=CERT)
    assert identify.feed_for("10.1.1.1", CERT) == expected
    assert identify.feed_for("192.0.2.1", CERT) is None
    assert identify.feed_for("10.1.1.1") is None


@pytest.mark.hazard("H-17")
def test_one_engine_two_feeds_of_one_trust_told_apart_by_msh():
    trust = factories.OrganisationFactory(ods_code="RRV")
    adt = feed(trust, name="Epic ADT", allowed_addresses="10.0.0.5", sending_application="EPIC")
    lab = feed(trust, name="WinPath", allowed_addresses="10.0.0.5", sending_application="WINPATH")
    assert identify.feed_for("10.0.0.5", message=ADT) == adt
    assert identify.feed_for("10.0.0.5", message=ORU.encode()) == lab
    assert identify.feed_for("10.0.0.5", message="MSH|^~\\&|OTHER|X|||||ADT^A01|1|P|2.4") is None


def test_a_feed_naming_the_facility_wins_over_one_naming_none():
    trust = factories.OrganisationFactory()
    anything = feed(trust, allowed_addresses="10.0.0.5")
    lab = feed(trust, allowed_addresses="10.0.0.5", sending_facility="uclh lab")
    assert identify.feed_for("10.0.0.5", message=ORU) == lab
    assert identify.feed_for("10.0.0.5", message=ADT) == anything


def test_the_feed_accepting_the_type_wins_within_one_trust():
    trust = factories.OrganisationFactory()
    feed(trust, allowed_addresses="10.0.0.5", message_types="ADT^A01,ADT^A03")
    lab = feed(trust, allowed_addresses="10.0.0.5", message_types="ORU^R01")
    assert identify.feed_for("10.0.0.5", message=ORU) == lab


def test_an_active_feed_wins_and_an_inactive_one_is_still_named():
    """An inactive feed's messages reach receive(), which keeps and refuses them (AR)."""
    trust = factories.OrganisationFactory()
    old = feed(trust, allowed_addresses="10.0.0.5", active=False)
    assert identify.feed_for("10.0.0.5", message=ADT) == old
    new = feed(trust, allowed_addresses="10.0.0.5")
    assert identify.feed_for("10.0.0.5", message=ADT) == new


def test_the_more_specific_connection_wins():
    trust = factories.OrganisationFactory()
    feed(trust, allowed_addresses="10.0.0.0/8")
    both = feed(trust, allowed_addresses="10.0.0.0/8", client_certificate_sha256=CERT)
    assert identify.feed_for("10.0.0.5", CERT, ADT) == both


@pytest.mark.hazard("H-17")
def test_two_organisations_fitting_alike_are_refused_never_guessed():
    """A regional engine forwarding for two trusts from one address: without MSH-4 telling them apart, no feed."""
    feed(factories.OrganisationFactory(), allowed_addresses="10.0.0.9")
    feed(factories.OrganisationFactory(), allowed_addresses="10.0.0.9")
    assert identify.feed_for("10.0.0.9", message=ADT) is None
    assert identify.feed_for("10.0.0.9") is None


def test_two_organisations_told_apart_by_the_sending_facility():
    first = feed(factories.OrganisationFactory(), allowed_addresses="10.0.0.9", sending_facility="UCLH")
    feed(factories.OrganisationFactory(), allowed_addresses="10.0.0.9", sending_facility="WHITTINGTON")
    assert identify.feed_for("10.0.0.9", message=ADT) == first


@pytest.mark.parametrize(
    "raw",
    [b"", b"garbage", b"\xff\xfe\x00MSH", "MSH", "MSH|", "MSH|^~\\&", "PID|1\rMSH|^~\\&|EPIC", "\x0b\x1c"],
)
def test_an_unreadable_header_names_nothing_and_never_raises(raw):
    assert not identify.header(raw).get("type")
    expected = feed(allowed_addresses="10.0.0.5")
    assert identify.feed_for("10.0.0.5", message=raw) == expected  # the connection still names the feed


def test_header_reads_msh():
    assert identify.header(ADT) == {"application": "EPIC", "facility": "UCLH", "type": "ADT^A01", "security": ""}
    assert identify.header(ORU.replace("\r", "\n"))["facility"] == "UCLH LAB"


def test_fingerprint_is_compared_as_plain_hex():
    assert identify.fingerprint("AB:cd 01") == "abcd01"
    assert identify.fingerprint(None) == ""
