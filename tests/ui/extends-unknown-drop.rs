// `drop` names a table the extended declaration does not have.
mod m1 {
    strata::schema! {
        table hosts { id: i64 primary key }
    }
}

mod m2 {
    strata::schema! {
        extends super::m1;
        drop table racks;
        table jobs { id: i64 primary key }
    }
}

fn main() {}
