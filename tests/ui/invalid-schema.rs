strata::schema! {
    table notes {
        id: i64 primary key,
        content: String,
        content: String,
        index notes_by_creator (creator),
    }
    table pets {
        id: i64 primary key,
        owner: i64 references people(id),
    }
}

fn main() {}
