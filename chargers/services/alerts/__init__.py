"""Alerts for staff: the lifecycle (`lifecycle`: raise, repeat, acknowledge, clear,
page, escalate), the automatic cut-off tracked until the pile confirms it (`cutoff`),
the notification outbox and its channels (`notify`, `sms`, `wechat`), severities, and
residents' problem reports. Imports devices/, charging/ and the shared modules."""
