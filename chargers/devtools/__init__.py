"""Development tools: local emulators of outside services for tests and `make run`.
Never imported by production code (tests/test_messages_wechat.py checks)."""
