"""Development tools: local emulators of outside services for tests and `make run`
(`payemu`: WeChat Pay v3, Alipay and WeChat's OAuth; `wechat_mp`: the official
account's subscription messages). Never imported by production code
(tests/test_messages_wechat.py checks)."""
