-- Costs: daily ad metrics per client, platform and day, and LLM token usage.
CREATE SCHEMA IF NOT EXISTS costs;

-- One row per (client, platform, day): a re-sync of the same day replaces it.
CREATE TABLE costs.daily_metrics (
    client_id         uuid NOT NULL REFERENCES knowledge.clients (id) ON DELETE CASCADE,
    platform          text NOT NULL,
    account_id        text NOT NULL,
    date              date NOT NULL,
    spend             double precision NOT NULL CHECK (spend >= 0),
    impressions       bigint NOT NULL CHECK (impressions >= 0),
    clicks            bigint NOT NULL CHECK (clicks >= 0),
    conversions       double precision NOT NULL CHECK (conversions >= 0),
    conversion_value  double precision NOT NULL CHECK (conversion_value >= 0),
    currency          text NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, platform, date)
);
CREATE INDEX daily_metrics_date_idx ON costs.daily_metrics (date);

CREATE TABLE costs.llm_usage (
    id             uuid PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    client_id      uuid REFERENCES knowledge.clients (id) ON DELETE SET NULL,
    provider       text NOT NULL,
    model          text NOT NULL,
    input_tokens   integer NOT NULL,
    output_tokens  integer NOT NULL,
    purpose        text NOT NULL
);
CREATE INDEX llm_usage_client_idx ON costs.llm_usage (client_id, at);
