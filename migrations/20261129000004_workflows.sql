-- Workflow engine (docs/WORKFLOWS.md): runs fan out one task per client; tasks are claimed
-- with FOR UPDATE SKIP LOCKED under a lease; effects are recorded per
-- (run, client, step) so a retried task never repeats one.

CREATE TABLE engine.runs (
    id                uuid PRIMARY KEY,
    workflow          text NOT NULL,
    workflow_version  integer NOT NULL,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'succeeded', 'partially_failed', 'failed', 'canceled')),
    trigger           text NOT NULL CHECK (trigger IN ('api', 'schedule', 'whatsapp')),
    params            jsonb NOT NULL DEFAULT '{}'::jsonb,
    dry_run           boolean NOT NULL DEFAULT false,
    callback_url      text,
    schedule_id       uuid,
    created_by        uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz
);
CREATE INDEX runs_workflow_idx ON engine.runs (workflow, id);
CREATE INDEX runs_status_idx ON engine.runs (status, id);

CREATE TABLE engine.tasks (
    id            uuid PRIMARY KEY,
    run_id        uuid NOT NULL REFERENCES engine.runs (id) ON DELETE CASCADE,
    client_id     uuid NOT NULL,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt       integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL DEFAULT 3,
    run_at        timestamptz NOT NULL DEFAULT now(),
    locked_by     text,
    locked_until  timestamptz,
    result        jsonb,
    error         text,
    started_at    timestamptz,
    finished_at   timestamptz,
    CONSTRAINT tasks_run_client_key UNIQUE (run_id, client_id)
);
-- The claim scans only ready tasks.
CREATE INDEX tasks_ready_idx ON engine.tasks (run_at, id) WHERE status = 'queued';
CREATE INDEX tasks_leases_idx ON engine.tasks (locked_until) WHERE status = 'running';
CREATE INDEX tasks_client_idx ON engine.tasks (client_id);
-- "Is anything of this run still open?" after every task, without counting the run.
CREATE INDEX tasks_run_status_idx ON engine.tasks (run_id, status);

-- Side-effect ledger: one row per external effect, written as the effect completes.
CREATE TABLE engine.effects (
    run_id      uuid NOT NULL REFERENCES engine.runs (id) ON DELETE CASCADE,
    client_id   uuid NOT NULL,
    step        text NOT NULL,
    result      jsonb NOT NULL,
    dry_run     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, client_id, step)
);

CREATE TABLE engine.schedules (
    id             uuid PRIMARY KEY,
    workflow       text NOT NULL,
    cron           text NOT NULL,
    timezone       text NOT NULL DEFAULT 'UTC',
    params         jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled        boolean NOT NULL DEFAULT false,
    next_fire_at   timestamptz,
    last_fired_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due_idx ON engine.schedules (next_fire_at) WHERE enabled;

-- One row per schedule slot that fired: the primary key makes each slot fire once,
-- however many scheduler replicas race for it.
CREATE TABLE engine.schedule_firings (
    schedule_id  uuid NOT NULL REFERENCES engine.schedules (id) ON DELETE CASCADE,
    fire_at      timestamptz NOT NULL,
    run_id       uuid NOT NULL,
    PRIMARY KEY (schedule_id, fire_at)
);

-- Alerts raised by monitoring: one per (client, kind, subject, day).
CREATE TABLE engine.alerts (
    id               uuid PRIMARY KEY,
    client_id        uuid NOT NULL REFERENCES knowledge.clients (id) ON DELETE CASCADE,
    run_id           uuid,
    kind             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject          text NOT NULL DEFAULT '',
    day              date NOT NULL,
    message          text NOT NULL,
    data             jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    resolved_at      timestamptz,
    CONSTRAINT alerts_dedupe_key UNIQUE (client_id, kind, subject, day)
);
CREATE INDEX alerts_status_idx ON engine.alerts (status, id);

CREATE TABLE engine.reports (
    id             uuid PRIMARY KEY,
    client_id      uuid NOT NULL REFERENCES knowledge.clients (id) ON DELETE CASCADE,
    run_id         uuid,
    kind           text NOT NULL,
    period_start   date NOT NULL,
    period_end     date NOT NULL,
    body           text NOT NULL,
    figures        jsonb NOT NULL,
    model          text,
    input_tokens   integer,
    output_tokens  integer,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_client_idx ON engine.reports (client_id, id);

-- Prompt templates: every PUT is a new version; the newest is current.
CREATE TABLE knowledge.prompt_templates (
    key          text NOT NULL CHECK (key ~ '^[a-z0-9]+([-_][a-z0-9]+)*$'),
    version      integer NOT NULL,
    description  text NOT NULL DEFAULT '',
    system       text NOT NULL DEFAULT '',
    body         text NOT NULL,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);

-- Inbound WhatsApp messages, once each (duplicate webhook deliveries are ignored).
CREATE TABLE engine.inbound_messages (
    message_id   text PRIMARY KEY,
    sender       text NOT NULL,
    body         text NOT NULL,
    command      text,
    reply        text,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Platform calls per client and day, for the costs view.
CREATE TABLE costs.platform_calls (
    client_id  uuid NOT NULL REFERENCES knowledge.clients (id) ON DELETE CASCADE,
    platform   text NOT NULL,
    day        date NOT NULL,
    calls      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, platform, day)
);
