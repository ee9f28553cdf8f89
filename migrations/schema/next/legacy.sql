CREATE TABLE "memos"(
  "memo_id" TEXT NOT NULL,
  "account_ref" TEXT NOT NULL,
  "body" TEXT NOT NULL,
  "created" TEXT NOT NULL,
  "modified" TEXT NOT NULL,
  PRIMARY KEY("account_ref", "memo_id")
);
