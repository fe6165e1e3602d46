#!/usr/bin/python3
# The seed's consumer_inference.py (design document section 4.3.2), kept line
# for line in its logic so the benchmark measures what the seed would do:
# poll one record, POST {"instances": [features]} to TF Serving REST, read the
# JSON answer. Only what a benchmark needs is added: the broker, URL, topic
# and group come from the command line, it stops after N records, prints
# nothing per record (printing would measure the terminal) and reports its
# throughput as one JSON line.
import json
import sys
import time

import requests
from confluent_kafka import Consumer


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: consumer_inference.py BROKERS TF_SERVING_URL TOPIC GROUP N")
    brokers, url, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    conf = {
        "bootstrap.servers": brokers,
        "group.id": group,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    # The seed calls requests.post without a session; keep it that way.
    done, errors, start = 0, 0, None
    deadline = time.time() + 600
    while done < n and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            print("Consumer error: {}".format(msg.error()), file=sys.stderr)
            continue
        if start is None:
            start = time.time()
        data = json.loads(msg.value().decode("utf-8"))
        payload = {"instances": [data["features"]]}
        response = requests.post(url, json=payload)
        result = response.json()
        if "predictions" not in result:
            errors += 1
        done += 1
    elapsed = time.time() - (start or time.time())
    consumer.close()
    print(json.dumps({"records": done, "errors": errors, "seconds": elapsed,
                      "msg_per_s": done / elapsed if elapsed > 0 else 0}))


if __name__ == "__main__":
    main()
