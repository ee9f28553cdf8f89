CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body TEXT
);

-- +goose StatementBegin
CREATE TRIGGER posts_touch AFTER INSERT ON posts BEGIN
    UPDATE users SET email = lower(email) WHERE id = new.user_id;
END;
-- +goose StatementEnd

