"""Prometheus metrics shared by every service (one registry per process)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "taktline_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "taktline_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter("taktline_events_published_total", "Outbox events published", ["service"])
OUTBOX_PENDING = Gauge("taktline_outbox_pending", "Outbox rows waiting (last seen)", ["service"])
EVENTS_CONSUMED = Counter(
    "taktline_events_consumed_total", "Events consumed", ["service", "type", "outcome"]
)
CONSUMER_BATCH = Histogram(
    "taktline_consumer_batch_size", "Messages per consumer transaction", ["service"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 200, 500),
)
