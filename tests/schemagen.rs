//! Random SQLite schemas for the introspection round trip: every form `schema!` declares, in
//! random combinations, written the way people write them (lower and upper case, spacing, with
//! and without quotes). Deterministic: a seed gives one schema.

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

struct Col {
    name: String,
    ty: &'static str,
    not_null: bool,
    text_like: bool,
    integer: bool,
}

/// The DDL of one random schema: 1–4 tables, their indexes, maybe a view and a trigger.
pub fn schema(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut sql = String::new();
    let mut tables: Vec<(String, Vec<Col>, Option<String>)> = Vec::new();
    let n_tables = 1 + rng.below(4);
    for t in 0..n_tables {
        let table = format!("t{t}_{}", rng.pick(&["items", "Events", "hosts", "jobs"]));
        let strict = rng.chance(20);
        let without_rowid = rng.chance(15);
        let mut cols: Vec<Col> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        // The key: an integer rowid alias (maybe AUTOINCREMENT), a text key, or composite.
        let key_kind = if without_rowid {
            1 + rng.below(2)
        } else {
            rng.below(3)
        };
        let mut pk_cols: Vec<String> = Vec::new();
        match key_kind {
            0 => {
                let auto = rng.chance(40);
                parts.push(format!(
                    "id INTEGER PRIMARY KEY{}",
                    if auto { " AUTOINCREMENT" } else { "" }
                ));
                cols.push(Col {
                    name: "id".into(),
                    ty: "INTEGER",
                    not_null: true,
                    text_like: false,
                    integer: true,
                });
            }
            1 => {
                parts.push("code TEXT NOT NULL PRIMARY KEY".into());
                cols.push(Col {
                    name: "code".into(),
                    ty: "TEXT",
                    not_null: true,
                    text_like: true,
                    integer: false,
                });
            }
            _ => {
                parts.push("a INTEGER NOT NULL".into());
                parts.push("b TEXT NOT NULL".into());
                cols.push(Col {
                    name: "a".into(),
                    ty: "INTEGER",
                    not_null: true,
                    text_like: false,
                    integer: true,
                });
                cols.push(Col {
                    name: "b".into(),
                    ty: "TEXT",
                    not_null: true,
                    text_like: true,
                    integer: false,
                });
                pk_cols = vec!["a".into(), "b".into()];
            }
        }
        let n_cols = 1 + rng.below(5);
        for c in 0..n_cols {
            let types: &[&str] = if strict {
                &["INTEGER", "TEXT", "REAL", "BLOB", "ANY", "INT"]
            } else {
                &[
                    "INTEGER",
                    "TEXT",
                    "REAL",
                    "BLOB",
                    "VARCHAR(40)",
                    "BOOLEAN",
                    "DATETIME",
                    "",
                    "numeric",
                ]
            };
            let ty = rng.pick(types);
            let name = format!("c{c}");
            let not_null = rng.chance(40);
            let text_like = matches!(ty, "TEXT" | "VARCHAR(40)");
            let integer = matches!(ty, "INTEGER" | "INT" | "BOOLEAN");
            let mut def = if ty.is_empty() {
                name.clone()
            } else {
                format!("{name} {ty}")
            };
            if not_null {
                def.push_str(" NOT NULL");
            }
            let generated = !not_null && integer && rng.chance(15) && !cols.is_empty();
            if generated {
                let src = cols.iter().find(|c| c.integer).map(|c| c.name.clone());
                match src {
                    Some(src) => {
                        def.push_str(&format!(
                            " GENERATED ALWAYS AS ({src} * 2){}",
                            if rng.chance(50) { " STORED" } else { "" }
                        ));
                    }
                    None => def.push_str(" DEFAULT 0"),
                }
            } else {
                match rng.below(7) {
                    0 if integer => def.push_str(" DEFAULT 0"),
                    1 if text_like => def.push_str(" DEFAULT 'none'"),
                    2 if !not_null => def.push_str(" DEFAULT NULL"),
                    3 if text_like => def.push_str(" DEFAULT CURRENT_TIMESTAMP"),
                    4 if integer => def.push_str(" DEFAULT (strftime ('%s', 'now'))"),
                    5 if integer => def.push_str(" default -1"),
                    _ => {}
                }
            }
            if text_like && rng.chance(25) {
                def.push_str(&format!(
                    " COLLATE {}",
                    rng.pick(&["NOCASE", "nocase", "RTRIM"])
                ));
            }
            if integer && !generated && rng.chance(20) {
                def.push_str(&format!(" CHECK ({name} >= 0)"));
            }
            if !generated && rng.chance(10) {
                def.push_str(" UNIQUE");
            }
            // A foreign key to an earlier table with a single-column key.
            if !generated && rng.chance(25) {
                let parent = tables.iter().find(|(_, _, key)| key.is_some());
                if let Some((parent, _, Some(key))) = parent {
                    let action = rng.pick(&[
                        "",
                        " ON DELETE CASCADE",
                        " ON DELETE SET NULL",
                        " ON UPDATE CASCADE ON DELETE RESTRICT",
                    ]);
                    let deferrable = if rng.chance(30) {
                        " DEFERRABLE INITIALLY DEFERRED"
                    } else {
                        ""
                    };
                    def.push_str(&format!(" REFERENCES {parent}({key}){action}{deferrable}"));
                }
            }
            parts.push(def);
            cols.push(Col {
                name,
                ty,
                not_null,
                text_like,
                integer,
            });
        }
        if !pk_cols.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", pk_cols.join(", ")));
        }
        if cols.len() > 2 && rng.chance(30) {
            parts.push(format!("UNIQUE ({}, {})", cols[1].name, cols[2].name));
        }
        if let Some(c) = cols.iter().find(|c| c.integer && c.name != "id")
            && rng.chance(25)
        {
            parts.push(format!("CHECK ({} < 1000000)", c.name));
        }
        let mut options = Vec::new();
        if strict {
            options.push("STRICT");
        }
        if without_rowid {
            options.push("WITHOUT ROWID");
        }
        sql.push_str(&format!(
            "CREATE TABLE {table} (\n  {}\n) {};\n",
            parts.join(",\n  "),
            options.join(", ")
        ));
        let n_indexes = rng.below(3);
        for i in 0..n_indexes {
            let col = &cols[rng.below(cols.len() as u64) as usize];
            let unique = rng.chance(30);
            let mut term = col.name.clone();
            if col.text_like && rng.chance(30) {
                term = format!("lower({term})");
            } else if rng.chance(30) {
                term.push_str(" DESC");
            }
            if col.text_like && !term.starts_with("lower") && rng.chance(30) {
                term = format!("{} COLLATE NOCASE", col.name);
            }
            let predicate = if !col.not_null && rng.chance(40) {
                format!(" WHERE {} IS NOT NULL", col.name)
            } else {
                String::new()
            };
            sql.push_str(&format!(
                "CREATE {}INDEX {table}_i{i} ON {table} ({term}){predicate};\n",
                if unique { "UNIQUE " } else { "" }
            ));
        }
        let key = match key_kind {
            0 => Some("id".to_string()),
            1 => Some("code".to_string()),
            _ => None,
        };
        let _ = (&cols[0].ty, &cols[0].not_null);
        tables.push((table, cols, key));
    }
    if rng.chance(40) {
        let (table, cols, _) = &tables[0];
        sql.push_str(&format!(
            "CREATE VIEW v_{table} AS SELECT {} FROM {table};\n",
            cols.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if rng.chance(30) {
        let (table, _, _) = &tables[tables.len() - 1];
        sql.push_str(&format!(
            "CREATE TRIGGER tr_{table} AFTER DELETE ON {table} BEGIN SELECT 1; END;\n"
        ));
    }
    sql
}
