//! A [`DesiredDiff`] for people: terminal text and a markdown section for the pull-request
//! comment. Both list tokens first (what reviewers care about), then tenant tokens,
//! environments, accounts and the unmanaged-token policy. The markdown stays below
//! [`DESIRED_DIFF_BUDGET`] bytes so that it fits next to the live plan in one comment.

use std::io;

use crate::git::desired_diff::{ChangeKind, DesiredDiff, EntryDiff, FieldChange};
use crate::model::{ScopeSet, TargetAddress};

/// The most bytes the markdown section takes; entries beyond it are counted, not shown.
pub const DESIRED_DIFF_BUDGET: usize = 20_000;

/// One entry, already flattened: headline and detail lines.
struct Entry {
    symbol: char,
    what: String,
    details: Vec<String>,
}

fn entries(diff: &DesiredDiff) -> Vec<Entry> {
    let mut out = Vec::new();
    for t in &diff.tokens {
        let mut details = Vec::new();
        if let Some(line) = scopes_line(&t.scopes_added, &t.scopes_removed) {
            details.push(line);
        }
        details.extend(target_lines(&t.targets_added, &t.targets_removed));
        details.extend(t.fields.iter().map(FieldChange::to_string));
        out.push(Entry {
            symbol: t.change.symbol(),
            what: format!("{} {}", t.kind, t.label()),
            details,
        });
    }
    for t in &diff.tenant_tokens {
        let mut details = target_lines(&t.targets_added, &t.targets_removed);
        details.extend(t.fields.iter().map(FieldChange::to_string));
        out.push(Entry {
            symbol: t.change.symbol(),
            what: format!("tenant_token {}", t.environment),
            details,
        });
    }
    let named = |what: &str, e: &EntryDiff| Entry {
        symbol: e.change.symbol(),
        what: format!("{what} {}", e.name),
        details: e.fields.iter().map(FieldChange::to_string).collect(),
    };
    out.extend(diff.environments.iter().map(|e| named("environment", e)));
    out.extend(diff.accounts.iter().map(|e| named("account", e)));
    if !diff.unmanaged.is_empty() {
        out.push(Entry {
            symbol: ChangeKind::Changed.symbol(),
            what: "unmanaged token policy".to_owned(),
            details: diff.unmanaged.iter().map(FieldChange::to_string).collect(),
        });
    }
    out
}

fn scopes_line(added: &ScopeSet, removed: &ScopeSet) -> Option<String> {
    let items: Vec<String> = added
        .iter()
        .map(|s| format!("+{s}"))
        .chain(removed.iter().map(|s| format!("-{s}")))
        .collect();
    (!items.is_empty()).then(|| format!("scopes: {}", items.join(", ")))
}

fn target_lines(added: &[TargetAddress], removed: &[TargetAddress]) -> Vec<String> {
    added
        .iter()
        .map(|a| format!("target: +{a}"))
        .chain(removed.iter().map(|a| format!("target: -{a}")))
        .collect()
}

fn summary(diff: &DesiredDiff) -> String {
    let (added, changed, removed) = diff.token_counts();
    let mut s = format!("Desired tokens: {added} added, {changed} changed, {removed} removed.");
    let others = diff.tenant_tokens.len()
        + diff.environments.len()
        + diff.accounts.len()
        + usize::from(!diff.unmanaged.is_empty());
    if others > 0 {
        s.push_str(&format!(
            " {others} other {} changed.",
            if others == 1 { "entry" } else { "entries" }
        ));
    }
    s
}

/// Terminal text: `+`/`~`/`-` per entry, details indented below.
pub fn desired_diff_human(
    diff: &DesiredDiff,
    base: &str,
    head: &str,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    writeln!(out, "Desired state changes ({base} → {head}):")?;
    if diff.is_empty() {
        writeln!(out, "  No changes to the desired state.")?;
        return Ok(());
    }
    for e in entries(diff) {
        writeln!(out, "  {} {}", e.symbol, e.what)?;
        for d in &e.details {
            writeln!(out, "      {d}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary(diff))
}

/// A markdown section for the pull-request comment.
pub fn desired_diff_markdown(
    diff: &DesiredDiff,
    base: &str,
    head: &str,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    out.write_all(markdown_string(diff, base, head, DESIRED_DIFF_BUDGET).as_bytes())
}

pub(crate) fn markdown_string(diff: &DesiredDiff, base: &str, head: &str, budget: usize) -> String {
    let mut md = format!(
        "#### Desired state changes ({} → {})\n\n",
        code(base),
        code(head)
    );
    if diff.is_empty() {
        md.push_str("No changes to the desired state.\n");
        return md;
    }
    md.push_str(&format!("**{}**\n\n", summary(diff)));
    let entries = entries(diff);
    let total = entries.len();
    for (shown, e) in entries.into_iter().enumerate() {
        let mut item = format!("- `{}` {}\n", e.symbol, code(&e.what));
        for d in &e.details {
            item.push_str(&format!("  - {}\n", code(d)));
        }
        if md.len() + item.len() > budget.saturating_sub(200) {
            md.push_str(&format!(
                "\n_… {} more entries not shown; run `tokensmith plan --base` locally for all of them._\n",
                total - shown
            ));
            break;
        }
        md.push_str(&item);
    }
    md
}

/// A markdown code span that survives backticks and pipes in the text.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}
