DROP TABLE folders;
DROP TABLE items;
DROP TABLE accounts;
