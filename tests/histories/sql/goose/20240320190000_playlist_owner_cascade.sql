-- +goose Up
-- Playlists follow their owner (cascade) and sort case-insensitively;
-- episode_note loses its contradictory `default null`. Both need a rebuild.
create table playlist_dg_tmp
(
    id         varchar(255)                              not null
        primary key,
    name       varchar(255) collate NOCASE default ''    not null,
    path       string                      default ''    not null,
    public     bool                        default false not null,
    owner_id   varchar(255)                              not null
        constraint playlist_listener_id_fk
            references listener
            on update cascade on delete cascade,
    created_at datetime,
    updated_at datetime
);

insert into playlist_dg_tmp(id, name, path, public, owner_id, created_at, updated_at)
select id, name, path, public, owner_id, created_at, updated_at
from playlist
where owner_id in (select id from listener);

drop table playlist;

alter table playlist_dg_tmp
    rename to playlist;

create index playlist_name
    on playlist (name);

create index playlist_owner_id
    on playlist (owner_id);

CREATE TABLE episode_note_new
(
    listener_id varchar NOT NULL
        REFERENCES listener(id) ON DELETE CASCADE,
    episode_id varchar NOT NULL
        REFERENCES episode(id) ON DELETE CASCADE,
    note text DEFAULT '{}',
    CONSTRAINT episode_note_ux UNIQUE (listener_id, episode_id)
);

INSERT INTO episode_note_new (listener_id, episode_id, note)
SELECT listener_id, episode_id, note FROM episode_note;

DROP TABLE episode_note;

ALTER TABLE episode_note_new RENAME TO episode_note;

-- +goose Down
-- The collation and the cascade are lost; the data is kept.
create table playlist_dg_tmp
(
    id         varchar(255)                 not null
        primary key,
    name       varchar(255) default ''      not null,
    path       string       default ''      not null,
    public     bool         default false   not null,
    owner_id   varchar(255)                 not null,
    created_at datetime,
    updated_at datetime
);

insert into playlist_dg_tmp(id, name, path, public, owner_id, created_at, updated_at)
select id, name, path, public, owner_id, created_at, updated_at
from playlist;

drop table playlist;

alter table playlist_dg_tmp
    rename to playlist;

create index playlist_name
    on playlist (name);
