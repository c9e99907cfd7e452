"""Jobs of alerts, commands and notifications (issue 4)."""
