-- Run callbacks (`callback_url`) as outbox rows: written in the transaction that
-- ends the run, sent by the webhook delivery workers through the SSRF-guarded
-- client (no redirects, no proxy, addresses checked at every attempt), retried on
-- the webhook schedule, shared by replicas and kept across restarts.
CREATE TABLE engine.run_callbacks (
    id              uuid PRIMARY KEY,       -- also the `webhook-id` header: the same on every retry
    run_id          uuid NOT NULL REFERENCES engine.runs (id) ON DELETE CASCADE,
    url             text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_by       text,
    locked_until    timestamptz,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX run_callbacks_due_idx ON engine.run_callbacks (next_attempt_at) WHERE status = 'pending';
CREATE INDEX run_callbacks_run_idx ON engine.run_callbacks (run_id);
