CREATE TABLE "notes"(
  "id" BLOB NOT NULL,
  "creator" BLOB NOT NULL,
  "created_at" INTEGER NOT NULL,
  "updated_at" INTEGER NOT NULL,
  "content" TEXT NOT NULL,
  "title" TEXT NOT NULL,
  PRIMARY KEY("creator", "id")
);
CREATE INDEX "notes_by_creator" ON "notes"("creator", "created_at");
