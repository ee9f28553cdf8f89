// SQLite itself creates the declaration at compile time: a CHECK naming a column that does not
// exist and a view whose query does not parse are compile errors, at the object.
strata::schema! {
    table jobs {
        id: i64 primary key,
        state: String check("stat IN ('new', 'done')"),
    }

    view live_jobs as "SELECT id FROM jobs WHERE";
}

fn main() {}
