"""Publishing authored definitions as immutable versions."""

from runtime_core.publishing._publish import PublishedVersion, PublishOutcome, publish_definitions

__all__ = ["PublishOutcome", "PublishedVersion", "publish_definitions"]
