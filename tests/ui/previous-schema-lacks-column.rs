// A transform reads rows through the previous migration's declaration, which has no `title`.
use strata::{Result, Tx, migration};

mod m1 {
    strata::schema! {
        table notes {
            id: i64 primary key,
            content: String,
        }
    }
}

mod m2 {
    use super::m1 as prev;
    use strata::{Result, Tx, migration};

    strata::schema! {
        table notes {
            id: i64 primary key,
            content: String,
            title: String,
        }
    }

    #[migration(20240226153000, foreign_keys = off)]
    fn add_titles(tx: &mut Tx) -> Result<()> {
        tx.rebuild_table(notes::Table, |tx| {
            tx.select::<prev::notes::Row>().for_each(|old| {
                tx.insert(&notes::Row { id: old.id, content: old.content, title: old.title })
            })
        })
    }
}

#[migration(20240226153100, schema = none)]
fn other(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}
