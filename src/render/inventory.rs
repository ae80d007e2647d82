//! The inventory for a terminal (grouped by recommendation, each token with its owner, scopes,
//! use, expiry and reasons), as markdown with counts first, and as CSV for spreadsheets.

use crate::model::printable::printable;
use std::collections::BTreeMap;
use std::io;

use super::limit::{code, text, Limited, MARKDOWN_LIMIT};
use super::markdown::truncation_note;
use super::style::Style;
use crate::model::Scope;
use crate::plan::inventory::day;
use crate::plan::{home_label, Advice, Inventory, InventoryEntry, TokenClass};

fn date(t: Option<time::OffsetDateTime>, none: &str) -> String {
    t.map_or(none.to_owned(), day)
}

/// Scopes in a short form: scopes sharing a prefix are folded (`apiTokens.{read,write}`),
/// others listed as they are, comma-separated.
pub(crate) fn compact_scopes<'a>(scopes: impl IntoIterator<Item = &'a Scope>) -> String {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for s in scopes {
        match s.as_str().rsplit_once('.') {
            Some((prefix, leaf)) => groups.entry(prefix).or_default().push(leaf),
            None => plain.push(s.as_str()),
        }
    }
    let mut parts: Vec<String> = plain.into_iter().map(str::to_owned).collect();
    for (prefix, leaves) in groups {
        parts.push(match leaves.as_slice() {
            [one] => format!("{prefix}.{one}"),
            many => format!("{prefix}.{{{}}}", many.join(",")),
        });
    }
    if parts.is_empty() {
        "(none)".to_owned()
    } else {
        // A scope the catalogue does not know is the server's text.
        printable(&parts.join(", "))
    }
}

/// `2026-11-30 from 10.0.0.7`, or `never`.
pub(crate) fn last_used(e: &InventoryEntry) -> String {
    match (e.last_used, &e.last_used_from) {
        (Some(t), Some(ip)) => format!("{} from {}", day(t), printable(ip)),
        (Some(t), None) => day(t),
        (None, _) => "never".to_owned(),
    }
}

pub(crate) fn classes(e: &InventoryEntry) -> String {
    let mut names: Vec<&str> = vec![e.status.as_str()];
    names.extend(e.classes.iter().map(|c| c.as_str()));
    names.join(", ")
}

/// The one-line summary: totals, actions and the classes that occur.
pub(crate) fn counts_line(inv: &Inventory) -> String {
    let c = &inv.counts;
    let actions: Vec<String> = Advice::ALL
        .iter()
        .map(|a| format!("{} to {}", c.action(*a), a.as_str()))
        .collect();
    let classes: Vec<String> = TokenClass::ALL
        .iter()
        .filter(|k| c.class(**k) > 0)
        .map(|k| format!("{} {}", c.class(*k), k.as_str()))
        .collect();
    let mut line = format!(
        "{} tokens ({} managed, {} superseded, {} unmanaged): {}.",
        c.total,
        c.managed,
        c.superseded,
        c.unmanaged,
        actions.join(", ")
    );
    if !classes.is_empty() {
        line.push_str(&format!(
            " {} (unused = not used for {}).",
            classes.join(", "),
            inv.unused_after
        ));
    }
    if c.system > 0 {
        line.push_str(&format!(
            " {} tokensmith system token(s) (apply leases, tenant rotations) not counted.",
            c.system
        ));
    }
    if let Some(f) = &inv.filter {
        line.push_str(&format!(" Filter: {f}."));
    }
    line
}

pub fn inventory_human(inv: &Inventory, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let st = Style { color };
    if inv.entries.is_empty() {
        match &inv.filter {
            Some(f) => writeln!(out, "No live token matches the filter ({f}).")?,
            None => writeln!(out, "No live tokens.")?,
        }
    }
    for action in Advice::ALL {
        let group: Vec<&InventoryEntry> = inv
            .entries
            .iter()
            .filter(|e| e.recommendation.action == action)
            .collect();
        if group.is_empty() {
            continue;
        }
        let title = format!("{} ({})", capitalized(action.as_str()), group.len());
        let title = match action {
            Advice::Delete => st.red(&title),
            Advice::Rotate | Advice::Narrow => st.yellow(&title),
            Advice::Keep => st.green(&title),
        };
        writeln!(out, "{}", st.bold(&title))?;
        for e in group {
            writeln!(
                out,
                "  {} {} {} {:?}  owner {}",
                home_label(&e.home),
                e.kind,
                st.bold(&printable(e.id.as_str())),
                e.name,
                printable(e.owner.as_deref().unwrap_or("unknown"))
            )?;
            if !e.scopes.is_empty() {
                writeln!(out, "      scopes   {}", compact_scopes(&e.scopes))?;
            }
            writeln!(
                out,
                "      used     {} · created {} · expires {}",
                last_used(e),
                date(e.created, "unknown"),
                date(e.expires, "never")
            )?;
            writeln!(out, "      status   {}", classes(e))?;
            for f in &e.findings {
                writeln!(out, "      {:<8} {}", short(f.class), printable(&f.reason))?;
            }
            writeln!(
                out,
                "      {} {}",
                st.bold(&format!("{:<8}", action.as_str())),
                printable(&e.recommendation.why)
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", st.bold(&counts_line(inv)))
}

/// A class label that fits the human layout's first column.
fn short(class: TokenClass) -> &'static str {
    match class {
        TokenClass::ExpiringSoon => "expiring",
        TokenClass::NeverUsed => "never",
        TokenClass::OverPrivileged => "too wide",
        TokenClass::ManagementToken => "mgmt",
        TokenClass::ForeignMarker => "marker",
        TokenClass::Duplicate => "dup",
        other => other.as_str(),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub fn inventory_markdown(inv: &Inventory, out: &mut dyn io::Write) -> io::Result<()> {
    let mut md = Limited::new(MARKDOWN_LIMIT);
    md.always("### tokensmith inventory");
    md.always("");
    md.always(&format!("**{}**", text(&counts_line(inv))));
    md.always("");
    if !inv.entries.is_empty() {
        md.always("<details><summary>Tokens</summary>");
        md.always("");
        md.line("| do | home | id | name | owner | scopes | last used | expires | why |");
        md.line("|---|---|---|---|---|---|---|---|---|");
        let mut sorted: Vec<&InventoryEntry> = inv.entries.iter().collect();
        sorted.sort_by_key(|e| e.recommendation.action);
        for e in sorted {
            let mut why: Vec<String> = e
                .findings
                .iter()
                .map(|f| format!("{}: {}", f.class.as_str(), f.reason))
                .collect();
            why.push(e.recommendation.why.clone());
            md.line(&format!(
                "| **{}** | {} | {} | {} | {} | {} | {} | {} | {} |",
                e.recommendation.action.as_str(),
                code(&home_label(&e.home)),
                code(e.id.as_str()),
                code(&e.name),
                code(e.owner.as_deref().unwrap_or("unknown")),
                code(&compact_scopes(&e.scopes)),
                text(&last_used(e)),
                date(e.expires, "never"),
                text(&why.join("; "))
            ));
        }
        truncation_note(&mut md, "tokens");
        md.always("");
        md.always("</details>");
    }
    out.write_all(md.finish().as_bytes())
}

/// One row per token (RFC 4180 quoting). Control characters are escaped (a leading tab or
/// carriage return then cannot start a formula), and cells that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-` or `@`) get a leading `'`: token
/// names are chosen by whoever created the token.
pub fn inventory_csv(inv: &Inventory, out: &mut dyn io::Write) -> io::Result<()> {
    let header = [
        "home",
        "kind",
        "id",
        "name",
        "owner",
        "status",
        "classes",
        "recommendation",
        "why",
        "scopes",
        "created",
        "last_used",
        "last_used_from",
        "expires",
        "purged_by_dynatrace_on",
        "reasons",
    ];
    writeln!(out, "{}", header.join(","))?;
    for e in &inv.entries {
        let classes: Vec<&str> = e.classes.iter().map(|c| c.as_str()).collect();
        let scopes: Vec<&str> = e.scopes.iter().map(|s| s.as_str()).collect();
        let reasons: Vec<String> = e
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.class.as_str(), f.reason))
            .collect();
        let row = [
            home_label(&e.home),
            e.kind.to_string(),
            e.id.to_string(),
            e.name.clone(),
            e.owner.clone().unwrap_or_default(),
            e.status.as_str().to_owned(),
            classes.join(" "),
            e.recommendation.action.as_str().to_owned(),
            e.recommendation.why.clone(),
            scopes.join(" "),
            date(e.created, ""),
            date(e.last_used, ""),
            e.last_used_from.clone().unwrap_or_default(),
            date(e.expires, ""),
            date(e.purge_at, ""),
            reasons.join("; "),
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

fn csv_cell(cell: &str) -> String {
    // Control characters escaped first (the file may well be printed to a CI log), so no
    // tab, carriage return or line break is left to defuse or quote.
    let cell = printable(cell);
    let cell = if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell
    };
    if cell.contains([',', '"']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_fold_by_prefix() {
        let scopes: Vec<Scope> = [
            "apiTokens.read",
            "apiTokens.write",
            "WriteConfig",
            "metrics.ingest",
        ]
        .into_iter()
        .map(Scope::new)
        .collect();
        assert_eq!(
            compact_scopes(&scopes),
            "WriteConfig, apiTokens.{read,write}, metrics.ingest"
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("\u{1b}]0;x\u{7}"), "\\u{1b}]0;x\\u{7}");
    }
}
