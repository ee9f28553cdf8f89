-- +goose Up
create table library
(
    id           integer primary key autoincrement,
    name         varchar(255) not null unique,
    path         varchar(255) not null unique,
    remote_path  varchar(255) null default '',
    last_scan_at datetime not null default '0000-00-00 00:00:00',
    created_at   datetime default current_timestamp not null
);

create table listener
(
    id        varchar(255)                not null
        primary key,
    user_name varchar(255)                not null
        unique,
    is_admin  bool         default FALSE not null,
    prefs     jsonb        default '{}'  not null
);

create table episode
(
    id          varchar(255)                         not null
        primary key,
    title       varchar(255)           default ''    not null,
    feed_id     varchar(255)           default ''    not null,
    duration    real                   default 0     not null,
    explicit    bool                   default FALSE not null,
    chapters    jsonb                  default '[]'  not null,
    order_title varchar collate NOCASE default ''    not null,
    sort_title  varchar collate NOCASE default ''    not null,
    created_at  datetime,
    updated_at  datetime,
    library_id  integer                default 1     not null
        references library
            on delete cascade
);

create index episode_feed_id
    on episode (feed_id);

create index episode_order_title
    on episode (order_title);

create index episode_sort_title
    on episode (coalesce(nullif(sort_title,''),order_title) collate NOCASE);

create table playlist
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

create index playlist_name
    on playlist (name);

-- A listener's note on an episode. `not null default null`: a column that
-- must always be given a value, spelled with a default that can never be used.
create table episode_note
(
    listener_id varchar not null default null
        references listener(id) on delete cascade,
    episode_id varchar not null
        references episode(id) on delete cascade,
    note text default '{}',
    constraint episode_note_ux unique (listener_id, episode_id)
);

-- +goose Down
drop table episode_note;
drop table playlist;
drop table episode;
drop table listener;
drop table library;
