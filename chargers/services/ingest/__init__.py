"""The message log of the MQTT ingest: which (pile, message id) were processed
(dedup), rejections with their reasons and counts. Imports devices/ and the shared
modules; the batch that applies messages lives in chargers/ingest (the door)."""
