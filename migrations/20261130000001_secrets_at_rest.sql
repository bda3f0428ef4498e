-- Secrets at rest (docs/decisions/0014-secrets-at-rest.md).
--
-- Stored responses of Idempotency-Key requests (which include new API tokens and
-- webhook signing secrets) are now kept sealed with ENCRYPTION_KEY in
-- `response_sealed` (`v1:<key id>:<base64>`); `response_body` only holds responses
-- stored before this migration. SQL cannot seal without the key, so the service
-- seals those rows, and the plaintext `whsec_` secrets of
-- engine.webhook_endpoints.secret, when it starts (server::run); after that no
-- plaintext secret remains in either table.
ALTER TABLE engine.idempotency_keys ADD COLUMN response_sealed text;

COMMENT ON COLUMN engine.idempotency_keys.response_sealed IS
    'Response body sealed with ENCRYPTION_KEY (XChaCha20-Poly1305, bound to token_id and key).';
COMMENT ON COLUMN engine.idempotency_keys.response_body IS
    'Legacy plaintext body of rows stored before 20261130000001; sealed at start-up.';
COMMENT ON COLUMN engine.webhook_endpoints.secret IS
    'Signing secret sealed with ENCRYPTION_KEY (v1:<key id>:<base64>), bound to the endpoint id.';
