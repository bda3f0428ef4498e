-- WhatsApp (issue #8): every outbound message the Cloud API accepted and what
-- became of it (status webhooks), and the timestamp of each inbound message so
-- the service knows whose 24 h customer-service window is open.

CREATE TABLE engine.whatsapp_messages (
    id           uuid PRIMARY KEY,
    -- Meta's `wamid.…`: status webhooks refer to it.
    wamid        text NOT NULL UNIQUE,
    client_id    uuid REFERENCES knowledge.clients (id) ON DELETE SET NULL,
    -- Digits as Meta normalised them (`contacts[].wa_id`).
    recipient    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('text', 'template')),
    template     text,
    -- Only moves forward: accepted < sent < delivered < read; failed is final.
    status       text NOT NULL DEFAULT 'accepted'
                 CHECK (status IN ('accepted', 'sent', 'delivered', 'read', 'failed')),
    error_code   text,
    error_title  text,
    -- Who sent it: a workflow task (and the report it delivered), or nobody (API call, command reply).
    run_id       uuid,
    task_id      uuid,
    report_id    uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When Meta says the current status happened (the webhook's `timestamp`).
    status_at    timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX whatsapp_messages_client ON engine.whatsapp_messages (client_id, id);
CREATE INDEX whatsapp_messages_task ON engine.whatsapp_messages (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX whatsapp_messages_created ON engine.whatsapp_messages (created_at);

-- The sender's own timestamp (opens the window) and the business-scoped user id
-- (BSUID) of senders who withhold their number.
ALTER TABLE engine.inbound_messages
    ADD COLUMN sent_at timestamptz,
    ADD COLUMN user_id text;

CREATE INDEX inbound_messages_sender_sent ON engine.inbound_messages (sender, sent_at);
