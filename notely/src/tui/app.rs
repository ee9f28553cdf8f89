//! The UI's state and how keys change it.

use ratatui::crossterm::event::KeyCode;

use strata_online::MoveStatus;

use crate::telemetry;

/// The pages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    #[default]
    Stats,
    Accounts,
    Moves,
    Migrations,
    Logs,
}

impl Page {
    pub const ALL: [Page; 5] = [
        Page::Stats,
        Page::Accounts,
        Page::Moves,
        Page::Migrations,
        Page::Logs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Page::Stats => "Stats",
            Page::Accounts => "Accounts",
            Page::Moves => "Moves",
            Page::Migrations => "Migrations",
            Page::Logs => "Logs",
        }
    }

    fn index(self) -> usize {
        Page::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// One account, with its placement and note count.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub is_migrating: bool,
    pub store: String,
    pub notes: usize,
}

/// One database's schema migration status.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseRow {
    pub path: String,
    pub role: String,
    pub version: String,
    pub pending: usize,
    pub problems: usize,
    /// Pending migrations put off while older instances serve (a contract and what follows).
    pub deferred: usize,
    /// The live instances serving on it: `pid (knows up to V)`, comma-separated.
    pub instances: String,
}

/// The newest deploy, as the Deployments panel shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeployPanel {
    pub id: String,
    /// `NONE`, `INITIAL`, `LAUNCH_NEW`, `WAIT`, `READY` or `FAILED`.
    pub phase: String,
    /// Why it failed, or what else happened.
    pub detail: Option<String>,
    /// The old (previous) and the new (current) process: pid and newest migration version.
    pub old: String,
    pub new: String,
    /// When the new process was launched (local time).
    pub launched: String,
    pub overlap_s: f64,
    /// During the overlap: how long until the hand-over.
    pub overlap_left_s: Option<f64>,
    /// This process handed over to this pid: it no longer serves.
    pub handed_over: Option<u32>,
}

/// An operator's request (from the moves page; `d`: a deploy, from the first page), carried
/// out by the task that feeds the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Move every account's notes to this store.
    AllTo(String),
    /// Cancel the newest unfinished move.
    CancelNewest,
    /// Shard the accounts into 4 shards, or reshard into twice as many.
    Shard,
    /// Deploy this server's binary as it is on disk now.
    Deploy,
}

/// The data the UI shows, as a background task last gathered it (the UI thread only reads the
/// newest one).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub address: String,
    pub stats: Option<telemetry::Snapshot>,
    pub accounts: Vec<AccountRow>,
    /// Data moves, newest first.
    pub moves: Vec<MoveStatus>,
    pub databases: Vec<DatabaseRow>,
    pub logs: Vec<String>,
    /// The newest deploy.
    pub deploy: DeployPanel,
    /// How many requests have been answered, and what became of the last one.
    pub answered: u64,
    pub answer: String,
}

/// Everything the UI shows: the newest snapshot, and the UI's own state.
#[derive(Debug, Clone, Default)]
pub struct App {
    pub page: Page,
    pub quit: bool,
    /// The data, as last gathered (its `answered` counts the answers seen so far).
    pub data: Snapshot,
    /// First log line shown on the logs page, counted from the newest.
    pub log_scroll: usize,
    /// A request, waiting to be sent to the task that feeds the UI.
    pub request: Option<Request>,
    /// What became of the last request.
    pub message: String,
}

impl App {
    /// Takes in freshly gathered data; a new answer to a request replaces the message.
    pub fn apply(&mut self, snapshot: &Snapshot) {
        if snapshot.answered != self.data.answered {
            self.message.clone_from(&snapshot.answer);
        }
        self.data.clone_from(snapshot);
    }

    /// Applies one key press.
    pub fn on_key(&mut self, key: KeyCode) {
        let n = Page::ALL.len();
        match key {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                self.page = Page::ALL[(self.page.index() + 1) % n];
            }
            KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                self.page = Page::ALL[(self.page.index() + n - 1) % n];
            }
            KeyCode::Char(c @ '1'..='5') => self.page = Page::ALL[(c as usize) - ('1' as usize)],
            KeyCode::Char('n') if self.page == Page::Moves => {
                self.request = Some(Request::AllTo(notely_migrations::NOTES.into()));
                self.message = "starting a move of all accounts to notes…".into();
            }
            KeyCode::Char('s') if self.page == Page::Moves => {
                self.request = Some(Request::Shard);
                self.message = "sharding (4 shards, or twice as many as now)…".into();
            }
            KeyCode::Char('d') if self.page == Page::Stats => {
                self.request = Some(Request::Deploy);
                self.message = "starting a deploy…".into();
            }
            KeyCode::Char('c') if self.page == Page::Moves => {
                self.request = Some(Request::CancelNewest);
                self.message = "cancelling the newest unfinished move…".into();
            }
            KeyCode::Up | KeyCode::Char('k') if self.page == Page::Logs => {
                self.log_scroll = (self.log_scroll + 1).min(self.data.logs.len().saturating_sub(1));
            }
            KeyCode::Down | KeyCode::Char('j') if self.page == Page::Logs => {
                self.log_scroll = self.log_scroll.saturating_sub(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_between_pages_and_quit() {
        let mut app = App::default();
        app.on_key(KeyCode::Char('l'));
        assert_eq!(app.page, Page::Accounts);
        app.on_key(KeyCode::Left);
        app.on_key(KeyCode::Left);
        assert_eq!(app.page, Page::Logs);
        app.on_key(KeyCode::Char('4'));
        assert_eq!(app.page, Page::Migrations);
        app.on_key(KeyCode::Char('n'));
        assert_eq!(app.request, None, "move keys act on the moves page only");
        app.on_key(KeyCode::Char('3'));
        app.on_key(KeyCode::Char('n'));
        assert_eq!(app.request, Some(Request::AllTo("notes".into())));
        app.on_key(KeyCode::Char('d'));
        assert_eq!(
            app.request,
            Some(Request::AllTo("notes".into())),
            "d deploys from the first page only"
        );
        app.on_key(KeyCode::Char('1'));
        app.on_key(KeyCode::Char('d'));
        assert_eq!(app.request, Some(Request::Deploy));
        assert!(!app.quit);
        app.on_key(KeyCode::Char('q'));
        assert!(app.quit);
    }

    #[test]
    fn a_snapshot_replaces_the_message_only_with_a_new_answer() {
        let mut app = App::default();
        app.on_key(KeyCode::Char('3'));
        app.on_key(KeyCode::Char('c'));
        let waiting = app.message.clone();
        let mut snapshot = Snapshot {
            address: "http://127.0.0.1:1".into(),
            logs: vec!["a line".into()],
            ..Snapshot::default()
        };
        app.apply(&snapshot);
        assert_eq!(
            (app.data.address.as_str(), app.data.logs.len()),
            ("http://127.0.0.1:1", 1)
        );
        assert_eq!(app.message, waiting, "no answer yet");
        snapshot.answered = 1;
        snapshot.answer = "move 1 is cancelled".into();
        app.apply(&snapshot);
        assert_eq!(app.message, "move 1 is cancelled");
        app.on_key(KeyCode::Char('n'));
        app.apply(&snapshot);
        assert_ne!(
            app.message, "move 1 is cancelled",
            "an old answer stays old"
        );
    }
}
