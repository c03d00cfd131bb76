"""Every model, imported once so that ``Base.metadata`` knows all tables (migrations, tests)."""

from bookwise.accounts.models import CalendarRole, User
from bookwise.audit.models import AuditEntry
from bookwise.bookings.models import (
    Booking,
    BookingEvent,
    Client,
    ConsentRecord,
    IdempotencyKey,
)
from bookwise.calendars.models import (
    AssignmentTurn,
    BusyTime,
    Calendar,
    CalendarSource,
    FeedLink,
    Service,
    ServiceStaff,
    SlotVersion,
    StaffMember,
    TimeOff,
    WorkingHours,
)
from bookwise.db import Base
from bookwise.notifications.models import (
    MessageTemplate,
    MessageTemplateVersion,
    Notification,
    SmsOptOut,
    WebhookEndpoint,
)
from bookwise.scheduling.models import ScheduledJob
from bookwise.workflows.models import WorkflowRecord, WorkflowVersion

metadata = Base.metadata

__all__ = [
    "AssignmentTurn",
    "AuditEntry",
    "Base",
    "Booking",
    "BookingEvent",
    "BusyTime",
    "Calendar",
    "CalendarRole",
    "CalendarSource",
    "Client",
    "ConsentRecord",
    "FeedLink",
    "IdempotencyKey",
    "MessageTemplate",
    "MessageTemplateVersion",
    "Notification",
    "ScheduledJob",
    "Service",
    "ServiceStaff",
    "SlotVersion",
    "SmsOptOut",
    "StaffMember",
    "TimeOff",
    "User",
    "WebhookEndpoint",
    "WorkflowRecord",
    "WorkflowVersion",
    "WorkingHours",
    "metadata",
]
