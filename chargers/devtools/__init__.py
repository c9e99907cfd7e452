"""Development tools that the product never imports: `payemu`, a local emulator of
WeChat Pay v3, Alipay and WeChat's OAuth for tests and `make run`."""
