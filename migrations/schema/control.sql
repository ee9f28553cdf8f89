CREATE TABLE "accounts"(
  "id" BLOB NOT NULL PRIMARY KEY,
  "name" TEXT NOT NULL,
  "is_migrating" INTEGER NOT NULL DEFAULT 0,
  "shard" TEXT
);
