"""The core's own channels, registered through the ``bookwise.plugins`` entry points like any
plugin's (see pyproject.toml). Core plugins are always enabled; the webhook channel is set up
when ``plugins.webhook`` in config.yaml gives it a URL."""

from __future__ import annotations

from dataclasses import dataclass

from bookwise.hookspecs import hookimpl
from bookwise.notifications.channels import Channel, EmailChannel, LogChannel, WebhookChannel
from bookwise.plugins.api import API_VERSION


@dataclass(frozen=True)
class ChannelPlugin:
    """A plugin that adds one channel."""

    channel: type[Channel]
    BOOKWISE_API: str = API_VERSION

    @hookimpl
    def bookwise_register_channels(self) -> list[type[Channel]]:
        return [self.channel]


email = ChannelPlugin(EmailChannel)
webhook = ChannelPlugin(WebhookChannel)
log = ChannelPlugin(LogChannel)
