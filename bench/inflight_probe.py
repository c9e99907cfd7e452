"""Does Mosquitto's `max_inflight_messages` bound what a slow manual-ack subscriber
holds? A subscriber (persistent session, manual ack, like the worker) acks the first
K deliveries and then none; we count what the broker still pushes to it.

    .venv/bin/python bench/inflight_probe.py [--messages 500]

With a window that holds, the count is inflight + K. Seen on Mosquitto 2.0.11
(Debian 12): K=0 → 20, K=1 → 21, but K=3 → 80 — after some acks the broker sends a
fresh window per PUBACK, so under a burst the worker's in-memory inbox takes the whole
backlog (see ingest_throughput.py: arrival lag stays ~2 s while commit lag is ~17 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402


def probe(inflight: int | None, ack_first: int, n: int, protocol: int) -> int:
    with tempfile.TemporaryDirectory(prefix="chargers-probe-") as d:
        broker = h.Broker(Path(d), max_inflight=inflight)
        got: list[int] = []
        kwargs = {"clean_session": False} if protocol == mqtt.MQTTv311 else {}
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe-sub",
                          protocol=protocol, manual_ack=True, **kwargs)

        def on_message(client, userdata, msg):
            got.append(msg.mid)
            if len(got) <= ack_first:
                client.ack(msg.mid, msg.qos)

        sub.on_message = on_message
        sub.on_connect = lambda c, *a: c.subscribe("probe/#", qos=1)
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        pub = None
        try:
            time.sleep(0.5)
            pub = h.Publisher(broker.port, "probe-pub")
            for _ in range(n):
                pub.client.publish("probe/x", "x", qos=1)
            h.wait_until(lambda: pub.acked >= n, 30, what="PUBACKs")
            time.sleep(1.0)  # let the broker push whatever it will
            return len(got)
        finally:
            sub.disconnect()
            sub.loop_stop()
            if pub:
                pub.close()
            broker.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=500)
    args = ap.parse_args(argv)
    version = subprocess.run([h.MOSQUITTO, "-h"], capture_output=True, text=True).stdout
    print(version.splitlines()[0] if version else "mosquitto (version unknown)")
    rows = []
    for protocol, name in ((mqtt.MQTTv311, "3.1.1"), (mqtt.MQTTv5, "5")):
        for inflight in (None, 20, 5):
            for k in (0, 1, 3, 10):
                got = probe(inflight, k, args.messages, protocol)
                window = 20 if inflight is None else inflight
                rows.append([name, inflight or "default (20)", k, window + k, got,
                             "yes" if got <= window + k else "NO"])
    print(h.table(rows, ["MQTT", "max_inflight", "acked first", "expected max",
                         "received", "window holds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
