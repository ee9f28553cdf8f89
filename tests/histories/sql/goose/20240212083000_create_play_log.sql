-- +goose Up
-- +goose StatementBegin
CREATE TABLE play_log(
    episode_id VARCHAR(255) NOT NULL
        REFERENCES episode(id)
            ON DELETE CASCADE
            ON UPDATE CASCADE,
    listener_id VARCHAR(255) NOT NULL
        REFERENCES listener(id)
            ON DELETE CASCADE
            ON UPDATE CASCADE,
    played_at INTEGER NOT NULL
);
CREATE INDEX play_log_played_at ON play_log (played_at);
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER play_log_touch_episode AFTER INSERT ON play_log
BEGIN
    UPDATE episode SET updated_at = CURRENT_TIMESTAMP WHERE id = NEW.episode_id;
END;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP TRIGGER play_log_touch_episode;
DROP TABLE play_log;
-- +goose StatementEnd
