-- Alerts of one client, newest first (`GET /v1/alerts?client=…`, issue #9's capacity model).
--
-- The list orders by id; the only index starting with client_id was the dedupe key
-- (client_id, kind, subject, day), so a client's page walked the newest alerts of every
-- client: 25 ms at a year of 1,000 clients, growing with the number of clients. Alerts
-- are kept for ever, so this index grows with them (docs/CAPACITY.md counts it).
CREATE INDEX alerts_client_idx ON engine.alerts (client_id, id);
