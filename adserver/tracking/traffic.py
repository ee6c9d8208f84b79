"""What a request says about its reader: bot or person, device class, country, prefetch.

Each answer comes from a maintained library (crawler-user-agents, ua-parser, iptocc) and is
cached per user agent, since the same few agents repeat across millions of requests. The caches
are keyed by the agent's first ``UA_KEY_CHARS`` characters: a client chooses its user agent,
and a cache keyed by whole agents of a megabyte each held gigabytes. Real agents are shorter,
and what identifies a crawler or a device sits in their first part.
"""

from __future__ import annotations

from functools import lru_cache

import crawleruseragents
import iptocc
from ua_parser import parse_device

_TABLETS = ("ipad", "tablet", "kindle", "silk", "playbook", "nexus 7", "nexus 9", "nexus 10")
#: How much of a user agent the answers (and their caches) look at.
UA_KEY_CHARS = 512


def is_bot(user_agent: str) -> bool:
    """A missing agent, one on the crawler list, or one ua-parser calls a spider."""
    return _is_bot(user_agent[:UA_KEY_CHARS])


def device_class(user_agent: str) -> str:
    """``desktop``, ``mobile`` or ``tablet``: Android without "Mobile" is a tablet, as Google
    documents for its own user agents."""
    return _device_class(user_agent[:UA_KEY_CHARS])


@lru_cache(maxsize=4096)
def _is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return True
    if crawleruseragents.is_crawler(user_agent):
        return True
    device = parse_device(user_agent)
    return device is not None and device.family == "Spider"


@lru_cache(maxsize=4096)
def _device_class(user_agent: str) -> str:
    lowered = user_agent.lower()
    if any(word in lowered for word in _TABLETS):
        return "tablet"
    if "mobi" in lowered or "iphone" in lowered or "ipod" in lowered:
        return "mobile"
    if "android" in lowered:
        return "tablet"
    return "desktop"


def country(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return iptocc.country_code(ip)
    except (ValueError, TypeError):
        return None


def is_prefetch(purpose: str) -> bool:
    """Browsers mark speculative loads in ``Sec-Purpose`` (or the older ``Purpose``) header;
    they are not a reader looking at an ad."""
    lowered = purpose.lower()
    return "prefetch" in lowered or "prerender" in lowered
