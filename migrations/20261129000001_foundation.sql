-- Foundation schema: one Postgres schema per concern (docs/ARCHITECTURE.md) so each can move later.
CREATE SCHEMA IF NOT EXISTS knowledge;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS engine;
CREATE SCHEMA IF NOT EXISTS auth;

-- Clients: the agency's knowledge base. Ids are UUIDv7 (time ordered), so keyset
-- pagination by id is creation order and stable under concurrent inserts.
CREATE TABLE knowledge.clients (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 100),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    industry    text,
    status      text NOT NULL DEFAULT 'onboarding'
                CHECK (status IN ('onboarding', 'active', 'paused', 'archived')),
    timezone    text NOT NULL DEFAULT 'UTC',
    currency    text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    accounts    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(accounts) = 'object'),
    budgets     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(budgets) = 'object'),
    targets     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(targets) = 'object'),
    contacts    jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(contacts) = 'array'),
    notes       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_slug_key UNIQUE (slug)
);
CREATE INDEX clients_status_idx ON knowledge.clients (status, id);
CREATE INDEX clients_industry_idx ON knowledge.clients (lower(industry), id);

-- Knowledge entries with a generated full-text vector (title weighs more than body).
CREATE TABLE knowledge.entries (
    id          uuid PRIMARY KEY,
    client_id   uuid NOT NULL REFERENCES knowledge.clients (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('note', 'fact', 'brand_voice', 'competitor', 'offer', 'faq')),
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 300),
    body        text NOT NULL CHECK (octet_length(body) <= 102400),
    tags        text[] NOT NULL DEFAULT '{}',
    search      tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', title), 'A') ||
                    setweight(to_tsvector('english', body), 'B')
                ) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entries_client_idx ON knowledge.entries (client_id, id);
CREATE INDEX entries_search_idx ON knowledge.entries USING gin (search);

-- API tokens. The JWT itself is never stored: only its id (the `jti`), which is
-- what revocation and last-use tracking key on.
CREATE TABLE auth.api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scopes        text[] NOT NULL,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

-- Append-only audit log: every change, in the same transaction as the change.
CREATE TABLE audit.log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       uuid,
    actor_name     text NOT NULL,
    action         text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    request_id     text,
    before         jsonb,
    after          jsonb
);
CREATE INDEX audit_resource_idx ON audit.log (resource_type, resource_id, id);
CREATE INDEX audit_actor_idx ON audit.log (actor_id, id);
CREATE INDEX audit_at_idx ON audit.log (at);

CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit.log
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();

-- Idempotency keys (docs/API.md), scoped per token. `locked_until` lets a key whose
-- request died mid-flight be taken over instead of answering 409 forever.
CREATE TABLE engine.idempotency_keys (
    token_id         uuid NOT NULL,
    key              text NOT NULL,
    request_hash     text NOT NULL,
    state            text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    locked_until     timestamptz NOT NULL,
    response_status  smallint,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_expires_idx ON engine.idempotency_keys (expires_at);
