"""webproxy's own error tree; third-party errors are translated into it at the edges."""

from __future__ import annotations


class WebProxyError(Exception):
    """Base of every error webproxy raises on purpose."""


class ConfigError(WebProxyError):
    """The configuration has problems; one `key: problem` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RequestIncomplete(WebProxyError):
    """The client's request did not arrive whole: Finesse must not act on it."""

    status = 400  # what the client is answered, if it is still there


class BodyTooLarge(RequestIncomplete):
    """The client's request body passed the configured limit while being streamed."""

    status = 413


class BodyTimeout(RequestIncomplete):
    """The client paused longer than `server.client_body_timeout` while sending its body."""

    status = 408


class ClientGone(RequestIncomplete):
    """The client closed or reset its connection before its request body was complete."""

    status = 499  # nginx's "client closed request": counted, never sent


class PurgeNotRecorded(RequestIncomplete):
    """A write's purge could not be recorded, so its last bytes were never sent upstream
    (`store.on_purge_failure = "refuse"`)."""

    status = 503


class TooManyForClient(WebProxyError):
    """This client address already has `server.max_upstream_per_client` exchanges open."""


class UpstreamError(WebProxyError):
    """The upstream (Finesse) could not give an answer.

    `sent` is False when the request never left (no pool connection in time, the connect
    refused or timed out): then Finesse can't have acted on it.
    """

    kind = "error"  # a bounded metric label

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class UpstreamUnavailable(UpstreamError):
    """The upstream refused or dropped the connection."""

    kind = "unavailable"


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The upstream took longer than the configured timeout."""

    kind = "timeout"


class StoreUnavailable(WebProxyError):
    """The cache store (Redis) did not answer in time or at all."""
