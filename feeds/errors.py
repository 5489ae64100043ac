"""The one error every reader of a message raises for content that is wrong: here rather than in feeds.convert
(which re-exports it as part of the converters' contract) so that feeds.segments, which the converters use, can
raise it without importing them (no import cycle between the app's modules)."""


class Invalid(Exception):
    """The message's content is wrong: answered AE with an ERR segment naming where (`location`, e.g. "PID-7")."""

    def __init__(self, reason: str, location: str = ""):
        super().__init__(reason)
        self.reason, self.location = reason, location
