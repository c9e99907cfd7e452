"""Money: tariffs and pricing (pure), settlement of finished sessions, the ledger
(`ledger`: the only module that writes postings), residents' accounts, the balance
guard that stops sessions, monthly close with statements and 公示, reminders and the
session messages to residents (`messages`),
reconciliation with the grid bill, exports and the money dashboard. Imports
devices/, charging/, alerts/ (the outbox) and the shared modules."""
