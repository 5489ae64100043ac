"""The same formats for plain "en" (admin falls back to it when a request asks for English)."""

from carerecord.formats.en_GB.formats import *  # noqa: F403
