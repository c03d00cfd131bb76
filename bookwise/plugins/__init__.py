"""The plugin API: everything a plugin imports comes from here (and ``hookimpl`` from
:mod:`bookwise.hookspecs`, also re-exported here). See docs/plugins.md."""

from bookwise.hookspecs import hookimpl
from bookwise.notifications.channels import (
    Attachment,
    Channel,
    ChannelError,
    HttpAnswer,
    OutgoingMessage,
    post,
)
from bookwise.plugins.api import (
    API_VERSION,
    BookingChange,
    BookingData,
    FieldType,
    InvalidValue,
    Meeting,
    MeetingError,
    MeetingProvider,
    PluginContext,
)
from bookwise.scheduling.registry import Daily, Every, Job, JobContext

__all__ = [
    "API_VERSION",
    "Attachment",
    "BookingChange",
    "BookingData",
    "Channel",
    "ChannelError",
    "Daily",
    "Every",
    "FieldType",
    "HttpAnswer",
    "InvalidValue",
    "Job",
    "JobContext",
    "Meeting",
    "MeetingError",
    "MeetingProvider",
    "OutgoingMessage",
    "PluginContext",
    "hookimpl",
    "post",
]
