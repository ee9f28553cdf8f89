//! `notely --cli`: a terminal UI over a running Notely — API and store stats with the
//! deployments (start one), accounts, data moves (start and cancel them), schema migration
//! status, logs.
//!
//! `app.rs` holds the state and its pure `update`, `ui.rs` the pure `render`; this module runs
//! the loop (ratatui's async pattern): a background task gathers a [`Snapshot`] and publishes it
//! on a `watch` channel, and the UI thread only reads the newest one and draws; move requests go
//! back to that task on a channel. Nothing here waits on the server.

pub mod app;
pub mod ui;

use std::time::Duration;

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::{mpsc, watch};

pub use app::{AccountRow, App, DatabaseRow, DeployPanel, Page, Request, Snapshot};

/// How long the UI waits for a key before looking for a newer snapshot.
const TICK: Duration = Duration::from_millis(100);

/// Runs the UI until `q`: draws the newest snapshot from `feed`, and sends the operator's
/// requests (moves, deploys) to `requests`.
pub fn run(
    mut feed: watch::Receiver<Snapshot>,
    requests: mpsc::UnboundedSender<Request>,
) -> Result<()> {
    let mut terminal = ratatui::init();
    let mut app = App::default();
    app.apply(&feed.borrow_and_update());
    let result = (|| -> Result<()> {
        let mut dirty = true;
        while !app.quit {
            if dirty {
                terminal.draw(|frame| ui::render(&app, frame))?;
                dirty = false;
            }
            if event::poll(TICK)?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                app.on_key(key.code);
                if let Some(request) = app.request.take() {
                    // The feed ends only with the UI; an error here means it failed already.
                    let _ = requests.send(request);
                }
                dirty = true;
            }
            if feed.has_changed().unwrap_or(false) {
                app.apply(&feed.borrow_and_update());
                dirty = true;
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
