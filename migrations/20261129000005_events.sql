-- Event outbox (written in the same transaction as the change), webhook endpoints
-- and their deliveries (docs/MAKE.md).

CREATE TABLE engine.events (
    id          uuid PRIMARY KEY,           -- UUIDv7: the feed's order and cursor
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_type_idx ON engine.events (type, id);

CREATE TABLE engine.webhook_endpoints (
    id              uuid PRIMARY KEY,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    events          text[] NOT NULL DEFAULT '{*}',
    secret          text NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    failing_since   timestamptz,
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One delivery per (event, endpoint); attempts are logged below.
CREATE TABLE engine.deliveries (
    id            uuid PRIMARY KEY,
    event_id      uuid NOT NULL REFERENCES engine.events (id) ON DELETE CASCADE,
    endpoint_id   uuid NOT NULL REFERENCES engine.webhook_endpoints (id) ON DELETE CASCADE,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_by     text,
    locked_until  timestamptz,
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz,
    CONSTRAINT deliveries_event_endpoint_key UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due_idx ON engine.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint_idx ON engine.deliveries (endpoint_id, id);

CREATE TABLE engine.delivery_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id    uuid NOT NULL REFERENCES engine.deliveries (id) ON DELETE CASCADE,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    status         integer,
    latency_ms     integer NOT NULL,
    error          text,
    response_excerpt text
);
CREATE INDEX delivery_attempts_delivery_idx ON engine.delivery_attempts (delivery_id, id);
