"""Maintenance: inspection plans, records and work orders on a schedule
(`inspections`), and overstay nudges for finished ports still plugged in
(`overstay`). Imports devices/, charging/, alerts/ (the outbox) and the shared
modules."""
