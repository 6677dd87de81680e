"""What a security team should do about an alert: recommended next steps per finding kind.

Why a table: the alert page, the API and ``alerts show`` must recommend the same things, and a team
reads a short, concrete list ("reset these passwords", "rotate the key", "ask the site to take it down,
here is its abuse contact") faster than it reasons from finding kinds.

Usage::

    next_steps({"record"}, fields={"email"}, with_password=True, host="paste.example")
    # [{"kind": "record", "step": "Reset the passwords ..."}, ..., {"kind": "takedown", ...}]
    abuse_contact("pastebin.com")   # 'https://pastebin.com/contact (subject: abuse report)'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from typing import Any

__all__ = ["ABUSE_CONTACTS", "STEPS", "abuse_contact", "next_steps"]

#: Where well-known sites take abuse and takedown reports (any other host: ``abuse@<host>``, RFC 2142).
ABUSE_CONTACTS: dict[str, str] = {
    "pastebin.com": "https://pastebin.com/contact (subject: abuse report)",
    "github.com": "https://support.github.com/contact/report-abuse",
    "gist.github.com": "https://support.github.com/contact/report-abuse",
    "gist.githubusercontent.com": "https://support.github.com/contact/report-abuse",
    "t.me": "abuse@telegram.org (or @notoscam in Telegram)",
    "telegram.org": "abuse@telegram.org",
    "discord.com": "https://dis.gd/request (Trust & Safety)",
    "reddit.com": "https://www.reddit.com/report",
    "ghostbin.com": "abuse@ghostbin.com",
}

#: One entry per finding kind (and a few record variants): what to do first.
STEPS: dict[str, str] = {
    "record-password": (
        "Reset the passwords of the affected accounts, end their sessions and API tokens, and check "
        "sign-in logs since the first sighting for use of these credentials."
    ),
    "record-payment": "Ask the card issuer or bank to block and reissue the affected cards or accounts.",
    "record-identity": (
        "Identity numbers leaked: follow the notification duty of your regulator (the GDPR gives 72 h) "
        "and offer the affected people identity-theft protection."
    ),
    "record": (
        "Tell the affected customers to expect targeted phishing, and check whether the records match "
        "one export or system (the record keys say which)."
    ),
    "secret": (
        "Rotate the key now (revoke it at the provider, issue a new one), then read the provider's audit "
        "log for use of the old key since the first sighting."
    ),
    "lookalike": (
        "Report the look-alike domain to its registrar and hosting provider, and block it in mail and web "
        "filters; warn staff if it serves a login page."
    ),
    "domain": "Find out which mailboxes of the domain are listed and whether passwords came with them.",
    "document": "Identify the document's owner and who had access; treat it as a confidential leak.",
    "keyword": "Read the posting to judge whether it concerns you; mark it a false positive if not.",
    "regex": "Check the matched values in the posting; rotate or revoke them if they are live.",
    "yara": "Check the matched content against the rule's intent; escalate as the rule's owner asks.",
}

_PAYMENT = frozenset({"card", "iban"})
_IDENTITY = frozenset({"cn_id", "ssn", "passport"})


def abuse_contact(host: str | None) -> str | None:
    """Where to ask for a takedown; None for a local file, an address or an onion service (no registrar)."""
    if not host:
        return None
    host = host.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if host.endswith(".onion") or host == "localhost":
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None
    except ValueError:
        pass
    if "." not in host:
        return None
    for known, contact in ABUSE_CONTACTS.items():
        if host == known or host.endswith("." + known):
            return contact
    return f"abuse@{host}"


def next_steps(
    kinds: Collection[str],
    *,
    fields: Collection[str] = (),
    with_password: bool = False,
    host: str | None = None,
) -> list[dict[str, Any]]:
    """The steps for an alert with these finding kinds (record fields and password flag refine records),
    ending with the takedown request and the site's abuse contact."""
    out: list[dict[str, Any]] = []
    found = set(fields)
    if "record" in kinds:
        if with_password:
            out.append({"kind": "record", "step": STEPS["record-password"]})
        if found & _PAYMENT:
            out.append({"kind": "record", "step": STEPS["record-payment"]})
        if found & _IDENTITY:
            out.append({"kind": "record", "step": STEPS["record-identity"]})
        out.append({"kind": "record", "step": STEPS["record"]})
    for kind in ("secret", "lookalike", "document", "domain", "keyword", "regex", "yara"):
        if kind in kinds:
            out.append({"kind": kind, "step": STEPS[kind]})
    contact = abuse_contact(host)
    if contact is not None:
        out.append(
            {
                "kind": "takedown",
                "step": f"Request a takedown of the posting from {host}: {contact}. "
                "Export the evidence first (it keeps what was published).",
                "contact": contact,
            }
        )
    else:
        out.append(
            {
                "kind": "takedown",
                "step": "Export the evidence. No abuse contact is known for this place (a local file, an IP "
                "address or an onion service); for a site, report the posting to its hosting provider.",
            }
        )
    return out
