CREATE TABLE "memos"(
  "memo_id" TEXT NOT NULL PRIMARY KEY,
  "account_ref" TEXT NOT NULL,
  "body" TEXT NOT NULL,
  "created" TEXT NOT NULL,
  "modified" TEXT NOT NULL
);
CREATE INDEX "memos_by_account" ON "memos"("account_ref", "memo_id");
