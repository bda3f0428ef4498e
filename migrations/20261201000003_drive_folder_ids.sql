-- Ids reserved (files.generateIds) for Drive folders before they are created, per
-- parent folder and name: a create retried later (another run, another replica, after
-- a timeout in which Drive made the folder) reuses the id, and Drive answers 409
-- fileIdInUse instead of making a second folder.
CREATE TABLE engine.drive_folder_ids (
    parent_id   text NOT NULL,
    name        text NOT NULL,
    file_id     text NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (parent_id, name)
);
