//! The inventory as a table for a terminal and as markdown with counts first.

use std::io;

use super::human::write_table;
use super::limit::{code, Limited, MARKDOWN_LIMIT};
use super::markdown::truncation_note;
use super::style::Style;
use crate::plan::{home_label, Inventory, InventoryEntry};

fn date(t: Option<time::OffsetDateTime>, none: &str) -> String {
    t.map_or(none.to_owned(), |t| t.date().to_string())
}

fn flags(e: &InventoryEntry) -> String {
    let mut f: Vec<String> = e.flags.iter().map(|f| f.as_str().to_owned()).collect();
    if !e.extra_scopes.is_empty() {
        let extra: Vec<&str> = e.extra_scopes.iter().map(|s| s.as_str()).collect();
        f.push(format!("beyond preset: {}", extra.join(" ")));
    }
    f.join(", ")
}

fn counts_line(inv: &Inventory) -> String {
    let c = &inv.counts;
    let system = if c.system > 0 {
        format!(
            " {} tokensmith system token(s) (apply leases, tenant rotations) not counted.",
            c.system
        )
    } else {
        String::new()
    };
    format!(
        "{} tokens: {} managed current, {} managed superseded, {} unmanaged in use, {} deletion candidates (unused > {}); {} expired, {} expiring within 14d, {} personal, {} over-privileged.{}",
        c.total,
        c.managed_current,
        c.managed_superseded,
        c.unmanaged_in_use,
        c.deletion_candidates,
        inv.unused_after,
        c.expired,
        c.expiring_soon,
        c.personal,
        c.over_privileged,
        system
    )
}

pub fn inventory_human(inv: &Inventory, color: bool, out: &mut dyn io::Write) -> io::Result<()> {
    let st = Style { color };
    if inv.entries.is_empty() {
        writeln!(out, "No live tokens.")?;
    } else {
        let header = [
            "home",
            "kind",
            "id",
            "name",
            "class",
            "expires",
            "last used",
            "flags",
        ]
        .map(String::from);
        let rows: Vec<[String; 8]> = inv
            .entries
            .iter()
            .map(|e| {
                [
                    home_label(&e.home),
                    e.kind.to_string(),
                    e.id.to_string(),
                    e.name.clone(),
                    e.class.as_str().to_owned(),
                    date(e.expires, "never"),
                    date(e.last_used, "never"),
                    flags(e),
                ]
            })
            .collect();
        write_table(out, &header, &rows)?;
    }
    writeln!(out)?;
    writeln!(out, "{}", st.bold(&counts_line(inv)))
}

pub fn inventory_markdown(inv: &Inventory, out: &mut dyn io::Write) -> io::Result<()> {
    let mut md = Limited::new(MARKDOWN_LIMIT);
    md.always("### tokensmith inventory");
    md.always("");
    md.always(&format!("**{}**", counts_line(inv)));
    md.always("");
    if !inv.entries.is_empty() {
        md.always("<details><summary>Tokens</summary>");
        md.always("");
        md.line("| home | kind | id | name | class | expires | last used | flags |");
        md.line("|---|---|---|---|---|---|---|---|");
        for e in &inv.entries {
            md.line(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                code(&home_label(&e.home)),
                e.kind,
                code(e.id.as_str()),
                code(&e.name),
                e.class.as_str(),
                date(e.expires, "never"),
                date(e.last_used, "never"),
                super::limit::text(&flags(e))
            ));
        }
        truncation_note(&mut md, "tokens");
        md.always("");
        md.always("</details>");
    }
    out.write_all(md.finish().as_bytes())
}
