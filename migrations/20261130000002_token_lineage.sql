-- Token lineage (issue #10, finding 4): revoking a token also revokes the tokens it
-- created, transitively, by walking `created_by`; index it so the walk stays cheap.
-- Tokens revoked before this migration keep their children: nothing is revoked here.
CREATE INDEX api_tokens_created_by_idx ON auth.api_tokens (created_by);
