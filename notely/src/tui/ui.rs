//! Drawing the UI: a pure function of the [`App`].

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table, Tabs};

use super::app::{App, Page};
use crate::telemetry::Stats;

const KEYS: &str = " ←/→ h/l pages · 1-5 jump · d deploy · ↑/↓ logs · moves: n all to notes, s shard ×2, c cancel · q quit ";

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let [tabs, body, keys] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let titles: Vec<&str> = Page::ALL.iter().map(|p| p.title()).collect();
    let selected = Page::ALL.iter().position(|p| *p == app.page).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(
                Style::default()
                    .add_modifier(Modifier::BOLD)
                    .fg(Color::Yellow),
            )
            .block(Block::bordered().title(format!(" Notely {} ", app.data.address))),
        tabs,
    );
    match app.page {
        Page::Stats => stats(app, frame, body),
        Page::Accounts => accounts(app, frame, body),
        Page::Moves => moves(app, frame, body),
        Page::Migrations => migrations(app, frame, body),
        Page::Logs => logs(app, frame, body),
    }
    frame.render_widget(
        Paragraph::new(KEYS).style(Style::default().fg(Color::DarkGray)),
        keys,
    );
}

fn stat_row(name: &str, s: &Stats) -> Row<'static> {
    Row::new(vec![
        name.to_string(),
        s.count.to_string(),
        s.per_minute.to_string(),
        format!("{:.2}", s.p50_ms),
        format!("{:.2}", s.p95_ms),
        format!("{:.2}", s.p99_ms),
        s.errors.to_string(),
    ])
}

fn stat_table<'a>(title: &'a str, first: &'a str, rows: Vec<Row<'static>>) -> Table<'a> {
    Table::new(
        rows,
        [
            Constraint::Min(36),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(vec![
            first, "Total", "RPM", "p50 ms", "p95 ms", "p99 ms", "Errors",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(title))
}

fn stats(app: &App, frame: &mut Frame, area: Rect) {
    let [api, stores, deploys, bottom] = Layout::vertical([
        Constraint::Percentage(38),
        Constraint::Percentage(28),
        Constraint::Length(6),
        Constraint::Min(3),
    ])
    .areas(area);
    deployments(app, frame, deploys);
    let Some(s) = &app.data.stats else {
        frame.render_widget(
            Paragraph::new("waiting for data…").block(Block::bordered()),
            area,
        );
        return;
    };
    let api_rows = s.api.iter().map(|(k, v)| stat_row(k, v)).collect();
    frame.render_widget(stat_table(" API Requests ", "Route", api_rows), api);
    let store_rows = s.stores.iter().map(|(k, v)| stat_row(k, v)).collect();
    frame.render_widget(
        stat_table(" Data Store Access ", "Store operation", store_rows),
        stores,
    );
    let counts: Vec<String> = s
        .note_counts
        .iter()
        .map(|(store, n)| format!("{store}: {n}"))
        .collect();
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    frame.render_widget(
        Paragraph::new(if counts.is_empty() {
            "-".to_string()
        } else {
            counts.join("   ")
        })
        .block(Block::bordered().title(" Note Counts by Store ")),
        left,
    );
    let misses_style = if s.consistency_misses == 0 {
        Style::default().fg(Color::Green)
    } else {
        Style::default().fg(Color::Red)
    };
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!("Consistency misses: {}", s.consistency_misses),
            misses_style,
        ))
        .block(Block::bordered().title(" Strict users ")),
        right,
    );
}

/// The Deployments panel (the original's "Deployments [Press 'd' to deploy]"): the newest
/// deploy's phase, the previous and current process, the launch time, and a progress bar
/// during the overlap.
fn deployments(app: &App, frame: &mut Frame, area: Rect) {
    let d = &app.data.deploy;
    let block = match d.handed_over {
        Some(pid) => Block::bordered()
            .title(format!(
                " Deployments — handed over to pid {pid}: this process no longer serves (q quits) "
            ))
            .border_style(Style::default().fg(Color::Yellow)),
        None => Block::bordered().title(" Deployments [Press 'd' to deploy] "),
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, gauge] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let phase_style = match d.phase.as_str() {
        "FAILED" => Style::default().fg(Color::Red),
        "READY" => Style::default().fg(Color::Green),
        "NONE" | "" => Style::default(),
        _ => Style::default().fg(Color::Yellow),
    };
    let mut lines = vec![Line::from(vec![
        ratatui::text::Span::raw("Phase: "),
        ratatui::text::Span::styled(
            if d.phase.is_empty() { "NONE" } else { &d.phase }.to_string(),
            phase_style.add_modifier(Modifier::BOLD),
        ),
        ratatui::text::Span::raw(if d.id.is_empty() {
            String::new()
        } else {
            format!("   deploy {}   launched {}", d.id, d.launched)
        }),
    ])];
    if !d.id.is_empty() {
        lines.push(Line::raw(format!(
            "Current: {}   Previous: {}",
            d.new, d.old
        )));
    }
    let detail = if app.message.is_empty() || d.overlap_left_s.is_some() {
        d.detail.clone().unwrap_or_default()
    } else {
        app.message.clone()
    };
    lines.push(Line::styled(detail, Style::default().fg(Color::DarkGray)));
    frame.render_widget(Paragraph::new(lines), text);
    if let Some(left) = d.overlap_left_s {
        let ratio = if d.overlap_s > 0.0 {
            ((d.overlap_s - left) / d.overlap_s).clamp(0.0, 1.0)
        } else {
            1.0
        };
        frame.render_widget(
            Gauge::default()
                .gauge_style(Style::default().fg(Color::Cyan))
                .ratio(ratio)
                .label(format!("overlap: {left:.0} s left of {:.0} s", d.overlap_s)),
            gauge,
        );
    }
}

fn accounts(app: &App, frame: &mut Frame, area: Rect) {
    let rows: Vec<Row> = app
        .data
        .accounts
        .iter()
        .map(|a| {
            Row::new(vec![
                a.id.clone(),
                a.name.clone(),
                if a.is_migrating { "yes" } else { "no" }.to_string(),
                a.store.clone(),
                a.notes.to_string(),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(38),
            Constraint::Min(20),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(vec!["ID", "Name", "Migrating", "Store", "Notes"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(format!(" Accounts ({}) ", app.data.accounts.len())));
    frame.render_widget(table, area);
}

fn moves(app: &App, frame: &mut Frame, area: Rect) {
    let [table_area, message] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(4)]).areas(area);
    let rows: Vec<Row> = app
        .data
        .moves
        .iter()
        .map(|m| {
            let r = &m.record;
            let style = match r.state {
                strata_online::MoveState::Failed => Style::default().fg(Color::Red),
                s if s.is_active() => Style::default().fg(Color::Yellow),
                _ => Style::default(),
            };
            Row::new(vec![
                r.id.to_string(),
                r.description.clone(),
                r.state.as_str().to_string(),
                m.phases
                    .iter()
                    .map(|(p, n)| format!("{p} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{}/{}", r.verified, r.owners),
                r.records_copied.to_string(),
                format!("{:.0}", r.rate),
                m.remaining.to_string(),
                m.eta_s
                    .map(|e| format!("{e:.0}s"))
                    .unwrap_or_else(|| "-".into()),
                r.differences.to_string(),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Min(22),
            Constraint::Length(10),
            Constraint::Length(22),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(5),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new(vec![
            "ID", "Move", "State", "Phases", "Verified", "Copied", "Rec/s", "To go", "ETA", "Diff",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(" Data moves "));
    frame.render_widget(table, table_area);
    // The newest paced move's controller: rate, budget, p99 against its baseline, throttling.
    let pace = app.data.moves.iter().find_map(|m| {
        m.pace
            .as_ref()
            .map(|p| format!("move {}: {}", m.record.id, p.describe()))
    });
    let keys = if app.message.is_empty() {
        "n: move every account to the notes store · s: shard into 4, or twice as many shards \
         · c: cancel the newest unfinished move"
    } else {
        app.message.as_str()
    };
    let text = match pace {
        Some(p) => format!("{p}\n{keys}"),
        None => keys.to_string(),
    };
    frame.render_widget(Paragraph::new(text).block(Block::bordered()), message);
}

fn migrations(app: &App, frame: &mut Frame, area: Rect) {
    let rows: Vec<Row> = app
        .data
        .databases
        .iter()
        .map(|d| {
            let style = if d.problems > 0 {
                Style::default().fg(Color::Red)
            } else if d.pending > 0 || d.deferred > 0 {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default()
            };
            Row::new(vec![
                d.path.clone(),
                d.role.clone(),
                d.version.clone(),
                d.pending.to_string(),
                d.problems.to_string(),
                d.deferred.to_string(),
                d.instances.clone(),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(30),
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(20),
        ],
    )
    .header(
        Row::new(vec![
            "Database",
            "Role",
            "Version",
            "Pending",
            "Problems",
            "Deferred",
            "Instances (pid ≤ newest known)",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(" Schema migrations "));
    frame.render_widget(table, area);
}

fn logs(app: &App, frame: &mut Frame, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let end = app.data.logs.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = app.data.logs[start..end]
        .iter()
        .map(|l| {
            let style = if l.contains("ERROR") || l.contains("CONSISTENCY") {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            Line::styled(l.clone(), style)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Logs ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::telemetry::Snapshot;
    use crate::tui::app::{AccountRow, DatabaseRow, DeployPanel};

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(110, 30)).unwrap();
        terminal.draw(|f| render(app, f)).unwrap();
        terminal.backend().to_string()
    }

    fn sample() -> App {
        let stats = Stats {
            count: 42,
            errors: 0,
            per_minute: 40,
            p50_ms: 0.5,
            p95_ms: 1.25,
            p99_ms: 2.0,
        };
        let data = crate::tui::app::Snapshot {
            address: "http://127.0.0.1:8080".into(),
            stats: Some(Snapshot {
                api: BTreeMap::from([(
                    "GET /accounts/{id}/notes/{note}".to_string(),
                    stats.clone(),
                )]),
                stores: BTreeMap::from([("notes get".to_string(), stats)]),
                note_counts: BTreeMap::from([("notes".to_string(), 15)]),
                consistency_misses: 0,
                moves: Vec::new(),
            }),
            moves: vec![strata_online::MoveStatus {
                record: strata_online::MoveRecord {
                    id: 7,
                    description: "all accounts → notes".into(),
                    state: strata_online::MoveState::Running,
                    created_at: 0,
                    updated_at: 0,
                    finished_at: None,
                    owners: 5,
                    records_total: 1000,
                    records_copied: 400,
                    verified: 2,
                    differences: 0,
                    worker: None,
                    heartbeat: None,
                    rate: 2000.0,
                    error: None,
                },
                phases: BTreeMap::from([("backfill".to_string(), 1)]),
                remaining: 600,
                eta_s: Some(0.3),
                pace: Some(strata_online::pace::PaceState {
                    rate: 2000.0,
                    budget: 1.5,
                    baseline_ms: Some(2.0),
                    measured_ms: Some(2.6),
                    throttled: 0.25,
                    ..strata_online::pace::PaceState::default()
                }),
                found: Vec::new(),
                targets: BTreeMap::new(),
            }],
            accounts: vec![AccountRow {
                id: "6a1d…".into(),
                name: "LoadTestUser0".into(),
                is_migrating: false,
                store: "notes".into(),
                notes: 3,
            }],
            databases: vec![DatabaseRow {
                path: ".data/notes.db".into(),
                role: "notes".into(),
                version: "20240301090000".into(),
                pending: 0,
                problems: 0,
                deferred: 1,
                instances: "4242 (≤20240301090000)".into(),
            }],
            logs: vec![
                "09:00:00.000 INFO listening".into(),
                "09:00:01.000 WARN CONSISTENCY ERROR: x".into(),
            ],
            ..crate::tui::app::Snapshot::default()
        };
        App {
            data,
            ..App::default()
        }
    }

    #[test]
    fn every_page_shows_its_data_and_the_keys() {
        let mut app = sample();
        let stats = screen(&app);
        for part in [
            "API Requests",
            "GET /accounts/{id}/notes/{note}",
            "42",
            "1.25",
            "notes: 15",
            "Consistency misses: 0",
            "q quit",
        ] {
            assert!(stats.contains(part), "{part:?} missing:\n{stats}");
        }
        app.on_key(ratatui::crossterm::event::KeyCode::Char('2'));
        let accounts = screen(&app);
        assert!(
            accounts.contains("LoadTestUser0") && accounts.contains("Accounts (1)"),
            "{accounts}"
        );
        app.on_key(ratatui::crossterm::event::KeyCode::Char('3'));
        let moves = screen(&app);
        for part in [
            "all accounts → notes",
            "running",
            "backfill 1",
            "2/5",
            "400",
            "2000",
            "move 7: pace 2000/s within 1.50× (p99 2.6 ms, 2.0 before), throttled 25%",
        ] {
            assert!(moves.contains(part), "{part:?} missing:\n{moves}");
        }
        app.on_key(ratatui::crossterm::event::KeyCode::Char('4'));
        let migrations = screen(&app);
        assert!(
            migrations.contains(".data/notes.db")
                && migrations.contains("20240301090000")
                && migrations.contains("4242"),
            "{migrations}"
        );
        app.on_key(ratatui::crossterm::event::KeyCode::Char('5'));
        let logs = screen(&app);
        assert!(logs.contains("CONSISTENCY ERROR: x"), "{logs}");
    }

    #[test]
    fn the_deployments_panel_shows_the_overlap_and_the_hand_over() {
        let mut app = sample();
        let idle = screen(&app);
        assert!(
            idle.contains("Deployments [Press 'd' to deploy]") && idle.contains("Phase: NONE"),
            "{idle}"
        );
        app.data.deploy = DeployPanel {
            id: "20260101-120000-000-41".into(),
            phase: "WAIT".into(),
            detail: None,
            old: "pid 41 · migrations up to 20261129200100".into(),
            new: "pid 42 · migrations up to 20261129200100".into(),
            launched: "12:00:01".into(),
            overlap_s: 30.0,
            overlap_left_s: Some(12.0),
            handed_over: None,
        };
        let waiting = screen(&app);
        for part in [
            "Phase: WAIT",
            "launched 12:00:01",
            "Current: pid 42",
            "Previous: pid 41",
            "overlap: 12 s left of 30 s",
            "API Requests",
        ] {
            assert!(waiting.contains(part), "{part:?} missing:\n{waiting}");
        }
        app.data.deploy.phase = "READY".into();
        app.data.deploy.overlap_left_s = None;
        app.data.deploy.handed_over = Some(42);
        let over = screen(&app);
        assert!(
            over.contains("handed over to pid 42: this process no longer serves (q quits)"),
            "{over}"
        );
    }
}
