"""Online payments: residents' top-ups by WeChat Pay v3 (JSAPI, H5, Native) and Alipay
(mobile web pay), refunds to the channel the money came from, and the daily
reconciliation with the providers' bills.

- `orders`: our order (number, amount in fen, channel, state), created, polled, and
  the query-then-close of an order never confirmed.
- `providers`: thin adapters around the providers' own SDKs (`wechatpayv3`,
  `python-alipay-sdk`), which sign and verify; nothing here signs by hand.
- `notifications`: a provider's notification verified, then the top-up posted to the
  ledger exactly once (keyed by the order number); anything else changes nothing and
  is recorded as a PaymentNotice (counted in /metrics) and logged.
- `refunds`: a refund asked of the provider, tracked until it confirms.
- `reconcile`: the previous day's bills matched line by line with orders and ledger;
  fees posted as the alley's expense; mismatches on the staff review list.
- `oauth`: the official account's OAuth (snsapi_base) giving a resident's openid.

Money moves only through billing.ledger. Imports billing/ (ledger, accounts), devices/
(alleys), the shared modules, models, constants and the SDKs; never a door, nor
the local emulators of the providers.
Functions that change data commit."""
