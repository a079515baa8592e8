"""Kafka as the bus between ingest and analytics.

- ``spec``: the ``kafka:BROKERS/TOPIC[,options]`` spec, the start-up check, logs.
- ``placement``: which partition each recording line goes to (sans-I/O).
- ``recorder``: the raw feed (or a recording file) into a topic.
- ``lines``: a topic partition read back as recording lines, for a replay.

Needs ``confluent-kafka`` (``pip install 'bpx-flows[kafka]'``); nothing here
imports it until a Kafka spec is used.
"""
