// Every mistake of a declaration in one compile: two syntax errors (each saying what to write
// instead) and the checks the rest of the declaration fails.
strata::schema! {
    table hosts {
        id: i64 primary key,
        name: String not null,
        region: String default "eu",
    }

    table racks {
        id: String primary key autoincrement,
        host: i64 references nowhere(id),
        index racks_by_missing (missing),
    }
}

fn main() {}
