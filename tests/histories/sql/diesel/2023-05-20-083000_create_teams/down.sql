DROP TABLE audit_events;
DROP TABLE sso_identities;
DROP TABLE memberships;
DROP TABLE team_items;
DROP TABLE teams;
