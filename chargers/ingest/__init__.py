"""The MQTT door: device messages in, service calls out."""
