//! `notely --cli`: a terminal UI over a running Notely — API and store stats, accounts, data
//! moves (start and cancel them), schema migration status, logs.
//!
//! `app.rs` holds the state and its pure `update`, `ui.rs` the pure `render`; this module runs
//! the loop: redraw every second or on a key, with data gathered from the server in process.

pub mod app;
pub mod ui;

use std::time::{Duration, Instant};

use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyEventKind};

pub use app::{AccountRow, App, DatabaseRow, MoveRequest, Page};

/// How often the data is refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// Runs the UI until `q`; `refresh` gathers fresh data into the app.
pub fn run(mut refresh: impl FnMut(&mut App)) -> Result<()> {
    let mut terminal = ratatui::init();
    let mut app = App::default();
    refresh(&mut app);
    let mut last = Instant::now();
    let result = (|| -> Result<()> {
        while !app.quit {
            terminal.draw(|frame| ui::render(&app, frame))?;
            let wait = REFRESH.saturating_sub(last.elapsed());
            if event::poll(wait)?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
            {
                app.on_key(key.code);
            }
            if last.elapsed() >= REFRESH {
                refresh(&mut app);
                last = Instant::now();
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}
