//! What the operator page shows: every database with its migrations and recent audit events,
//! the migrations awaiting approval, the moves, and the newest deploy.

use std::path::Path;

use serde::Serialize;
use strata_online::{Engine, MoveStatus};

use crate::db::Settings;
use crate::store::Note;

/// One database as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    #[serde(flatten)]
    pub status: strata::DatabaseStatus,
    /// The newest audit events, newest first.
    pub events: Vec<strata::store::Event>,
    /// The processes registered as serving on it (alive or recently gone).
    pub instances: Vec<strata::instances::Instance>,
}

/// What the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub mode: String,
    /// Checked mode is waiting for an approval: the API is not served yet.
    pub waiting: bool,
    /// Pending migrations not approved yet, over all databases.
    pub awaiting_approval: usize,
    pub databases: Vec<DatabaseView>,
    /// What each database's pending migrations will do (databases with some pending only).
    pub reviews: Vec<strata::review::Review>,
    pub moves: Vec<MoveStatus>,
    /// The newest deploy (phase `NONE` when there was none), as `GET /deploy` shows it.
    pub deploy: crate::deploy::DeployState,
    /// Whether this process can start a deploy (a server started by `notely serve`).
    pub can_deploy: bool,
}

/// Events shown per database.
const EVENTS: usize = 15;

impl Overview {
    /// Reads the overview of the databases under `data_dir` (the moves from `engine`, none
    /// without one), `waiting` telling whether checked mode waits for an approval.
    pub fn gather(
        data_dir: &Path,
        settings: &Settings,
        engine: Option<&Engine<Note>>,
        waiting: bool,
    ) -> anyhow::Result<Overview> {
        let fleet = crate::db::fleet(data_dir, settings);
        let mut databases = Vec::new();
        let mut reviews = Vec::new();
        for status in fleet.status()? {
            let migrator = fleet.migrator(&status.status.role);
            if status.status.pending() > 0 {
                reviews.push(migrator.review(&status.status.path)?);
            }
            let history = migrator.history(&status.status.path)?;
            let instances = migrator.instances(&status.status.path)?;
            let mut events = history.events;
            events.reverse();
            events.truncate(EVENTS);
            databases.push(DatabaseView {
                status,
                events,
                instances,
            });
        }
        let awaiting_approval = databases
            .iter()
            .flat_map(|d| &d.status.status.migrations)
            .filter(|m| {
                matches!(
                    m.state,
                    strata::MigrationState::Pending | strata::MigrationState::OutOfOrder
                ) && !m.approved
            })
            .count();
        let moves = match engine {
            Some(engine) => engine.moves()?,
            None => Vec::new(),
        };
        let deploy = crate::deploy::status(data_dir)?;
        Ok(Overview {
            mode: format!("{:?}", settings.mode).to_lowercase(),
            waiting,
            awaiting_approval,
            databases,
            reviews,
            moves,
            deploy,
            can_deploy: false,
        })
    }
}
