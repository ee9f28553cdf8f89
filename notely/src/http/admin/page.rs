//! The operator page's HTML, rendered on the server; a few lines of script refresh its body
//! every two seconds and send the Approve and Deploy buttons' POSTs with the session's CSRF
//! token.

use std::fmt::Write;

use super::overview::Overview;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #1d232a; color: #fff; padding: 12px 24px; display: flex; gap: 16px;
         align-items: center; }
header h1 { font-size: 18px; margin: 0; flex: 1; }
main { padding: 16px 24px; max-width: 1280px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 12px 16px;
          margin-bottom: 16px; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef0f2;
         vertical-align: top; }
th { font-weight: 600; color: #555; }
code { font: 12px ui-monospace, monospace; }
.banner { background: #fff4d6; border: 1px solid #f0c36d; padding: 10px 14px; border-radius: 6px;
          margin-bottom: 16px; display: flex; align-items: center; gap: 12px; }
.ok { color: #1a7f37; } .warn { color: #9a6700; } .bad { color: #cf222e; font-weight: 600; }
button { font: inherit; padding: 6px 14px; border-radius: 5px; border: 1px solid #1a7f37;
         background: #1f883d; color: #fff; cursor: pointer; }
button.plain { background: #fff; color: #1d232a; border-color: #aaa; }
.muted { color: #777; } #message { margin-left: 8px; }
form.login { max-width: 360px; margin: 80px auto; background: #fff; padding: 24px;
             border: 1px solid #dde1e6; border-radius: 6px; }
form.login input { width: 100%; box-sizing: border-box; padding: 6px; margin: 4px 0 12px; }
details.review { border-top: 1px solid #eef0f2; padding: 6px 0; }
details.review summary { cursor: pointer; }
h3 { font-size: 13px; margin: 10px 0 4px; color: #555; }
ul.changes { list-style: none; padding-left: 8px; font: 12px ui-monospace, monospace; }
li.added { color: #1a7f37; } li.removed { color: #cf222e; } li.changed { color: #9a6700; }
li.contract { font-weight: 600; }
pre.source { background: #f6f8fa; padding: 8px; overflow-x: auto; font: 12px/1.4 ui-monospace,
             monospace; max-height: 480px; }
pre.source .ln { color: #999; user-select: none; } pre.source .ln.mark { color: #cf222e;
             font-weight: 600; }
";

/// The login form, with an error to show.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"bad\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Notely operator page</title><style>{STYLE}</style></head><body>\
         <form class=\"login\" method=\"post\" action=\"/admin/login\">\
         <h2>Notely operator page</h2>{error}\
         <label for=\"token\">Operator token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
         <label for=\"name\">Your name (recorded with approvals)</label>\
         <input id=\"name\" name=\"name\" type=\"text\" maxlength=\"60\">\
         <button id=\"login\" type=\"submit\">Log in</button>\
         <p class=\"muted\">The token is in <code>admin.token</code> in Notely's data directory, \
         or in <code>NOTELY_ADMIN_TOKEN</code>.</p></form></body></html>"
    )
}

const SCRIPT: &str = r#"
const csrf = document.querySelector('meta[name=csrf]').content;
const shownAtLoad = document.getElementById('reviews');
const shownReviews = shownAtLoad ? shownAtLoad.dataset.reviews.split(',') : [];
async function refresh() {
  const res = await fetch('/admin/body', { credentials: 'same-origin' });
  if (res.status === 401) { location.reload(); return; }
  if (!res.ok) return;
  // Keep what the operator opened.
  const open = [...document.querySelectorAll('details[open]')].map((d) => d.id);
  document.getElementById('body').innerHTML = await res.text();
  for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
}
document.addEventListener('click', async (e) => {
  if (e.target.id !== 'deploy') return;
  e.target.disabled = true;
  const res = await fetch('/admin/api/deploy', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' }, body: '{}' });
  const out = await res.json();
  document.getElementById('message').textContent = res.ok
    ? `deploy ${out.id} started` : `refused: ${out.error}`;
  refresh();
});
document.addEventListener('click', async (e) => {
  if (e.target.id !== 'approve') return;
  e.target.disabled = true;
  // The reviews as the page first showed them: if they changed since (the body refreshes),
  // the server refuses and the operator reloads to read them again.
  const body = JSON.stringify({ reviews: shownReviews });
  const res = await fetch('/admin/api/approve', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' }, body });
  const out = await res.json();
  document.getElementById('message').textContent = res.ok
    ? `approved ${out.approved.length} migration(s) as ${out.by}`
    : `refused: ${out.error}`;
  refresh();
});
// A link to a migration (`/admin#m20240301090000`) opens its review.
function openLinked() {
  const d = location.hash && document.getElementById(location.hash.slice(1));
  if (d && d.tagName === 'DETAILS') { d.open = true; d.scrollIntoView(); }
}
window.addEventListener('hashchange', openLinked);
openLinked();
setInterval(refresh, 2000);
"#;

/// The whole page.
pub fn page(o: &Overview, name: &str, csrf: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"csrf\" content=\"{}\"><title>Notely operator page</title>\
         <style>{STYLE}</style></head><body>\
         <header><h1>Notely operator page</h1><span>{}</span>\
         <form method=\"post\" action=\"/admin/logout\" id=\"logout-form\">\
         <button class=\"plain\" type=\"button\" id=\"logout\">Log out</button></form></header>\
         <main><div id=\"message\" class=\"muted\"></div><div id=\"body\">{}</div></main>\
         <script>{SCRIPT}\
         document.getElementById('logout').addEventListener('click', async () => {{\
           await fetch('/admin/logout', {{ method: 'POST', credentials: 'same-origin', \
             headers: {{ 'X-CSRF-Token': csrf }} }}); location.reload(); }});\
         </script></body></html>",
        escape(csrf),
        escape(name),
        body(o)
    )
}

fn state_class(state: &str) -> &'static str {
    match state {
        "applied" => "ok",
        "pending" => "warn",
        _ => "bad",
    }
}

/// The page's refreshable body.
pub fn body(o: &Overview) -> String {
    let mut h = String::new();
    if o.awaiting_approval > 0 {
        let _ = write!(
            h,
            "<div class=\"banner\" id=\"awaiting\"><span><b>{n}</b> migration(s) await approval \
             ({mode} mode).{waiting}</span><button id=\"approve\" type=\"button\">Approve and \
             apply</button></div>",
            n = o.awaiting_approval,
            mode = escape(&o.mode),
            waiting = if o.waiting {
                " Notely serves its API once they are approved and applied."
            } else {
                ""
            }
        );
    } else if o.waiting {
        h.push_str(
            "<div class=\"banner\" id=\"applying\">Approved; applying the migrations…</div>",
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"ok\" id=\"uptodate\">Every database is up to date ({} mode).</p>",
            escape(&o.mode)
        );
    }
    reviews(&mut h, o);
    deploy(&mut h, o);
    h.push_str("<section id=\"moves\"><h2>Data moves</h2>");
    if o.moves.is_empty() {
        h.push_str("<p class=\"muted\">No data moves yet.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Move</th><th>What</th><th>State</th><th>Owners per phase</th>\
             <th>Verified</th><th>Records copied</th><th>Rate</th><th>To go</th><th>ETA</th>\
             <th>Verify</th></tr>",
        );
        for m in &o.moves {
            let r = &m.record;
            let phases = m
                .phases
                .iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let verify = if r.differences == 0 {
                "<span class=\"ok\">no differences</span>".to_string()
            } else {
                let found = m
                    .found
                    .iter()
                    .map(|(owner, d)| format!("{}: {}", escape(owner), escape(d)))
                    .collect::<Vec<_>>()
                    .join("<br>");
                format!(
                    "<span class=\"bad\">{} difference(s)</span><br>{found}",
                    r.differences
                )
            };
            let _ = write!(
                h,
                "<tr class=\"move\"><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td>\
                 <td>{}/{}</td><td>{}</td><td>{:.0}/s{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.id,
                escape(&r.description),
                if r.state.is_active() || r.state == strata_online::MoveState::Done {
                    "ok"
                } else {
                    "bad"
                },
                r.state.as_str(),
                escape(&phases),
                r.verified,
                r.owners,
                r.records_copied,
                r.rate,
                m.pace
                    .as_ref()
                    .map(|p| format!(
                        "<br><span class=\"muted pace\">{}</span>",
                        escape(&p.describe())
                    ))
                    .unwrap_or_default(),
                m.remaining,
                m.eta_s
                    .map(|e| format!("{e:.0}s"))
                    .unwrap_or_else(|| "-".into()),
                verify
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
    for (i, d) in o.databases.iter().enumerate() {
        let s = &d.status.status;
        let _ = write!(
            h,
            "<section class=\"database\"><h2><code>{}</code> — role <b>{}</b>, version {}{}{}</h2>",
            escape(&s.path.display().to_string()),
            escape(&s.role),
            s.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none (not created yet)".into()),
            if s.pending() > 0 {
                format!(", <span class=\"warn\">{} pending</span>", s.pending())
            } else {
                String::new()
            },
            if d.status.lagging {
                ", <span class=\"bad\">behind the others of its role</span>"
            } else {
                ""
            }
        );
        h.push_str(
            "<table><tr><th>Version</th><th>Name</th><th>Description</th><th>Class</th>\
             <th>Checksum</th><th>Status</th><th>Applied at</th><th>Duration</th></tr>",
        );
        for m in &s.migrations {
            let state = m.state.label();
            let mut status = match (state, m.approved) {
                ("pending", true) => "pending, approved".to_string(),
                _ => state.to_string(),
            };
            match &m.deferred_for {
                Some(who) if who.is_empty() => status.push_str(", deferred (after a contract)"),
                Some(who) => {
                    status.push_str(", deferred while these older instances serve: ");
                    status.push_str(&who.join("; "));
                }
                None => {}
            }
            let _ = write!(
                h,
                "<tr class=\"migration state-{state}\"><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"class\">{}</td>\
                 <td><code title=\"{}\">{}</code></td><td class=\"{}\">{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                m.version,
                escape(&m.name),
                escape(&m.description),
                m.class.map_or("-", strata::class::Class::label),
                escape(m.checksum.as_deref().unwrap_or("")),
                escape(
                    &m.checksum
                        .as_deref()
                        .unwrap_or("-")
                        .chars()
                        .take(12)
                        .collect::<String>()
                ),
                state_class(state),
                escape(&status),
                escape(m.applied_at.as_deref().unwrap_or("-")),
                m.duration_ms
                    .map(|d| format!("{d:.1} ms"))
                    .unwrap_or_else(|| "-".into())
            );
        }
        h.push_str("</table>");
        if !d.instances.is_empty() {
            h.push_str(
                "<table class=\"instances\"><tr><th>Instance</th><th>Binary</th>\
                 <th>Knows up to</th><th>Started</th><th>Heartbeat</th><th>State</th></tr>",
            );
            for i in &d.instances {
                let _ = write!(
                    h,
                    "<tr class=\"instance\"><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{:.0} s ago</td><td class=\"{}\">{}</td></tr>",
                    escape(&i.host),
                    i.pid,
                    escape(&i.label),
                    i.newest_version
                        .map_or_else(|| "-".to_string(), |v| v.to_string()),
                    escape(&i.started_at),
                    i.heartbeat_age_s,
                    if i.alive { "ok" } else { "warn" },
                    escape(
                        &i.gone
                            .as_deref()
                            .map_or_else(|| "alive".to_string(), |g| format!("gone: {g}"))
                    )
                );
            }
            h.push_str("</table>");
        }
        if !d.events.is_empty() {
            let _ = write!(
                h,
                "<details id=\"events-{i}\"><summary>Audit events</summary><table><tr>\
                 <th>At</th><th>Event</th><th>Migration</th><th>By</th><th>Detail</th></tr>"
            );
            for e in &d.events {
                let _ = write!(
                    h,
                    "<tr class=\"event\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&e.at),
                    escape(&e.kind),
                    e.version
                        .map(|v| format!("{v} {}", escape(e.name.as_deref().unwrap_or(""))))
                        .unwrap_or_default(),
                    escape(&e.actor),
                    escape(&e.detail)
                );
            }
            h.push_str("</table></details>");
        }
        h.push_str("</section>");
    }
    h
}

/// The review panels: one per pending migration (`#m<version>`, opened by a link), with its
/// source (numbered; the attribute's line marked), its schema change (added green, removed red,
/// contract changes bold), the databases it is pending in with each one's last rehearsal and
/// backup. The Approve button carries the digests of the reviews shown.
fn reviews(h: &mut String, o: &Overview) {
    use strata::class::ChangeKind;
    if o.reviews.is_empty() {
        return;
    }
    let digests: Vec<&str> = o.reviews.iter().map(|r| r.digest.as_str()).collect();
    let _ = write!(
        h,
        "<section id=\"reviews\" data-reviews=\"{}\"><h2>Review before approving</h2>",
        escape(&digests.join(","))
    );
    let mut shown: Vec<i64> = Vec::new();
    for r in &o.reviews {
        for m in &r.migrations {
            if shown.contains(&m.version) {
                continue;
            }
            shown.push(m.version);
            let _ = write!(
                h,
                "<details class=\"review\" id=\"m{v}\"><summary><b>{v}</b> {name} — \
                 <span class=\"{cls}\">{class}</span>{approved}{deferred} \
                 <a href=\"#m{v}\">link</a></summary>",
                v = m.version,
                name = escape(&m.name),
                cls = if m.class == strata::class::Class::Contract {
                    "bad"
                } else {
                    "ok"
                },
                class = m.class,
                approved = if m.approved { ", approved" } else { "" },
                deferred = if m.deferred {
                    ", deferred while older instances serve"
                } else {
                    ""
                },
            );
            let _ = write!(
                h,
                "<p>{}</p><p class=\"muted\">checksum <code>{}</code>; {}{}{}</p>",
                escape(&m.description),
                escape(&m.checksum),
                if m.transactional {
                    "one transaction"
                } else {
                    "no_transaction"
                },
                if m.foreign_keys_off {
                    ", foreign keys off"
                } else {
                    ""
                },
                if m.has_down {
                    ", has a down"
                } else {
                    ", no down"
                },
            );
            h.push_str("<h3>Schema change</h3>");
            if !m.schema_compared {
                h.push_str("<p class=\"muted\">No declared schema to compare.</p>");
            } else if m.changes.is_empty() {
                h.push_str("<p class=\"muted\">The declared schema does not change.</p>");
            } else {
                h.push_str("<ul class=\"changes\">");
                for c in &m.changes {
                    let (sign, class) = match c.kind {
                        ChangeKind::Added => ("+", "added"),
                        ChangeKind::Removed => ("−", "removed"),
                        ChangeKind::Changed => ("~", "changed"),
                    };
                    let _ = write!(
                        h,
                        "<li class=\"{class}{}\">{sign} {}{}</li>",
                        if c.contract { " contract" } else { "" },
                        escape(&c.to_string()),
                        if c.contract { " <b>[contract]</b>" } else { "" }
                    );
                }
                h.push_str("</ul>");
            }
            h.push_str("<h3>Evidence</h3><ul class=\"evidence\">");
            for r in o
                .reviews
                .iter()
                .filter(|r| r.migrations.iter().any(|x| x.version == m.version))
            {
                let mine = r.migrations.iter().find(|x| x.version == m.version);
                let rehearsal = match (&r.rehearsal, mine.and_then(|x| x.rehearsed.as_ref())) {
                    (None, _) => {
                        "<span class=\"warn\">not rehearsed</span> (<code>migrate rehearse</code>)"
                            .to_string()
                    }
                    (Some(e), Some(a)) => format!(
                        "rehearsal <span class=\"{}\">{}</span> at {} on {}: {:.1} ms, {} rows changed{}",
                        if e.passed { "ok" } else { "bad" },
                        if e.passed { "passed" } else { "FAILED" },
                        escape(&e.at),
                        escape(&e.copy),
                        a.duration_ms,
                        a.rows_changed,
                        if e.current {
                            ""
                        } else {
                            " <span class=\"warn\">(another pending set)</span>"
                        }
                    ),
                    (Some(e), None) => format!(
                        "<span class=\"warn\">last rehearsal ({}) did not run this code</span>",
                        escape(&e.at)
                    ),
                };
                let _ = write!(
                    h,
                    "<li><code>{}</code>: {}; {}</li>",
                    escape(&r.path.display().to_string()),
                    rehearsal,
                    match &r.backup_dir {
                        Some(d) => format!(
                            "backup first to <code>{}</code>",
                            escape(&d.display().to_string())
                        ),
                        None => "<span class=\"warn\">no backup first</span>".to_string(),
                    }
                );
            }
            h.push_str("</ul>");
            let _ = write!(
                h,
                "<h3>Source <code>{}</code></h3><pre class=\"source\">",
                escape(&m.file)
            );
            for (n, line) in strata::review::Review::numbered(m) {
                let _ = writeln!(
                    h,
                    "<span class=\"ln{}\">{n:>4}</span> {}",
                    if n == m.line as usize { " mark" } else { "" },
                    escape(line)
                );
            }
            h.push_str("</pre></details>");
        }
    }
    h.push_str("</section>");
}

/// The deploy section: the newest deploy, and the Deploy button.
fn deploy(h: &mut String, o: &Overview) {
    use crate::deploy::Phase;
    let d = &o.deploy;
    h.push_str("<section id=\"deploy\"><h2>Deploy</h2>");
    let class = match d.phase {
        Phase::Failed => "bad",
        Phase::Ready | Phase::None => "ok",
        _ => "warn",
    };
    let _ = write!(
        h,
        "<p>Phase <b class=\"{class}\" id=\"deploy-phase\">{}</b>",
        d.phase.as_str()
    );
    if let Some(id) = &d.id {
        let _ = write!(
            h,
            " — deploy <code>{}</code>, started {}",
            escape(id),
            d.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        );
    }
    h.push_str("</p>");
    let side = |s: &Option<crate::deploy::Side>| match s {
        Some(s) => format!(
            "pid {} — <code>{}</code>, migrations up to {}",
            s.pid,
            escape(&s.binary),
            escape(s.version.as_deref().unwrap_or("?"))
        ),
        None => "-".into(),
    };
    if d.phase != Phase::None {
        let _ = write!(
            h,
            "<table><tr><th>Old</th><td>{}</td></tr><tr><th>New</th><td>{}</td></tr>\
             <tr><th>Launched</th><td>{}</td></tr><tr><th>Overlap</th><td>{:.0} s{}</td></tr>\
             </table>",
            side(&d.old),
            side(&d.new),
            d.launched_at
                .map(|t| t.format("%H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into()),
            d.overlap_s,
            match d.overlap_left_s {
                Some(left) => format!(
                    " <progress id=\"overlap\" max=\"{:.1}\" value=\"{:.1}\"></progress> \
                     {left:.0} s left",
                    d.overlap_s,
                    d.overlap_s - left
                ),
                None => String::new(),
            }
        );
    }
    for (class, text) in [("bad", &d.reason), ("muted", &d.note)] {
        if let Some(text) = text {
            let _ = write!(h, "<p class=\"{class}\">{}</p>", escape(text));
        }
    }
    if o.can_deploy {
        let _ = write!(
            h,
            "<button id=\"deploy\" type=\"button\"{}>Deploy</button> \
             <span class=\"muted\">launches this server's binary as it is on disk now on the \
             same port, and hands over once it serves</span>",
            if d.phase.is_running() {
                " disabled"
            } else {
                ""
            }
        );
    } else {
        h.push_str("<p class=\"muted\">This process does not deploy.</p>");
    }
    h.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b a=\"x\">&'"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(login(Some("<script>")).contains("&lt;script&gt;"));
    }

    #[test]
    fn the_deploy_section_shows_the_phase_and_the_button() {
        use crate::deploy::{DeployState, Phase};
        let mut o = Overview {
            mode: "auto".into(),
            waiting: false,
            awaiting_approval: 0,
            databases: Vec::new(),
            reviews: Vec::new(),
            moves: Vec::new(),
            deploy: DeployState::none(),
            can_deploy: true,
        };
        let idle = body(&o);
        assert!(idle.contains("id=\"deploy-phase\">NONE<"), "{idle}");
        assert!(idle.contains("<button id=\"deploy\" type=\"button\">Deploy</button>"));
        o.deploy = DeployState {
            id: Some("d1".into()),
            phase: Phase::Wait,
            overlap_s: 30.0,
            overlap_left_s: Some(10.0),
            reason: Some("<b>".into()),
            ..DeployState::none()
        };
        let waiting = body(&o);
        assert!(
            waiting.contains(">WAIT<") && waiting.contains("10 s left"),
            "{waiting}"
        );
        assert!(waiting.contains("<progress id=\"overlap\" max=\"30.0\" value=\"20.0\">"));
        assert!(
            waiting.contains("type=\"button\" disabled>Deploy"),
            "{waiting}"
        );
        assert!(waiting.contains("&lt;b&gt;"), "escaped: {waiting}");
        o.can_deploy = false;
        assert!(!body(&o).contains("<button id=\"deploy\""));
    }

    #[test]
    fn a_review_shows_source_and_changes_escaped_with_the_attribute_line_marked() {
        use strata::class::{ChangeKind, Class, SchemaChange};
        use strata::review::{MigrationReview, Review};
        let m = MigrationReview {
            version: 20240301090000,
            name: "index_<notes>".into(),
            description: "a < b".into(),
            checksum: "ab".repeat(32),
            file: "migrations/src/m.rs".into(),
            line: 2,
            source: "// if a < b && c > d\n#[migration(20240301090000)]\nfn f() {}".into(),
            class: Class::Contract,
            declared_contract: true,
            schema_compared: true,
            changes: vec![
                SchemaChange {
                    kind: ChangeKind::Added,
                    item: "index",
                    name: "notes.<x>".into(),
                    detail: "on creator".into(),
                    contract: false,
                },
                SchemaChange {
                    kind: ChangeKind::Removed,
                    item: "column",
                    name: "notes.body".into(),
                    detail: String::new(),
                    contract: true,
                },
            ],
            transactional: true,
            foreign_keys_off: false,
            has_down: false,
            approved: false,
            deferred: false,
            blocked_by: Vec::new(),
            rehearsed: None,
        };
        let o = Overview {
            mode: "checked".into(),
            waiting: true,
            awaiting_approval: 1,
            databases: Vec::new(),
            reviews: vec![Review {
                path: "notes.db".into(),
                role: "notes".into(),
                migrations: vec![m],
                backup_dir: None,
                rehearsal: None,
                refused: None,
                digest: "d1g".into(),
            }],
            moves: Vec::new(),
            deploy: crate::deploy::DeployState::none(),
            can_deploy: false,
        };
        let h = body(&o);
        assert!(
            h.contains("<details class=\"review\" id=\"m20240301090000\">"),
            "{h}"
        );
        assert!(h.contains("data-reviews=\"d1g\""), "{h}");
        assert!(h.contains("// if a &lt; b &amp;&amp; c &gt; d"), "{h}");
        assert!(h.contains("index_&lt;notes&gt;") && !h.contains("index_<notes>"));
        assert!(
            h.contains("<span class=\"ln mark\">   2</span> #[migration(20240301090000)]"),
            "{h}"
        );
        assert!(
            h.contains("<li class=\"added\">+ adds index notes.&lt;x&gt; (on creator)</li>"),
            "{h}"
        );
        assert!(
            h.contains(
                "<li class=\"removed contract\">− drops column notes.body <b>[contract]</b></li>"
            ),
            "{h}"
        );
        assert!(
            h.contains("not rehearsed") && h.contains("no backup first"),
            "{h}"
        );
    }
}
