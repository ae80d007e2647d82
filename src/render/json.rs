//! JSON output: the serde form of the versioned plan, drift report and inventory, pretty
//! printed with a trailing newline. The field reference is in the README.

use std::io;

use serde::Serialize;

use crate::plan::{DriftReport, Inventory, Plan};

/// Pretty JSON of any serializable value, with a trailing newline.
pub fn to_json<T: Serialize>(value: &T, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

pub fn plan_json(plan: &Plan, out: &mut dyn io::Write) -> io::Result<()> {
    to_json(plan, out)
}

pub fn drift_json(report: &DriftReport, out: &mut dyn io::Write) -> io::Result<()> {
    to_json(report, out)
}

pub fn inventory_json(inventory: &Inventory, out: &mut dyn io::Write) -> io::Result<()> {
    to_json(inventory, out)
}
