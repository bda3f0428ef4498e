-- Every change to a client is announced, so each replica can drop it from its
-- read cache at once (src/cache.rs). A trigger catches every writer, including
-- SQL run by hand; the notification is delivered only when the change commits.
CREATE FUNCTION knowledge.notify_client_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchboard_client_changed', coalesce(NEW.id, OLD.id)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER clients_changed
    AFTER UPDATE OR DELETE ON knowledge.clients
    FOR EACH ROW EXECUTE FUNCTION knowledge.notify_client_change();
