//! The visual report: one self-contained HTML page with the inventory as a sortable, filterable
//! table and a timeline of every token's life (created, last used, expiry, Dynatrace's purge of
//! expired classic tokens, and from a plan: the next rotation, the end of the grace, the
//! deletion), plus the plan's steps when there is a plan. Written for someone who has never seen
//! tokensmith: the page explains itself.
//!
//! Self-contained and inert by construction: CSS and JavaScript are inline, nothing is loaded
//! from the network (a Content-Security-Policy with `default-src 'none'` says so to the browser,
//! and only the page's own script, by hash, may run). Every value from Dynatrace or the spec is
//! HTML-escaped (token names are chosen by whoever created the token); data reaches the script
//! only through escaped `data-` attributes, never inside the script. The values hold no secret.
//!
//! The script applies a filter from the URL fragment on load (`#q=text&do=delete&class=expired`)
//! and writes the fragment back as the filter changes, so a filtered view can be shared.

use std::fmt::Write as _;
use std::io;

use base64::Engine as _;
use sha2::Digest as _;
use time::{Duration, OffsetDateTime};

use super::human::plan_human;
use super::inventory::{classes, compact_scopes, counts_line, last_used};
use crate::plan::inventory::day;
use crate::plan::{home_label, Advice, Inventory, InventoryEntry, LifeEventKind, Plan, TokenClass};

/// How far back the timeline starts, and how far ahead it reaches.
const TIMELINE_PAST: Duration = Duration::days(60);
const TIMELINE_AHEAD: Duration = Duration::days(183);

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// The page for an inventory, with the plan's steps when `plan` is given.
pub fn report_html(
    inv: &Inventory,
    plan: Option<&Plan>,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let script = SCRIPT;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    let title = if plan.is_some() {
        "tokensmith plan: Dynatrace access tokens"
    } else {
        "tokensmith inventory: Dynatrace access tokens"
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta name=\"referrer\" content=\"no-referrer\">\n\
<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    header(&mut h, inv, plan);
    if let Some(plan) = plan {
        plan_section(&mut h, plan)?;
    }
    timeline(&mut h, inv);
    table(&mut h, inv);
    guide(&mut h, inv);
    let _ = write!(h, "<script>{script}</script>\n</body>\n</html>\n");
    out.write_all(h.as_bytes())
}

fn header(h: &mut String, inv: &Inventory, plan: Option<&Plan>) {
    let _ = write!(
        h,
        "<header>\n<h1>Dynatrace access tokens</h1>\n<p class=\"lede\">Every token tokensmith found in the environments and accounts of the spec, what is wrong with it and what to do about it. \
Generated on {} (UTC) by <code>tokensmith {}</code>. The page holds no token value.</p>\n\
<p class=\"counts\">{}</p>\n<div class=\"cards\">\n",
        escape(&inv.generated_at.date().to_string()),
        if plan.is_some() { "plan" } else { "inventory" },
        escape(&counts_line(inv))
    );
    for advice in Advice::ALL {
        let n = inv.counts.action(advice);
        let _ = writeln!(
            h,
            "<button type=\"button\" class=\"card do-{a}\" data-do=\"{a}\"><span class=\"n\">{n}</span><span class=\"what\">to {a}</span><span class=\"hint\">{}</span></button>",
            escape(advice_hint(advice)),
            a = advice.as_str(),
        );
    }
    h.push_str("</div>\n</header>\n");
}

fn advice_hint(advice: Advice) -> &'static str {
    match advice {
        Advice::Delete => "expired, disabled, unused or duplicate",
        Advice::Rotate => "expired or expiring while in use",
        Advice::Narrow => "holds more scopes than it needs",
        Advice::Keep => "fine as it is",
    }
}

fn plan_section(h: &mut String, plan: &Plan) -> io::Result<()> {
    let mut text = Vec::new();
    plan_human(plan, false, &mut text)?;
    let s = &plan.summary;
    let _ = write!(
        h,
        "<section id=\"plan\">\n<h2>What the next apply does</h2>\n<p>{} to create, {} to update, {} to rotate, {} to revoke, {} deliveries. \
Nothing happens until someone runs <code>tokensmith apply</code>.</p>\n<details{}><summary>The plan as tokensmith prints it</summary>\n<pre>{}</pre>\n</details>\n</section>\n",
        s.create,
        s.update,
        s.rotate,
        s.revoke,
        s.deliver,
        if plan.steps.len() <= 20 { " open" } else { "" },
        escape(&String::from_utf8_lossy(&text))
    );
    Ok(())
}

/// Where `t` falls on the timeline, in percent of its width (clamped), and whether it was clamped.
fn position(t: OffsetDateTime, start: OffsetDateTime, end: OffsetDateTime) -> (f64, bool) {
    let span = (end - start).as_seconds_f64();
    let p = (t - start).as_seconds_f64() / span * 100.0;
    (p.clamp(0.0, 100.0), !(0.0..=100.0).contains(&p))
}

struct Mark {
    at: OffsetDateTime,
    kind: &'static str,
    label: String,
}

fn marks(e: &InventoryEntry) -> Vec<Mark> {
    let mut m = Vec::new();
    if let Some(t) = e.created {
        m.push(Mark {
            at: t,
            kind: "created",
            label: "created".into(),
        });
    }
    if let Some(t) = e.last_used {
        m.push(Mark {
            at: t,
            kind: "used",
            label: format!("last used{}", last_used_from(e)),
        });
    }
    if let Some(t) = e.expires {
        m.push(Mark {
            at: t,
            kind: "expires",
            label: if e.has(TokenClass::Expired) {
                "expired".into()
            } else {
                "expires".into()
            },
        });
    }
    if let Some(t) = e.purge_at {
        m.push(Mark {
            at: t,
            kind: "purge",
            label: "Dynatrace deletes it (7 days after expiry)".into(),
        });
    }
    for ev in &e.schedule {
        let kind = match ev.kind {
            LifeEventKind::Rotation => "rotation",
            LifeEventKind::GraceEnds => "grace",
            LifeEventKind::Revocation => "revocation",
        };
        m.push(Mark {
            at: ev.at,
            kind,
            label: ev.note.clone(),
        });
    }
    m.sort_by_key(|x| x.at);
    m
}

fn last_used_from(e: &InventoryEntry) -> String {
    e.last_used_from
        .as_deref()
        .map(|ip| format!(" from {ip}"))
        .unwrap_or_default()
}

fn timeline(h: &mut String, inv: &Inventory) {
    let now = inv.generated_at;
    let (start, end) = (now - TIMELINE_PAST, now + TIMELINE_AHEAD);
    h.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n<p class=\"note\">One line per token, from two months ago to six months ahead. The bar is the token's life (from creation to expiry; it runs off the right edge when the token never expires). \
Marks at the edges stand for dates further away (hover for the date).</p>\n<ul class=\"legend\">\n");
    for (kind, what) in [
        ("created", "created"),
        ("used", "last used"),
        ("expires", "expires / expired"),
        ("purge", "Dynatrace deletes the expired token"),
        (
            "rotation",
            "next rotation (a new token is created and delivered)",
        ),
        ("grace", "grace ends: the old token is disabled"),
        ("revocation", "the old token is deleted"),
    ] {
        let _ = writeln!(
            h,
            "<li><span class=\"mark m-{kind} inline\"></span>{}</li>",
            escape(what)
        );
    }
    h.push_str("</ul>\n<div class=\"tl\">\n<div class=\"tl-row tl-axis\"><div class=\"tl-label\"></div><div class=\"tl-track\">");
    // Month boundaries.
    let mut month =
        time::Date::from_calendar_date(start.year(), start.month(), 1).unwrap_or(start.date());
    loop {
        month = next_month(month);
        let at = month.midnight().assume_utc();
        if at > end {
            break;
        }
        let (p, _) = position(at, start, end);
        let _ = write!(
            h,
            "<span class=\"tick\" style=\"left:{p:.2}%\">{} {}</span>",
            &month.month().to_string()[..3],
            month.year()
        );
    }
    let (today, _) = position(now, start, end);
    let _ = writeln!(
        h,
        "<span class=\"today\" style=\"left:{today:.2}%\">today</span></div></div>"
    );
    for e in &inv.entries {
        let _ = write!(
            h,
            "<div class=\"tl-row\" {}><div class=\"tl-label\" title=\"{}\"><span class=\"do do-{}\">{}</span> {}</div><div class=\"tl-track\">",
            row_data(e),
            escape(&format!("{} ({})", e.name, e.id)),
            e.recommendation.action.as_str(),
            e.recommendation.action.as_str(),
            escape(&e.name)
        );
        let (today, _) = position(now, start, end);
        let _ = write!(h, "<span class=\"now\" style=\"left:{today:.2}%\"></span>");
        let from = e.created.unwrap_or(start);
        let to = e.expires.unwrap_or(end + Duration::days(1));
        let (a, _) = position(from, start, end);
        let (b, _) = position(to, start, end);
        let life_class = if e.has(TokenClass::Expired) || !e.enabled {
            "life dead"
        } else {
            "life"
        };
        let _ = write!(
            h,
            "<span class=\"{life_class}\" style=\"left:{a:.2}%;width:{:.2}%\"></span>",
            (b - a).max(0.3)
        );
        for m in marks(e) {
            let (p, clamped) = position(m.at, start, end);
            let label = format!("{} {}", day(m.at), m.label);
            let _ = write!(
                h,
                "<span class=\"mark m-{}{}\" style=\"left:{p:.2}%\" data-date=\"{}\" title=\"{}\"></span>",
                m.kind,
                if clamped { " clamped" } else { "" },
                day(m.at),
                escape(&label)
            );
        }
        h.push_str("</div></div>\n");
    }
    h.push_str("</div>\n</section>\n");
}

fn next_month(d: time::Date) -> time::Date {
    let (y, m) = match d.month() {
        time::Month::December => (d.year() + 1, time::Month::January),
        m => (d.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1).unwrap_or(d)
}

/// The `data-` attributes the script filters on, shared by a table row and its timeline line.
fn row_data(e: &InventoryEntry) -> String {
    let mut classes: Vec<&str> = e.classes.iter().map(|c| c.as_str()).collect();
    classes.push(match e.status {
        crate::plan::TokenStatus::ManagedCurrent => "managed",
        crate::plan::TokenStatus::ManagedSuperseded => "superseded",
        crate::plan::TokenStatus::Unmanaged => "unmanaged",
    });
    let search = format!(
        "{} {} {} {} {} {}",
        home_label(&e.home),
        e.id,
        e.name,
        e.owner.as_deref().unwrap_or(""),
        e.scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        e.recommendation.why
    )
    .to_lowercase();
    format!(
        "data-id=\"{}\" data-do=\"{}\" data-classes=\"{}\" data-search=\"{}\"",
        escape(e.id.as_str()),
        e.recommendation.action.as_str(),
        escape(&classes.join(" ")),
        escape(&search)
    )
}

fn table(h: &mut String, inv: &Inventory) {
    h.push_str(
        "<section id=\"tokens\">\n<h2>Tokens</h2>\n<form class=\"filters\" autocomplete=\"off\">\n\
<label>Search <input type=\"search\" id=\"q\" placeholder=\"name, id, owner, scope…\"></label>\n\
<label>Recommendation <select id=\"do\"><option value=\"\">any</option>",
    );
    for a in Advice::ALL {
        let _ = write!(h, "<option value=\"{0}\">{0}</option>", a.as_str());
    }
    h.push_str(
        "</select></label>\n<label>Class <select id=\"class\"><option value=\"\">any</option>",
    );
    for c in
        TokenClass::ALL
            .iter()
            .map(|c| c.as_str())
            .chain(["managed", "superseded", "unmanaged"])
    {
        let _ = write!(h, "<option value=\"{c}\">{c}</option>");
    }
    let _ = write!(
        h,
        "</select></label>\n<button type=\"button\" id=\"clear\">Show all</button>\n<output id=\"shown\">{n} of {n} tokens</output>\n</form>\n\
<p class=\"note\">Click a column heading to sort.</p>\n<div class=\"scroll\"><table id=\"inventory\">\n<thead><tr>",
        n = inv.entries.len()
    );
    for (i, col) in [
        "Do",
        "Token",
        "Why",
        "Owner",
        "Scopes",
        "Created",
        "Last used",
        "Expires",
        "Status and classes",
    ]
    .iter()
    .enumerate()
    {
        let _ = write!(
            h,
            "<th data-col=\"{i}\" aria-sort=\"none\" tabindex=\"0\">{col}</th>"
        );
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for e in &inv.entries {
        let order = Advice::ALL
            .iter()
            .position(|a| *a == e.recommendation.action)
            .unwrap_or(0);
        let date = |t: Option<OffsetDateTime>, none: &str| t.map_or_else(|| none.to_owned(), day);
        let findings: String = e
            .findings
            .iter()
            .map(|f| {
                format!(
                    "<li><b>{}</b>: {}</li>",
                    escape(f.class.as_str()),
                    escape(&f.reason)
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr {}>\
<td data-sort=\"{order}\"><span class=\"do do-{a}\">{a}</span></td>\
<td class=\"name\" data-sort=\"{}\"><b>{}</b><br><code>{}</code><br><small>{} · {}</small></td>\
<td class=\"why\">{}</td>\
<td>{}</td>\
<td class=\"scopes\" title=\"{}\">{}</td>\
<td data-sort=\"{}\">{}</td>\
<td data-sort=\"{}\">{}</td>\
<td data-sort=\"{}\">{}{}</td>\
<td class=\"cls\">{}<ul>{findings}</ul></td></tr>",
            row_data(e),
            escape(&e.name.to_lowercase()),
            escape(&e.name),
            escape(e.id.as_str()),
            escape(&home_label(&e.home)),
            escape(&e.kind.to_string()),
            escape(&e.recommendation.why),
            escape(e.owner.as_deref().unwrap_or("unknown")),
            escape(
                &e.scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            escape(&compact_scopes(&e.scopes)),
            date(e.created, ""),
            date(e.created, "unknown"),
            date(e.last_used, ""),
            escape(&last_used(e)),
            date(e.expires, "9999"),
            date(e.expires, "never"),
            e.purge_at
                .map(|p| format!("<br><small>Dynatrace deletes it on {}</small>", day(p)))
                .unwrap_or_default(),
            escape(&classes(e)),
            a = e.recommendation.action.as_str(),
        );
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

fn guide(h: &mut String, inv: &Inventory) {
    let _ = write!(
        h,
        "<section id=\"guide\">\n<h2>How to read this page</h2>\n<dl>\n\
<dt>delete</dt><dd>Nothing can use the token (expired or disabled), nothing has used it for longer than {unused}, or it duplicates another token with the same owner and scopes. Deleting it in Dynatrace (Access tokens) removes a secret that could leak.</dd>\n\
<dt>rotate</dt><dd>The token expires soon or has expired while something needs it: create a successor, move its consumers, then delete the old one. Tokens tokensmith manages are rotated by <code>tokensmith apply</code> without downtime.</dd>\n\
<dt>narrow</dt><dd>The token holds scopes its consumer does not need, such as the scopes that create tokens or change configuration. Replace it with a token that has only the scopes needed.</dd>\n\
<dt>keep</dt><dd>Nothing to do.</dd>\n\
<dt>managed, superseded, unmanaged</dt><dd>Managed tokens are declared in the tokensmith spec (their names end in a marker such as <code>[ts:ci#3]</code>); superseded ones are older generations that tokensmith retires after their grace period; unmanaged tokens were created by hand or by other tools.</dd>\n\
<dt>expired tokens</dt><dd>Dynatrace deletes an expired classic API token on its own 7 days after it expired.</dd>\n\
</dl>\n</section>\n",
        unused = escape(&inv.unused_after.to_string())
    );
}

const STYLE: &str = r##"
:root{--bg:#fff;--fg:#1d2330;--muted:#5b6475;--line:#e3e6ec;--delete:#c62828;--rotate:#b26a00;--narrow:#6a3fb5;--keep:#2e7d32}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:24px 32px}
h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 8px}
.lede{max-width:900px;margin:0 0 6px}.counts,.note{color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.cards{display:flex;gap:12px;margin:14px 0;flex-wrap:wrap}
.card{border:1px solid var(--line);border-left:6px solid;border-radius:8px;background:#fafbfc;padding:10px 14px;min-width:170px;text-align:left;cursor:pointer;font:inherit;color:inherit}
.card .n{font-size:26px;font-weight:700;display:block}.card .what{font-weight:600}.card .hint{display:block;color:var(--muted);font-size:12px}
.card.do-delete{border-left-color:var(--delete)}.card.do-rotate{border-left-color:var(--rotate)}.card.do-narrow{border-left-color:var(--narrow)}.card.do-keep{border-left-color:var(--keep)}
.card.active{outline:2px solid var(--fg)}
.do{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;font-weight:600}
.do-delete{background:var(--delete)}.do-rotate{background:var(--rotate)}.do-narrow{background:var(--narrow)}.do-keep{background:var(--keep)}
.card.do-delete,.card.do-rotate,.card.do-narrow,.card.do-keep{background:#fafbfc;color:var(--fg)}
.filters{display:flex;gap:14px;align-items:center;flex-wrap:wrap;margin:6px 0}
.filters input,.filters select,.filters button{font:inherit;padding:4px 6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8;cursor:pointer;white-space:nowrap;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \25B2"}th[aria-sort=descending]::after{content:" \25BC"}
td ul{margin:4px 0 0;padding-left:16px;color:var(--muted)}
td.name{min-width:200px;max-width:300px;overflow-wrap:anywhere}td.name small{color:var(--muted)}td.scopes{min-width:170px;max-width:240px;font:12px ui-monospace,monospace;overflow-wrap:anywhere}
td.why{min-width:240px;max-width:360px}td.cls{min-width:220px}td code{font-size:11px;color:var(--muted)}td:nth-child(6){white-space:nowrap}
tr[hidden],.tl-row[hidden]{display:none}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px 18px;color:var(--muted)}
.tl{border:1px solid var(--line);border-radius:8px;padding:8px 0;overflow:hidden}
.tl-row{display:flex;align-items:center;height:26px}
.tl-label{width:280px;flex:none;padding:0 10px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tl-track{position:relative;flex:1;height:100%;border-left:1px solid var(--line);margin-right:14px}
.tl-axis{height:34px;color:var(--muted);font-size:12px}
.tick{position:absolute;top:2px;border-left:1px solid var(--line);padding-left:3px;height:2000px}
.today{position:absolute;top:17px;transform:translateX(-50%);font-weight:700;color:var(--fg);background:var(--bg);padding:0 4px;z-index:1}
.now{position:absolute;top:0;bottom:0;border-left:2px dashed #90a4ae}
.life{position:absolute;top:10px;height:6px;border-radius:3px;background:#90caf9}.life.dead{background:#cfd8dc}
.mark{position:absolute;top:6px;width:14px;height:14px;margin-left:-7px;border-radius:50%;border:2px solid #fff;box-shadow:0 0 0 1px #0003}
.mark.inline{position:static;display:inline-block;vertical-align:-2px;margin:0 6px 0 0}
.mark.clamped{opacity:.45}
.m-created{background:#78909c}.m-used{background:#1e88e5;width:10px;height:10px;top:8px;margin-left:-5px}
.m-expires{background:var(--delete);border-radius:2px;transform:rotate(45deg)}
.m-purge{background:#000;border-radius:2px}
.m-rotation{background:var(--keep)}.m-grace{background:var(--rotate)}.m-revocation{background:#6d1b1b;border-radius:2px}
dl{max-width:900px}dt{font-weight:700;margin-top:8px}dd{margin:2px 0 0 0;color:var(--muted)}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;font-size:12px}
"##;

const SCRIPT: &str = r##"
(function(){
"use strict";
var rows=[].slice.call(document.querySelectorAll("#inventory tbody tr"));
var lines=[].slice.call(document.querySelectorAll("#timeline .tl-row[data-id]"));
var q=document.getElementById("q"),act=document.getElementById("do"),cls=document.getElementById("class");
var shown=document.getElementById("shown");
function keep(el){
  var text=q.value.trim().toLowerCase();
  if(text&&el.getAttribute("data-search").indexOf(text)<0)return false;
  if(act.value&&el.getAttribute("data-do")!==act.value)return false;
  if(cls.value&&(" "+el.getAttribute("data-classes")+" ").indexOf(" "+cls.value+" ")<0)return false;
  return true;
}
function apply(write){
  var n=0;
  rows.forEach(function(r){var k=keep(r);r.hidden=!k;if(k)n++;});
  lines.forEach(function(l){l.hidden=!keep(l);});
  shown.textContent=n+" of "+rows.length+" tokens";
  [].forEach.call(document.querySelectorAll(".card"),function(c){
    c.classList.toggle("active",act.value!==""&&c.getAttribute("data-do")===act.value);});
  if(write){
    var p=new URLSearchParams();
    if(q.value)p.set("q",q.value);if(act.value)p.set("do",act.value);if(cls.value)p.set("class",cls.value);
    var s=p.toString();history.replaceState(null,"",s?"#"+s:location.pathname+location.search);
  }
}
function read(){
  var p=new URLSearchParams(location.hash.replace(/^#/,""));
  q.value=p.get("q")||"";
  function pick(sel,v){v=v||"";sel.value=[].some.call(sel.options,function(o){return o.value===v;})?v:"";}
  pick(act,p.get("do"));pick(cls,p.get("class"));
  apply(false);
}
[q,act,cls].forEach(function(el){el.addEventListener("input",function(){apply(true);});el.addEventListener("change",function(){apply(true);});});
document.getElementById("clear").addEventListener("click",function(){q.value="";act.value="";cls.value="";apply(true);});
[].forEach.call(document.querySelectorAll(".card"),function(c){c.addEventListener("click",function(){
  var v=c.getAttribute("data-do");act.value=act.value===v?"":v;apply(true);
  document.getElementById("tokens").scrollIntoView();});});
window.addEventListener("hashchange",read);
var heads=[].slice.call(document.querySelectorAll("#inventory th"));
function sortBy(th){
  var col=+th.getAttribute("data-col"),asc=th.getAttribute("aria-sort")!=="ascending";
  heads.forEach(function(h){h.setAttribute("aria-sort","none");});
  th.setAttribute("aria-sort",asc?"ascending":"descending");
  function key(r){var c=r.cells[col];var v=c.getAttribute("data-sort");return v===null?c.textContent.trim().toLowerCase():v;}
  var body=rows[0]&&rows[0].parentNode;if(!body)return;
  rows.sort(function(a,b){var x=key(a),y=key(b);var d=x<y?-1:x>y?1:0;return asc?d:-d;});
  rows.forEach(function(r){body.appendChild(r);});
}
heads.forEach(function(th){th.addEventListener("click",function(){sortBy(th);});
  th.addEventListener("keydown",function(e){if(e.key==="Enter")sortBy(th);});});
read();
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert('x')</script>"&"#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
        );
    }

    #[test]
    fn timeline_positions_clamp() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let end = start + Duration::days(100);
        assert_eq!(
            position(start + Duration::days(50), start, end),
            (50.0, false)
        );
        assert_eq!(position(start - Duration::days(5), start, end), (0.0, true));
        assert_eq!(position(end + Duration::days(5), start, end), (100.0, true));
    }
}
