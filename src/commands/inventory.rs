//! `tokensmith inventory`: every live token of every environment, classified, with a
//! recommendation each; filtered by `--class` and `--owner`; as text, JSON, markdown, CSV or
//! one HTML page (whose timeline also shows the coming rotations from a plan over the same
//! inputs).

use super::session::{self, Session};
use crate::cli::settings::{Connections, InventorySettings};
use crate::cli::{InventoryClass, InventoryFormat};
use crate::output::{ExitStatus, Printer};
use crate::plan::{ClassFilter, InventoryFilter, TokenClass, TokenStatus};
use crate::{plan, render};

pub fn run(
    args: InventorySettings,
    connect: &Connections,
    printer: &mut Printer,
) -> anyhow::Result<ExitStatus> {
    let Some(source) = session::load_spec(&args.spec.file, None, printer)? else {
        return Ok(ExitStatus::Failure);
    };
    let mut session = Session::new(&args.spec.file, source, &args.envs, &args.accounts, connect)?;
    session.restrict_commands(args.no_exec, None)?;
    let world = session::runtime()?.block_on(session.read_world_shown(printer.progress_bars()))?;
    for w in world.warnings.iter().chain(&world.commands_not_run) {
        writeln!(printer.err(), "warning: {w}")?;
    }
    let now = session::now(&world.live);
    let filter = InventoryFilter {
        classes: args.classes.iter().map(|c| class_filter(*c)).collect(),
        owner: args.owner.clone(),
    };
    let mut inventory = plan::inventory(&session.desired, &world.live, now);
    if args.format == InventoryFormat::Html {
        // The timeline's coming rotations and retirements; the planner is pure, so this costs
        // no API call. A spec the planner refuses still gets its inventory.
        match plan::plan(
            &session.desired,
            &world.live,
            &world.targets,
            now,
            &session.plan_options(None),
        ) {
            Ok(p) => plan::add_schedule(&mut inventory, &p, &session.desired),
            Err(e) => writeln!(
                printer.err(),
                "warning: no rotation forecast on the timeline: {e}"
            )?,
        }
    }
    let inventory = inventory.filtered(&filter);
    let out = printer.out();
    match args.format {
        InventoryFormat::Csv => render::inventory_csv(&inventory, out)?,
        InventoryFormat::Html => render::report_html(&inventory, None, out)?,
        InventoryFormat::Human => render::render_inventory(&inventory, args.human, out)?,
        InventoryFormat::Json => render::inventory_json(&inventory, out)?,
        InventoryFormat::Markdown => render::inventory_markdown(&inventory, out)?,
    }
    Ok(ExitStatus::Success)
}

fn class_filter(c: InventoryClass) -> ClassFilter {
    let class = |c| ClassFilter::Class(c);
    match c {
        InventoryClass::Expired => class(TokenClass::Expired),
        InventoryClass::ExpiringSoon => class(TokenClass::ExpiringSoon),
        InventoryClass::NeverUsed => class(TokenClass::NeverUsed),
        InventoryClass::Unused => class(TokenClass::Unused),
        InventoryClass::OverPrivileged => class(TokenClass::OverPrivileged),
        InventoryClass::Duplicate => class(TokenClass::Duplicate),
        InventoryClass::Disabled => class(TokenClass::Disabled),
        InventoryClass::Personal => class(TokenClass::Personal),
        InventoryClass::ManagementToken => class(TokenClass::ManagementToken),
        InventoryClass::ForeignMarker => class(TokenClass::ForeignMarker),
        InventoryClass::Managed => ClassFilter::Status(TokenStatus::ManagedCurrent),
        InventoryClass::Superseded => ClassFilter::Status(TokenStatus::ManagedSuperseded),
        InventoryClass::Unmanaged => ClassFilter::Status(TokenStatus::Unmanaged),
    }
}
