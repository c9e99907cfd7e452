"""The rules of chargers. Web views, MQTT handlers and scheduled jobs call these;
they take plain values (ids, dataclasses, `now`) and own the transaction."""
